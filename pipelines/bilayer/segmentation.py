"""Person masks of face crops: MediaPipe's selfie segmentation, whose model ships inside the mediapipe wheel.

The seed team segmented with Graphonomy (human parsing, weights from a drive folder, GPU). MediaPipe's general
selfie model (256x256 input, the size of a default crop) separates the person (head, hair, neck, shoulders) from
the background on a CPU in about 5 ms, with nothing to download: the legacy `SelfieSegmentation` solution reads
its graph and `.tflite` model from the wheel, and its graph has no state carried between images, so a mask depends
only on its crop. The mask is binary (probability >= 0.5), uint8 0/255, as the bi-layer loader reads a PNG's first
channel as the mask.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import numpy as np

from pipelines.base import MissingWeights

THRESHOLD = 0.5
PERSON, BACKGROUND = 255, 0
MODEL = "mediapipe selfie_segmentation general (model_selection=0)"


class PersonSegmenter:
    """`mask(image)` -> (H, W) uint8 0/255 person mask of an RGB uint8 image; a context manager (it holds a graph)."""

    def __init__(self) -> None:
        try:
            from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation
        except ImportError as error:
            raise MissingWeights(
                f"person masks need mediapipe 0.10.21, whose wheel carries the selfie segmentation model, but it "
                f"cannot be imported ({error}); run scripts/setup, or `pip install --no-deps mediapipe==0.10.21`",
                names=(),
            ) from error
        self._graph: Any = SelfieSegmentation(model_selection=0)

    def mask(self, image: np.ndarray) -> np.ndarray:
        if self._graph is None:
            raise RuntimeError("this PersonSegmenter is closed")
        probability = self._graph.process(np.ascontiguousarray(image)).segmentation_mask
        return np.where(np.asarray(probability) >= THRESHOLD, PERSON, BACKGROUND).astype(np.uint8)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> PersonSegmenter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
