"""normalize_*(): the canonical media a user would check for, byte-identical reruns, and clear BadInput."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from pipelines.base import BadInput
from pipelines.media.normalize import extract_audio, normalize_audio, normalize_image, normalize_video
from pipelines.media.probe import probe

FRAME_S = 1 / 25


def frame_times_s(path: Path) -> list[float]:
    """Presentation time of every video frame, in seconds, from the packets (no decoding)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None]
    return sorted(times)


def first_frame_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def read_wav(path: Path) -> tuple[Any, np.ndarray]:
    """(wave params, int16 samples)."""
    with wave.open(str(path)) as reader:
        return reader.getparams(), np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


def dominant_frequency_hz(samples: np.ndarray, sample_rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate_hz)[spectrum.argmax()])


def assert_canonical_video(path: Path, *, frames: int, size: tuple[int, int]) -> None:
    info = probe(path)
    video = info.video
    assert video is not None
    assert info.audio_streams == ()
    assert (video.codec, video.pix_fmt, video.rotation_deg) == ("h264", "yuv420p", 0)
    assert (video.width, video.height) == size
    assert video.fps == 25
    assert video.frames == frames
    times = frame_times_s(path)
    assert len(times) == frames
    assert times[0] == 0.0
    assert np.allclose(np.diff(times), FRAME_S), "frame intervals are not constant"


# --- video --------------------------------------------------------------------------------------


def test_30fps_video_becomes_25fps_constant_h264(media, tmp_path: Path) -> None:
    dst = tmp_path / "video.mp4"

    result = normalize_video(media.video_30fps_with_audio, dst)

    assert_canonical_video(dst, frames=50, size=(160, 120))
    assert result.output.frames == 50
    assert result.source_stream.fps == pytest.approx(30.0)
    assert abs(50 * FRAME_S - result.source_stream.duration_s) <= FRAME_S
    assert not list(tmp_path.glob(".*partial*")), "the temporary file was left behind"


def test_output_is_faststart(media, tmp_path: Path) -> None:
    dst = tmp_path / "video.mp4"
    normalize_video(media.video_30fps_with_audio, dst)

    with dst.open("rb") as handle:
        head = handle.read(4096)
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head


def test_variable_frame_rate_becomes_constant(media, tmp_path: Path) -> None:
    source = probe(media.video_vfr).video
    dst = tmp_path / "video.mp4"

    normalize_video(media.video_vfr, dst)

    assert_canonical_video(dst, frames=50, size=(160, 120))
    assert source is not None and abs(50 * FRAME_S - source.duration_s) <= FRAME_S


@pytest.mark.parametrize(
    ("degrees", "blue_corner"),
    [(90, "bottom-left"), (270, "top-right"), (180, "bottom-right")],
)
def test_phone_rotation_is_applied_and_not_left_in_metadata(
    media, tmp_path: Path, degrees: int, blue_corner: str
) -> None:
    dst = tmp_path / "video.mp4"

    result = normalize_video(media.rotated(degrees), dst)

    assert result.source_stream.rotation_deg == degrees
    size = (160, 120) if degrees == 180 else (120, 160)
    assert_canonical_video(dst, frames=50, size=size)
    # The stored top-left blue square, turned anticlockwise by `degrees` as a player shows it.
    rgb = first_frame_rgb(dst)
    height, width = rgb.shape[:2]
    corners = {
        "top-left": rgb[5, 5],
        "top-right": rgb[5, width - 6],
        "bottom-left": rgb[height - 6, 5],
        "bottom-right": rgb[height - 6, width - 6],
    }
    for corner, pixel in corners.items():
        expected = [0, 0, 255] if corner == blue_corner else [255, 0, 0]
        assert pixel.tolist() == pytest.approx(expected, abs=40), corner


def test_odd_size_is_made_even(media, tmp_path: Path) -> None:
    dst = tmp_path / "video.mp4"

    normalize_video(media.video_odd_size, dst)

    assert_canonical_video(dst, frames=50, size=(160, 120))


def test_same_input_gives_byte_identical_outputs(media, tmp_path: Path) -> None:
    source = media.video_30fps_with_audio
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        normalize_video(source, folder / "video.mp4")
        extract_audio(source, folder / "audio.wav")
        normalize_audio(media.wav_44k_stereo, folder / "voice.wav")
        normalize_image(media.jpeg_exif_rotated, folder / "image.png")

    for name in ("video.mp4", "audio.wav", "voice.wav", "image.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_audio_only_mp4_offered_as_video(media, tmp_path: Path) -> None:
    expected = (
        "'voice_only.mp4' has no video stream: ingest it as audio "
        "(platform twin ingest TWIN voice_only.mp4 --kind audio) or upload a video"
    )
    with pytest.raises(BadInput) as caught:
        normalize_video(media.audio_only_mp4, tmp_path / "video.mp4")

    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("empty_mp4", r"'empty\.mp4' is empty \(0 bytes\)"),
        ("mp4_without_moov", r"'no_moov\.mp4' is not a readable media file .*moov atom not found"),
        (
            "mp4_first_half",
            r"'first_half\.mp4' is truncated or corrupt: it declares 2\.00 s of video but only",
        ),
        (
            "mp4_undecodable",
            r"'zeros\.mp4' has a video stream \(h264\) but not one frame of it could be decoded",
        ),
    ],
)
def test_bad_video_is_bad_input_naming_the_file(media, tmp_path: Path, name: str, pattern: str) -> None:
    dst = tmp_path / "video.mp4"

    with pytest.raises(BadInput, match=pattern):
        normalize_video(getattr(media, name), dst)

    assert not dst.exists()
    assert not list(tmp_path.iterdir()), "a failed conversion left files behind"


