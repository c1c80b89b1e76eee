"""th preprocess: the three stages through the Stage contract, as the platform calls them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.base import BadInput, Cancelled, Source, StageContext
from pipelines.media.probe import probe
from pipelines.registry import load_pipeline
from pipelines.th.preprocess import AudioStage, ImageStage, VideoStage, build_pipeline


class Recorder:
    """Collects progress reports; can ask the stage to stop after `cancel_after` of them."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.reports: list[tuple[float, str]] = []
        self.cancel_after = cancel_after

    def progress(self, fraction: float, message: str) -> None:
        self.reports.append((fraction, message))

    def is_cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.reports) > self.cancel_after


def context_for(name: str, path: Path, output_dir: Path, recorder: Recorder, **params) -> StageContext:
    return StageContext(
        inputs={name: path},
        output_dir=output_dir,
        params=params,
        progress=recorder.progress,
        is_cancelled=recorder.is_cancelled,
    )


def test_pipeline_shape() -> None:
    pipeline = build_pipeline()

    assert (pipeline.model, pipeline.task, pipeline.output_area) == ("th", "preprocess", "processed")
    names = ["audio", "video", "image", "landmarks", "crops", "flame"]
    assert [stage.name for stage in pipeline.stages] == names
    pipeline.validate()
    assert [stage.name for stage in load_pipeline("th", "preprocess").stages] == names
    for stage in pipeline.stages:
        assert stage.version == "1"
        assert stage.resources.gpus == 0 and stage.resources.queue == "cpu"
    for stage in pipeline.stages[:3]:
        assert stage.version == "1"
        assert stage.resources.gpus == 0 and stage.resources.queue == "cpu"
        (spec,) = stage.inputs
        assert (spec.name, spec.source, spec.kind) == (stage.name, Source.RAW, stage.name)
    assert [(o.relative, o.optional) for o in pipeline.stage("video").outputs] == [
        ("video/video.mp4", False),
        ("video/audio.wav", True),
    ]


@pytest.mark.parametrize("kind", ["audio", "video", "image"])
def test_stage_is_skipped_without_its_raw_input(kind: str) -> None:
    stage = build_pipeline().stage(kind)

    assert stage.applies({"audio", "video", "image"}) is None
    assert stage.applies({"audio", "video", "image"} - {kind}) == f"no raw {kind} was ingested"


def test_audio_stage(media, tmp_path: Path) -> None:
    recorder = Recorder()

    result = AudioStage().run(context_for("audio", media.wav_44k_stereo, tmp_path, recorder))

    assert result.outputs == ["audio/audio.wav"]
    audio = probe(tmp_path / "audio/audio.wav").audio
    assert audio is not None and (audio.sample_rate_hz, audio.channels, audio.sample_format) == (
        16000,
        1,
        "s16",
    )
    assert result.metrics["sample_rate_hz"] == 16000
    assert result.metrics["duration_s"] == pytest.approx(2.0, abs=0.01)
    assert result.metrics["source_codec"] == "pcm_s16le"
    assert result.metrics["source_sample_rate_hz"] == 44100
    assert recorder.reports[0][0] == 0.0 and recorder.reports[-1][0] == 1.0


def test_video_stage_writes_video_and_its_sound(media, tmp_path: Path) -> None:
    recorder = Recorder()

    result = VideoStage().run(context_for("video", media.video_30fps_with_audio, tmp_path, recorder))

    assert result.outputs == ["video/video.mp4", "video/audio.wav"]
    video = probe(tmp_path / "video/video.mp4").video
    audio = probe(tmp_path / "video/audio.wav").audio
    assert video is not None and (video.codec, video.fps, video.frames) == ("h264", 25, 50)
    assert audio is not None and (audio.sample_rate_hz, audio.channels) == (16000, 1)
    metrics = result.metrics
    assert (metrics["fps"], metrics["frames"], metrics["width"], metrics["height"]) == (25, 50, 160, 120)
    assert metrics["duration_s"] == pytest.approx(2.0)
    assert (metrics["source_codec"], metrics["source_fps"], metrics["has_audio"]) == ("h264", 30.0, True)
    assert metrics["sample_rate_hz"] == 16000
    fractions = [fraction for fraction, _ in recorder.reports]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


