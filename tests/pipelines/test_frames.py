"""Reading video frames in batches and writing RGB frames to H.264 MP4 (`pipelines.media.frames`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.media.frames import FrameWriter, read_frames, video_info
from pipelines.media.probe import probe

if TYPE_CHECKING:
    from tests.pipelines.conftest import Media

WIDTH, HEIGHT = 96, 64


def moving_frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """`count` smooth RGB frames, each with a different mean brightness (so order can be checked) and a moving
    colour gradient (so a codec has something real to encode)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = []
    for index in range(count):
        base = 40 + 4 * index
        red = base + 40 * np.sin((x + 3 * index) / 9)
        green = base + 40 * np.cos((y - 2 * index) / 7)
        blue = np.full_like(x, 200 - 3 * index)
        frames.append(np.stack([red, green, blue], axis=2))
    video: np.ndarray = np.clip(np.rint(np.stack(frames)), 0, 255).astype(np.uint8)
    return video


def write(path: Path, frames: np.ndarray, fps: float = 25) -> Path:
    with FrameWriter(path, fps=fps, width=frames.shape[2], height=frames.shape[1]) as writer:
        writer.write(frames)
    return path


def test_written_video_reads_back_with_its_frames_rate_size_and_colours(tmp_path: Path) -> None:
    frames = moving_frames(30)
    path = write(tmp_path / "crops.mp4", frames)

    stream = probe(path).video
    assert stream is not None
    assert (stream.codec, stream.pix_fmt, stream.width, stream.height) == ("h264", "yuv420p", WIDTH, HEIGHT)
    assert stream.fps == 25 and stream.frames == 30
    assert stream.duration_s == pytest.approx(30 / 25)
    info = video_info(path)
    assert (info.frames, info.fps, info.width, info.height) == (30, 25.0, WIDTH, HEIGHT)

    decoded = np.concatenate(list(read_frames(path)))
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    difference = decoded.astype(np.int16) - frames
    assert np.abs(difference).mean() < 2.0, "crf 18 with 4:2:0 chroma keeps colours within a couple of levels"
    assert np.percentile(np.abs(difference), 99) < 10
    bias = difference.mean(axis=(0, 1, 2))
    assert np.all(np.abs(bias) < 0.6), f"colours shift by {bias}: the RGB <-> YUV conversions do not match"


def test_the_same_frames_give_byte_identical_files(tmp_path: Path) -> None:
    frames = moving_frames(20)
    first = write(tmp_path / "a.mp4", frames).read_bytes()
    second = write(tmp_path / "b.mp4", frames).read_bytes()

    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert b"Lavf" not in first, "the muxer's version string must not be written (bitexact)"
    assert 0 < first.find(b"moov") < first.find(b"mdat"), "the index comes first (+faststart)"


def test_frames_come_in_batches_in_order_with_a_short_last_batch(tmp_path: Path) -> None:
    frames = moving_frames(37)
    path = write(tmp_path / "clip.mp4", frames)

    batches = list(read_frames(path, batch_size=16))

    assert [len(batch) for batch in batches] == [16, 16, 5]
    assert all(batch.shape[1:] == (HEIGHT, WIDTH, 3) for batch in batches)
    means = np.concatenate(batches)[..., 1].mean(axis=(1, 2))
    assert np.all(np.diff(means) > 0), "frames must come in the order they were written"


def test_a_batch_and_single_frames_write_the_same_video(tmp_path: Path) -> None:
    frames = moving_frames(6)
    whole = write(tmp_path / "whole.mp4", frames)
    with FrameWriter(tmp_path / "single.mp4", fps=25, width=WIDTH, height=HEIGHT) as writer:
        for frame in frames:
            writer.write(frame)
    assert whole.read_bytes() == (tmp_path / "single.mp4").read_bytes()


def test_a_non_integer_frame_rate_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "ntsc.mp4", moving_frames(10), fps=30000 / 1001)
    assert video_info(path).fps == pytest.approx(29.97, abs=0.01)


def test_a_failed_write_leaves_no_file_behind(tmp_path: Path) -> None:
    target = tmp_path / "out" / "crops.mp4"
    with pytest.raises(RuntimeError, match="stage failed"):
        with FrameWriter(target, fps=25, width=WIDTH, height=HEIGHT) as writer:
            writer.write(moving_frames(3))
            raise RuntimeError("stage failed")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_rerun_replaces_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "crops.mp4"
    write(target, moving_frames(3))
    write(target, moving_frames(5))
    assert video_info(target).frames == 5
    assert sorted(path.name for path in tmp_path.iterdir()) == ["crops.mp4"]


def test_odd_sizes_and_wrong_frames_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        FrameWriter(tmp_path / "odd.mp4", fps=25, width=97, height=64)
    with FrameWriter(tmp_path / "ok.mp4", fps=25, width=WIDTH, height=HEIGHT) as writer:
        with pytest.raises(ValueError, match=r"\(64, 96, 3\)"):
            writer.write(np.zeros((HEIGHT, WIDTH + 2, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((HEIGHT, WIDTH, 3), np.float32))
        writer.write(moving_frames(1))
    assert video_info(tmp_path / "ok.mp4").frames == 1


def test_writing_no_frame_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frame"):
        with FrameWriter(tmp_path / "empty.mp4", fps=25, width=WIDTH, height=HEIGHT):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("mp4_first_half", "ends after"),
        ("mp4_undecodable", "no frame of it decodes"),
        ("mp4_without_moov", "not a readable media file"),
        ("text_named_wav", "not a readable media file"),
        ("empty_mp4", "empty"),
        ("audio_only_mp4", "no video stream"),
    ],
)
def test_a_broken_video_is_bad_input_naming_the_file(media: Media, name: str, problem: str) -> None:
    path: Path = getattr(media, name)
    with pytest.raises(BadInput, match=problem) as raised:
        for _ in read_frames(path):
            pass
    assert path.name in str(raised.value)


def test_frames_are_turned_upright_as_a_player_shows_them(media: Media) -> None:
    """The clip is red with a blue top-left corner, stored with a display matrix turning it 90 degrees
    anticlockwise: a viewer sees a portrait frame with the blue corner at the bottom left."""
    first = next(read_frames(media.video_rotated))[0]
    assert first.shape == (160, 120, 3)
    bottom_left, top_left = first[-10:, :10].mean(axis=(0, 1)), first[:10, :10].mean(axis=(0, 1))
    assert bottom_left[2] > 200 and bottom_left[0] < 50
    assert top_left[0] > 200 and top_left[2] < 50


def test_a_batch_size_below_one_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.mp4", moving_frames(2))
    with pytest.raises(ValueError, match="batch_size"):
        next(read_frames(path, batch_size=0))
