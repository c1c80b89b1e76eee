"""The one rule that pairs audio samples with video frames, for every dataset model (pipelines/media/timeline.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.media.timeline import align_features, reconcile


@pytest.mark.parametrize(
    ("video_frames", "audio_samples", "fps", "rate", "frames"),
    [
        (200, 8 * 16000, 25, 16000, 200),  # exact
        (200, 8 * 16000 + 1200, 25, 16000, 200),  # audio 3 frames longer: the seed's bug; cut to the video
        (203, 8 * 16000, 25, 16000, 200),  # video 3 frames longer: cut to the audio
        (200, 8 * 16000 - 1, 25, 16000, 199),  # audio one sample short of the last frame: that frame goes
        (430, 20 * 22050, 21.5, 22050, 430),  # fractional rate, exact
        (431, 20 * 22050, 21.5, 22050, 430),
    ],
)
def test_frames_are_those_the_audio_fully_covers(
    video_frames: int, audio_samples: int, fps: float, rate: int, frames: int
) -> None:
    timeline = reconcile(video_frames, audio_samples, fps, rate)
    assert timeline.frames == frames
    assert timeline.dropped_video_frames == video_frames - frames
    assert timeline.samples + timeline.dropped_audio_samples == audio_samples
    assert timeline.samples <= audio_samples
    # consecutive spans tile the kept audio exactly, whatever the rate
    spans = [timeline.audio_span(i) for i in range(timeline.frames)]
    assert spans[0][0] == 0 and spans[-1][1] == timeline.samples
    assert all(stop == start for (_, stop), (start, _) in zip(spans, spans[1:], strict=False))
    widths = {stop - start for start, stop in spans}
    assert widths <= {int(np.floor(rate / fps)), int(np.ceil(rate / fps))}


def test_audio_features_at_any_rate_get_exactly_one_row_per_frame() -> None:
    timeline = reconcile(200, 8 * 16000 + 1200, 25, 16000)
    for rate_hz, rows in ((50.0, 403), (100.0, 806), (86.13, 689), (25.0, 200)):
        features = np.arange(rows, dtype=np.float32)[:, None] / rate_hz  # each row holds its own time
        aligned = align_features(features, rate_hz, timeline)
        assert aligned.shape == (200, 1)
        assert np.allclose(aligned[:, 0], timeline.frame_times_s(), atol=1.0 / rate_hz)


def test_features_computed_from_shorter_audio_are_refused() -> None:
    timeline = reconcile(250, 10 * 16000, 25, 16000)
    with pytest.raises(BadInput, match="compute the features from the whole audio track"):
        align_features(np.zeros((300, 4)), 50.0, timeline)  # 6 s of features for 10 s of frames


def test_unrelated_audio_and_empty_streams_are_refused_with_the_fix() -> None:
    with pytest.raises(BadInput, match=r"clip.mp4: its video lasts 8.00 s but its audio 12.00 s"):
        reconcile(200, 12 * 16000, 25, 16000, what="clip.mp4")
    with pytest.raises(BadInput, match="no audio"):
        reconcile(200, 0, 25, 16000)
    with pytest.raises(BadInput, match="no video frames"):
        reconcile(0, 16000, 25, 16000)


def test_chunks_are_whole_and_equal_and_the_tail_is_not_a_chunk() -> None:
    timeline = reconcile(473, 22 * 22050, 21.5, 22050)  # 22 s
    chunks = timeline.chunks(10)
    assert chunks == [(0, 215), (215, 430)]
    assert {timeline.sample_at(stop) - timeline.sample_at(start) for start, stop in chunks} == {220500}
    with pytest.raises(BadInput, match="not a whole number"):
        timeline.chunks(0.3)
