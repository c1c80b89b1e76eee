"""run_ffmpeg(): the bundled binary, progress from `-progress pipe:1`, failures translated into BadInput."""

from __future__ import annotations

import os
from pathlib import Path

import ffmpeg
import pytest

from pipelines.base import BadInput, Cancelled
from pipelines.media.ffmpeg_tool import find_ffmpeg, has_soxr, last_meaningful_lines, run_ffmpeg


def test_find_ffmpeg_returns_an_executable() -> None:
    exe = find_ffmpeg()

    assert os.access(exe, os.X_OK)


def test_bundled_ffmpeg_has_soxr() -> None:
    assert has_soxr(find_ffmpeg())


def test_progress_rises_to_one(media, tmp_path: Path) -> None:
    fractions: list[float] = []
    spec = ffmpeg.input(str(media.video_30fps_with_audio)).output(str(tmp_path / "out.wav"), ac=1)

    run = run_ffmpeg(spec, source=media.video_30fps_with_audio, expected_duration_s=2.0, progress=fractions.append)

    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert all(0.0 <= fraction <= 1.0 for fraction in fractions)
    assert "-progress" in run.args
    assert (tmp_path / "out.wav").stat().st_size > 0


def test_failure_is_bad_input_quoting_ffmpeg(media, tmp_path: Path) -> None:
    spec = ffmpeg.input(str(media.mp4_without_moov)).output(str(tmp_path / "out.wav"))

    with pytest.raises(BadInput) as caught:
        run_ffmpeg(spec, source=media.mp4_without_moov)

    message = str(caught.value)
    assert message.startswith("'no_moov.mp4' could not be converted by ffmpeg (")
    assert "moov atom not found" in message
    assert " @ 0x" not in message  # pointer addresses are stripped from ffmpeg's lines


def test_a_raising_progress_callback_stops_ffmpeg(media, tmp_path: Path) -> None:
    def cancel(fraction: float) -> None:
        raise Cancelled("the platform asked this stage to stop")

    spec = ffmpeg.input(str(media.video_30fps_with_audio)).output(str(tmp_path / "out.mp4"), vcodec="libx264")

    with pytest.raises(Cancelled):
        run_ffmpeg(spec, source=media.video_30fps_with_audio, expected_duration_s=2.0, progress=cancel)


def test_last_meaningful_lines_drops_boilerplate() -> None:
    lines = ["[mov] moov atom not found", "Error opening input files: Invalid data", "Conversion failed!"]

    assert last_meaningful_lines(lines) == ["[mov] moov atom not found"]
