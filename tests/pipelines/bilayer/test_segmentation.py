"""Person masks: binary, a plausible area on a face crop, none on an empty picture, and nothing downloaded."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest

from pipelines.bilayer.samples_file import Samples
from pipelines.bilayer.segmentation import PersonSegmenter


def test_masks_without_any_network(face_samples: Samples, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the person segmenter tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from mediapipe.python.solutions import download_utils

    monkeypatch.setattr(download_utils, "download_oss_model", refuse)

    with PersonSegmenter() as segmenter:
        face = segmenter.mask(face_samples.imgs[0])
        grey = segmenter.mask(np.full((256, 256, 3), 128, dtype=np.uint8))

    assert face.dtype == np.uint8 and face.shape == (256, 256)
    assert set(np.unique(face).tolist()) == {0, 255}
    assert 0.1 < np.mean(face == 255) < 0.95
    assert face[128, 128] == 255  # the crop's centre is the face
    assert np.mean(grey == 255) < 0.05
