"""Constants and types the bilayer tests share with their fixtures (conftest.py is not imported by tests)."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.local_pipelines import LocalRun

FACE_CLIP_FRAMES = 75  # the 3 s face clip after normalisation to 25 fps
MAIN_SAMPLING_RATE = 5  # the face twin keeps 15 frames: enough for sequences and splits, cheap to segment

RerunFrames = Callable[..., LocalRun]
"""rerun_frames(source, out, **params): only the frames stage, on a copy of a preprocess run's video and landmarks."""
