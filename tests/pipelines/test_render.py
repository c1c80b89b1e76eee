"""The shared render loop with a warper that changes nothing: what comes out must be the twin's own frames in
ping-pong order, at 25 fps, with the speech, and exactly as long as the speech (within one frame)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.base import StageContext
from pipelines.media.frames import read_frames
from pipelines.media.normalize import normalize_audio, normalize_video
from pipelines.media.synthetic import make_audio, make_face_video
from pipelines.th.crops_stage import CropsStage
from pipelines.th.driving import frame_count, ping_pong
from pipelines.th.face.align import load_transforms
from pipelines.th.face.landmarks_file import load_landmarks
from pipelines.th.landmarks_stage import LandmarksStage
from pipelines.th.render import WarpBatch, load_frames, render, to_crop_points


class Unchanged:
    size = 256

    def __init__(self) -> None:
        self.batches: list[WarpBatch] = []

    def warp(self, batch: WarpBatch) -> np.ndarray:
        self.batches.append(batch)
        return batch.crops


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("twin")
    video = folder / "video/video.mp4"
    video.parent.mkdir()
    normalize_video(make_face_video(folder / "raw.mp4", seconds=1.2, fps=25), video, 25)
    LandmarksStage().run(StageContext(inputs={"video": video}, output_dir=folder))
    CropsStage().run(
        StageContext(
            inputs={"video": video, "video_landmarks": folder / "face/video_landmarks.npz"},
            output_dir=folder,
            params={"crop_sizes": [256]},
        )
    )
    return folder


@pytest.mark.parametrize("seconds", [2.0, 2.27])
def test_unchanged_warp_gives_the_twins_frames_with_the_speech(twin: Path, tmp_path: Path, seconds: float) -> None:
    speech = tmp_path / "speech.wav"
    normalize_audio(make_audio(tmp_path / "raw.wav", seconds=seconds), speech, 16000)
    landmarks = load_landmarks(twin / "face/video_landmarks.npz")
    frames = load_frames(twin / "video/video.mp4")
    count = frame_count(seconds, 25)
    sources = ping_pong(count, landmarks.frames, landmarks.usable)
    warper = Unchanged()
    output = tmp_path / "out.mp4"

    rendered = render(
        frames=frames,
        transforms=load_transforms(twin / "face/crops/video_transforms.npz"),
        twin_points=landmarks.points,
        driving_points=landmarks.points[sources],
        source_frames=sources,
        warper=warper,
        audio=speech,
        output=output,
        fps=25,
    )

    assert rendered == count == round(seconds * 25)
    with av.open(str(output)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert video.average_rate == 25 and video.frames == count
        video_s = float(video.duration * video.time_base)
        audio_s = float(audio.duration * audio.time_base)
    assert abs(video_s - seconds) <= 1 / 25 + 1e-6 and abs(audio_s - seconds) <= 1 / 25 + 0.03  # AAC priming
    out = np.concatenate(list(read_frames(output, 32)))
    # Frame t is the twin's frame sources[t] (ping-pong: forwards, then backwards), up to encoding noise.
    errors = [np.abs(out[t].astype(int) - frames[sources[t]].astype(int)).mean() for t in range(count)]
    assert max(errors) < 3.0
    assert sources[landmarks.frames] == landmarks.frames - 2  # the turn: it plays backwards, no jump
    # The warper saw crop-space points: the eyes of frame t at the same crop place for source and driving.
    first = warper.batches[0]
    assert first.crops.shape[1:] == (256, 256, 3)
    np.testing.assert_allclose(first.source_points, first.driving_points, atol=1e-4)
    assert (first.source_points[:, 36:48] > 0).all() and (first.source_points[:, 36:48] < 256).all()


def test_crop_points_follow_the_transforms() -> None:
    transforms = np.array([[[2.0, 0.0, -10.0], [0.0, 2.0, 5.0]]])
    points = np.zeros((1, 68, 2), dtype=np.float32)
    points[0, 0] = (10.0, 20.0)
    mapped = to_crop_points(points, transforms)
    np.testing.assert_allclose(mapped[0, 0], (10.0, 45.0))
