"""probe(): what a media file holds, and a clear BadInput for files that are not media."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipelines.base import BadInput
from pipelines.media.probe import probe


def test_probe_reads_container_and_both_streams(media) -> None:
    path = media.video_30fps_with_audio

    info = probe(path)

    assert "mp4" in info.format_name
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.size_bytes == path.stat().st_size
    video, audio = info.video, info.audio
    assert video is not None and audio is not None
    assert (video.codec, video.width, video.height, video.pix_fmt) == ("h264", 160, 120, "yuv420p")
    assert video.fps == pytest.approx(30.0)
    assert video.frames == 60
    assert video.rotation_deg == 0
    assert video.decodable
    assert (audio.codec, audio.sample_rate_hz, audio.channels, audio.sample_format) == (
        "aac",
        44100,
        2,
        "fltp",
    )


def test_probe_reads_wav(media) -> None:
    info = probe(media.wav_44k_stereo)

    assert info.video is None
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate_hz, info.audio.channels) == ("pcm_s16le", 44100, 2)
    assert info.audio.sample_format == "s16"
    assert info.audio.duration_s == pytest.approx(2.0, abs=0.01)


def test_probe_reports_phone_rotation_and_display_size(media) -> None:
    video = probe(media.video_rotated).video

    assert video is not None
    assert (video.width, video.height) == (160, 120)
    assert video.rotation_deg == 90
    assert video.display_size == (120, 160)


def test_probe_flags_video_with_no_decodable_frame(media) -> None:
    video = probe(media.mp4_undecodable).video

    assert video is not None
    assert video.frames == 50
    assert not video.decodable


def test_media_info_is_frozen(media) -> None:
    info = probe(media.wav_44k_stereo)

    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size_bytes = 0  # type: ignore[misc]


def test_zero_byte_file_has_its_own_message(media) -> None:
    with pytest.raises(BadInput, match=r"'empty\.mp4' is empty \(0 bytes\).*upload the file again"):
        probe(media.empty_mp4)


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"'absent\.wav' does not exist"):
        probe(tmp_path / "absent.wav")


def test_text_file_named_wav_is_bad_input(media) -> None:
    with pytest.raises(BadInput, match=r"'notes\.wav' is not a readable media file \(it contains text"):
        probe(media.text_named_wav)


def test_mp4_without_moov_quotes_ffmpeg_and_names_the_fix(media) -> None:
    with pytest.raises(BadInput) as caught:
        probe(media.mp4_without_moov)

    message = str(caught.value)
    assert message.startswith("'no_moov.mp4' is not a readable media file (truncated or corrupt")
    assert "moov atom not found" in message
    assert "re-export it or upload the original" in message


def test_first_half_of_faststart_mp4_still_probes_from_its_index(media) -> None:
    # The index survives, so probe sees the declared 2 s; normalize_video is what notices the missing half.
    info = probe(media.mp4_first_half)

    assert info.video is not None and info.video.frames == 60