def test_video_stage_without_sound_writes_no_wav(media, tmp_path: Path) -> None:
    result = VideoStage().run(context_for("video", media.video_rotated, tmp_path, Recorder()))

    assert result.outputs == ["video/video.mp4"]
    assert not (tmp_path / "video/audio.wav").exists()
    assert (result.metrics["width"], result.metrics["height"]) == (120, 160)
    assert result.metrics["source_rotation_deg"] == 90
    assert result.metrics["has_audio"] is False


def test_params_choose_frame_rate_and_sample_rate(media, tmp_path: Path) -> None:
    context = context_for("video", media.video_30fps_with_audio, tmp_path, Recorder(), fps=10, sample_rate_hz=8000)

    result = VideoStage().run(context)

    video = probe(tmp_path / "video/video.mp4").video
    audio = probe(tmp_path / "video/audio.wav").audio
    assert video is not None and (video.fps, video.frames) == (10, 20)
    assert audio is not None and audio.sample_rate_hz == 8000
    assert result.metrics["fps"] == 10


@pytest.mark.parametrize(
    ("params", "pattern"),
    [({"fps": 0}, r"parameter fps=0 "), ({"sample_rate_hz": "16k"}, r"parameter sample_rate_hz='16k' ")],
)
def test_bad_params_are_bad_input(media, tmp_path: Path, params: dict, pattern: str) -> None:
    context = context_for("video", media.video_30fps_with_audio, tmp_path, Recorder(), **params)

    with pytest.raises(BadInput, match=pattern):
        VideoStage().run(context)


def test_video_stage_rejects_audio_only_mp4(media, tmp_path: Path) -> None:
    context = context_for("video", media.audio_only_mp4, tmp_path, Recorder())

    with pytest.raises(BadInput, match=r"'voice_only\.mp4' has no video stream: ingest it as audio"):
        VideoStage().run(context)


def test_cancelled_stage_stops_and_leaves_no_output(media, tmp_path: Path) -> None:
    context = context_for("video", media.video_30fps_with_audio, tmp_path, Recorder(cancel_after=1))

    with pytest.raises(Cancelled):
        VideoStage().run(context)

    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_image_stage(media, tmp_path: Path) -> None:
    result = ImageStage().run(context_for("image", media.jpeg_exif_rotated, tmp_path, Recorder()))

    assert result.outputs == ["image/image.png"]
    assert (tmp_path / "image/image.png").is_file()
    assert result.metrics["width"] == 20 and result.metrics["height"] == 40
    assert result.metrics["source_format"] == "JPEG"
    assert result.metrics["exif_orientation"] == 6


@pytest.mark.media
def test_real_recordings(shared_media: Path, tmp_path: Path) -> None:
    """Extended: MPEG-4 Part 2 + AAC 16 kHz stereo, and H.264 576x768 without sound."""
    talking = VideoStage().run(context_for("video", shared_media / "talking_512.mp4", tmp_path / "t", Recorder()))
    sun = VideoStage().run(context_for("video", shared_media / "sun.mp4", tmp_path / "s", Recorder()))

    assert talking.outputs == ["video/video.mp4", "video/audio.wav"]
    assert talking.metrics["source_codec"] == "mpeg4"
    assert (talking.metrics["frames"], talking.metrics["width"], talking.metrics["height"]) == (200, 512, 512)
    assert talking.metrics["audio_duration_s"] == pytest.approx(8.0, abs=0.04)
    assert sun.outputs == ["video/video.mp4"]
    assert (sun.metrics["frames"], sun.metrics["width"], sun.metrics["height"]) == (550, 576, 768)
    for folder in ("t", "s"):
        video = probe(tmp_path / folder / "video/video.mp4").video
        assert video is not None and (video.codec, video.pix_fmt, video.fps) == ("h264", "yuv420p", 25)


@pytest.mark.media
def test_real_speech_and_photo(shared_media: Path, tmp_path: Path) -> None:
    speech = AudioStage().run(context_for("audio", shared_media / "speech_48k_stereo.wav", tmp_path, Recorder()))
    photo = ImageStage().run(context_for("image", shared_media / "portrait.png", tmp_path, Recorder()))

    assert (speech.metrics["source_sample_rate_hz"], speech.metrics["source_channels"]) == (48000, 2)
    assert speech.metrics["duration_s"] == pytest.approx(8.0, abs=0.05)
    assert (photo.metrics["width"], photo.metrics["height"]) == (256, 256)