# --- audio --------------------------------------------------------------------------------------


def test_44k_stereo_wav_becomes_16k_mono_pcm16(media, tmp_path: Path) -> None:
    dst = tmp_path / "audio.wav"

    result = normalize_audio(media.wav_44k_stereo, dst)

    params, samples = read_wav(dst)
    assert (params.nchannels, params.framerate, params.sampwidth, params.comptype) == (1, 16000, 2, "NONE")
    assert params.nframes / 16000 == pytest.approx(2.0, abs=0.005)
    assert (result.output.codec, result.output.sample_format) == ("pcm_s16le", "s16")
    assert (result.source_stream.sample_rate_hz, result.source_stream.channels) == (44100, 2)
    # both channels survive the downmix: the 440 Hz left and the 1000 Hz right are the two loudest tones
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    frequencies = np.fft.rfftfreq(len(samples), 1 / 16000)
    loudest = sorted(round(float(f)) for f in frequencies[np.argsort(spectrum)[-2:]])
    assert loudest == [440, 1000]


def test_audio_track_of_a_video_is_extracted(media, tmp_path: Path) -> None:
    dst = tmp_path / "audio.wav"

    result = extract_audio(media.video_30fps_with_audio, dst, sample_rate_hz=16000)

    params, samples = read_wav(dst)
    assert (params.nchannels, params.framerate, params.sampwidth) == (1, 16000, 2)
    assert params.nframes / 16000 == pytest.approx(2.0, abs=FRAME_S)
    assert result.source_stream.codec == "aac"
    assert dominant_frequency_hz(samples, 16000) == pytest.approx(440, abs=1)


def test_audio_only_mp4_is_fine_as_audio(media, tmp_path: Path) -> None:
    result = normalize_audio(media.audio_only_mp4, tmp_path / "audio.wav")

    assert result.output.duration_s == pytest.approx(2.0, abs=FRAME_S)


def test_estimated_duration_is_not_mistaken_for_truncation(media, tmp_path: Path) -> None:
    declared = probe(media.mp3_vbr_without_xing).audio

    result = normalize_audio(media.mp3_vbr_without_xing, tmp_path / "audio.wav")

    assert declared is not None and declared.duration_s > 4.0  # FFmpeg's guess from the bitrate
    assert result.output.duration_s == pytest.approx(3.0, abs=0.05)


def test_video_without_sound_offered_as_audio(media, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"'vfr\.mp4' has no audio stream \(it is a video without sound\)"):
        normalize_audio(media.video_vfr, tmp_path / "audio.wav")


def test_extracting_audio_from_a_silent_video(media, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"'vfr\.mp4' has no audio track to extract"):
        extract_audio(media.video_vfr, tmp_path / "audio.wav")


def test_text_file_named_wav_is_bad_input(media, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"'notes\.wav' is not a readable media file \(it contains text"):
        normalize_audio(media.text_named_wav, tmp_path / "audio.wav")


# --- images -------------------------------------------------------------------------------------


def test_exif_orientation_is_applied(media, tmp_path: Path) -> None:
    dst = tmp_path / "image.png"

    result = normalize_image(media.jpeg_exif_rotated, dst)

    with Image.open(dst) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (20, 40))
        assert not image.getexif()
        # Orientation 6 = shown rotated 90 degrees clockwise: the stored top-left square ends top-right.
        assert image.getpixel((17, 2)) == pytest.approx((0, 0, 255), abs=40)
        assert image.getpixel((2, 2)) == pytest.approx((255, 0, 0), abs=40)
    assert result.exif_orientation == 6
    assert (result.width, result.height) == (20, 40)


@pytest.mark.parametrize(
    ("name", "left", "right", "alpha"),
    [
        ("jpeg_cmyk", (255, 0, 0), (255, 0, 0), "none"),
        ("png_rgba", (0, 255, 0), (255, 255, 255), "flattened on white"),
        ("png_palette", (0, 255, 0), (255, 255, 255), "flattened on white"),
        ("png_grey16", (128, 128, 128), (128, 128, 128), "none"),
        ("png_with_icc", (230, 120, 30), (230, 120, 30), "none"),
    ],
)
def test_images_become_rgb(media, tmp_path: Path, name: str, left: tuple, right: tuple, alpha: str) -> None:
    dst = tmp_path / "image.png"

    result = normalize_image(getattr(media, name), dst)

    with Image.open(dst) as image:
        assert (image.mode, image.size) == ("RGB", (30, 20))
        assert image.getpixel((2, 10)) == pytest.approx(left, abs=3)
        assert image.getpixel((27, 10)) == pytest.approx(right, abs=3)
    assert result.alpha == alpha


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("png_empty", r"'empty\.png' is empty \(0 bytes\)"),
        ("png_zero_size", r"'nothing\.png' is an image with no pixels \(0x0\)"),
        ("png_garbage", r"'garbage\.png' is not an image Pillow can read \(it starts like a PNG"),
        ("png_truncated", r"'cut\.png' is a damaged image"),
        ("text_named_wav", r"'notes\.wav' is not an image Pillow can read"),
    ],
)
def test_bad_image_is_bad_input_naming_the_file(media, tmp_path: Path, name: str, pattern: str) -> None:
    with pytest.raises(BadInput, match=pattern):
        normalize_image(getattr(media, name), tmp_path / "image.png")

    assert not list(tmp_path.iterdir())
