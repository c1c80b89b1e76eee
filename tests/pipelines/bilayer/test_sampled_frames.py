"""The sampled-frame reader gives exactly the frames read_frames gives, at exact colour, for the kept indices."""

from __future__ import annotations

import numpy as np

from pipelines.bilayer.sampled_frames import SampledFrames
from pipelines.media.frames import read_frames
from tests.support.local_pipelines import LocalRun


def test_same_pixels_as_read_frames(face_twin: LocalRun) -> None:
    video = face_twin.out / "video/video.mp4"
    every_frame = np.concatenate(list(read_frames(video, 32, exact_colour=True)))
    reader = SampledFrames(video, 7, "video/video.mp4")

    sampled = list(reader)

    assert [index for index, _ in sampled] == list(range(0, 75, 7))
    assert reader.decoded == every_frame.shape[0] == 75
    for index, frame in sampled:
        assert np.array_equal(frame, every_frame[index])
