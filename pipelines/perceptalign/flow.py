"""Dense optical flow between consecutive frames, stored as denseflow stores it: two 8-bit images per pair.

The seed ran denseflow (TV-L1 on a GPU). Here OpenCV runs on the CPU: TV-L1 when this OpenCV has the contrib
module `cv2.optflow`, else Farneback. The opencv-python-headless wheel the platform installs has no `cv2.optflow`,
so Farneback is what runs; "auto" picks whichever exists and the chosen one is recorded with the outputs.

Quantisation is denseflow's (`convertFlowToImage`): a displacement v in pixels becomes
`round(255 * (v + bound) / (2 * bound))`, clipped to 0..255, so no motion is 128 and +-bound saturates.
Frames are turned grey and resized so their short side is `short_side` before the flow (denseflow's --newShort),
which keeps flow magnitudes in the same pixel units for every twin whatever its video's size.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from pipelines.base import BadInput


@dataclass(frozen=True)
class Farneback:
    """OpenCV's documented example settings: 2.4x faster on this CPU than denseflow's Farneback defaults (5 levels,
    10 iterations, window 13), for the same displacement on a 256-pixel talking head."""

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2


FARNEBACK = Farneback()


def tvl1_available() -> bool:
    return hasattr(getattr(cv2, "optflow", None), "DualTVL1OpticalFlow_create")


def resolve_algorithm(requested: str) -> str:
    """"auto" -> "tvl1" when OpenCV has it, else "farneback"; "tvl1" without it is BadInput."""
    if requested == "auto":
        return "tvl1" if tvl1_available() else "farneback"
    if requested == "tvl1" and not tvl1_available():
        raise BadInput(
            "parameter flow_algorithm='tvl1' needs OpenCV's contrib module cv2.optflow, which this installation "
            "lacks (opencv-python-headless); use flow_algorithm='auto' or 'farneback'"
        )
    return requested


def flow_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side scaled to `short_side` (0: unchanged), the aspect kept."""
    if short_side == 0:
        return width, height
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


@dataclass
class FlowEstimator:
    """Flow of consecutive grey frames at (`width`, `height`), quantised with `bound`.

    `pairs` may be called from several threads: OpenCV's Farneback uses one core and releases the GIL, so two
    threads nearly halve the time on two cores (TV-L1 objects keep state, so each thread gets its own).
    """

    algorithm: str
    width: int
    height: int
    bound: float

    def __post_init__(self) -> None:
        self._local = threading.local()

    def grey(self, rgb: np.ndarray) -> np.ndarray:
        """One (H, W, 3) RGB frame -> (height, width) uint8 grey at the flow size."""
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if grey.shape == (self.height, self.width):
            return grey
        shrinking = self.width * self.height < grey.shape[0] * grey.shape[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        resized: np.ndarray = cv2.resize(grey, (self.width, self.height), interpolation=interpolation)
        return resized

    def pair(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """(2, height, width) uint8: x then y displacement from `previous` to `current`, quantised."""
        if self.algorithm == "tvl1":
            flow = np.asarray(self._tvl1().calc(previous, current, None))
        else:
            f = FARNEBACK
            flow = np.asarray(
                cv2.calcOpticalFlowFarneback(
                    previous, current, None, f.pyr_scale, f.levels, f.winsize, f.iterations, f.poly_n, f.poly_sigma, 0
                )
            )
        return quantise(np.moveaxis(flow, 2, 0), self.bound)

    def _tvl1(self) -> Any:
        solver = getattr(self._local, "tvl1", None)
        if solver is None:
            optflow: Any = getattr(cv2, "optflow", None)
            solver = self._local.tvl1 = optflow.DualTVL1OpticalFlow_create()
        return solver

    def describe(self) -> dict[str, Any]:
        details: dict[str, Any] = {"algorithm": self.algorithm, "width": self.width, "height": self.height}
        details["bound"] = self.bound
        details["params"] = asdict(FARNEBACK) if self.algorithm == "farneback" else {"opencv": "defaults"}
        return details


def quantise(flow: np.ndarray, bound: float) -> np.ndarray:
    """Displacements in pixels -> uint8 as denseflow writes them (0 -> 128, -bound -> 0, +bound -> 255)."""
    scaled = np.rint((flow.astype(np.float32) + np.float32(bound)) * np.float32(255.0 / (2.0 * bound)))
    images: np.ndarray = np.clip(scaled, 0, 255).astype(np.uint8)
    return images


def dequantise(images: np.ndarray, bound: float) -> np.ndarray:
    """uint8 flow images -> displacements in pixels (within one quantisation step, 2 * bound / 255)."""
    pixels: np.ndarray = images.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)
    return pixels
