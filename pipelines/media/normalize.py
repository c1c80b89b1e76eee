"""Convert uploaded media to the platform's canonical forms, deterministically.

    audio  -> mono PCM16 WAV at 16 kHz                (normalize_audio, extract_audio)
    video  -> H.264 yuv420p MP4, constant 25 fps,     (normalize_video)
              rotation applied, even size, square pixels, no audio, +faststart
    image  -> RGB PNG, EXIF orientation applied, alpha flattened on white, colours in sRGB  (normalize_image)

Identical input gives byte-identical output (the platform skips stages whose inputs did not change, and
compares checksums): metadata is dropped, muxers, encoders and scalers run in bitexact mode, and x264 uses a
fixed thread count.
Audio and video share one time origin, the container's start: `extract_audio`'s first sample and
`normalize_video`'s first frame are both at t = 0 (gaps at the start are padded), so frame i of video.mp4 is
at i / fps seconds of audio.wav.

Errors:
    BadInput          the input cannot be converted; the message names the file, the problem and the fix
    OutputCheckError  the converted file is not what was asked for: a bug here, never the input's fault
    (and what `pipelines.media.ffmpeg_tool.run_ffmpeg` raises)
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from pipelines.base import BadInput
from pipelines.media.ffmpeg_tool import FractionCallback, find_ffmpeg, has_soxr, run_ffmpeg
from pipelines.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo, check_not_empty, probe

# x264 output depends on its thread count; fixing it makes the encode the same on every machine.
X264_THREADS = 4
X264_PRESET = "medium"
X264_CRF = 18
# A conversion that decodes less than this share of the declared duration is reported as a truncated input.
_MIN_DECODED_SHARE = 0.9
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class OutputCheckError(RuntimeError):
    """A converted file failed its format check: a bug in the conversion, not a problem of the input."""


@dataclass(frozen=True)
class AudioConversion:
    """What `normalize_audio`/`extract_audio` read and wrote."""

    source: MediaInfo
    source_stream: AudioStreamInfo
    output: AudioStreamInfo


@dataclass(frozen=True)
class VideoConversion:
    """What `normalize_video` read and wrote. `output.frames` is the number of frames written."""

    source: MediaInfo
    source_stream: VideoStreamInfo
    output: VideoStreamInfo


@dataclass(frozen=True)
class ImageConversion:
    """What `normalize_image` read and wrote; `alpha` is "flattened on white" or "none"."""

    source_format: str
    source_mode: str
    source_size: tuple[int, int]
    exif_orientation: int
    alpha: str
    width: int
    height: int


def normalize_audio(
    src: Path, dst_wav: Path, sample_rate_hz: int = 16000, *, progress: FractionCallback | None = None
) -> AudioConversion:
    """Write `src`'s audio (any audio or video file) to `dst_wav` as mono PCM16 WAV at `sample_rate_hz`."""
    src, dst_wav = Path(src), Path(dst_wav)
    info = probe(src)
    stream = info.audio
    if stream is None:
        kind = "a video" if info.video is not None else "a media file"
        raise BadInput(
            f"{src.name!r} has no audio stream (it is {kind} without sound): upload a recording of the "
            "person's voice as the audio (wav, mp3, m4a...)"
        )
    return _convert_audio(info, stream, dst_wav, sample_rate_hz, progress)


def extract_audio(
    src_video: Path, dst_wav: Path, sample_rate_hz: int = 16000, *, progress: FractionCallback | None = None
) -> AudioConversion:
    """Write the audio track of `src_video` to `dst_wav` (mono PCM16 WAV), aligned with `normalize_video`.

    Raises BadInput when the video has no audio track; callers that treat that as normal check
    `probe(src_video).audio` first.
    """
    src_video, dst_wav = Path(src_video), Path(dst_wav)
    info = probe(src_video)
    stream = info.audio
    if stream is None:
        raise BadInput(f"{src_video.name!r} has no audio track to extract; upload a video recorded with sound")
    return _convert_audio(info, stream, dst_wav, sample_rate_hz, progress)


def normalize_video(
    src: Path, dst_mp4: Path, fps: float = 25, *, progress: FractionCallback | None = None
) -> VideoConversion:
    """Write `src`'s video to `dst_mp4`: H.264 yuv420p at constant `fps`, upright, even-sized, square pixels,
    no audio.

    Raises BadInput for a file with no video stream (e.g. an audio-only MP4), no decodable frame, or a video
    that ends well before its declared duration (a truncated upload).
    """
    src, dst_mp4 = Path(src), Path(dst_mp4)
    info = probe(src)
    stream = info.video
    if stream is None:
        if info.audio is not None:
            raise BadInput(
                f"{src.name!r} has no video stream: ingest it as audio "
                f"(platform twin ingest TWIN {src.name} --kind audio) or upload a video"
            )
        raise BadInput(f"{src.name!r} has no video stream (and no audio): upload a video of the person")
    if not stream.decodable:
        raise BadInput(
            f"{src.name!r} has a video stream ({stream.codec}) but not one frame of it could be decoded "
            "(corrupt or unsupported); re-export it as H.264 MP4 or upload the original"
        )

    exe = find_ffmpeg()
    video = ffmpeg.input(str(src))[str(stream.index)]  # ffmpeg rotates upright by default (-autorotate)
    video = (
        video.filter("fps", fps=fps, start_time=0)
        # even size and square pixels; a no-op (no rescale) when the frame already has both
        .filter(
            "scale",
            w="trunc(iw*sar/2)*2",
            h="trunc(ih/2)*2",
            flags="bicubic+accurate_rnd+full_chroma_int+bitexact",
            out_range="tv",
        )
        .filter("setsar", "1")
        .filter("format", "yuv420p")
    )
    with _written_atomically(dst_mp4) as partial:
        spec = ffmpeg.output(
            video,
            str(partial),
            format="mp4",
            vcodec="libx264",
            preset=X264_PRESET,
            crf=X264_CRF,
            threads=X264_THREADS,
            pix_fmt="yuv420p",
            r=fps,
            fps_mode="cfr",
            movflags="+faststart",
            map_metadata=-1,
            map_chapters=-1,
            fflags="+bitexact",
            **{"flags:v": "+bitexact"},
        )
        expected_s = stream.duration_s or info.duration_s
        run = run_ffmpeg(spec, source=src, expected_duration_s=expected_s, progress=progress, exe=exe)
        output_info = probe(partial)
        frames = output_info.video.frames if output_info.video is not None else None
        if not frames:
            raise BadInput(
                f"{src.name!r} has a video stream but no frame of it could be decoded; "
                "re-export it as H.264 MP4 or upload the original"
            )
        out = _check_video(output_info, fps, dst_mp4)
        _check_not_truncated(src, "video", expected_s, frames / fps, run.stderr_lines)
    return VideoConversion(source=info, source_stream=stream, output=out)


def normalize_image(src: Path, dst_png: Path) -> ImageConversion:
    """Write `src` to `dst_png` as an 8-bit RGB PNG.

    EXIF orientation is applied; transparency is flattened on a white background (not dropped, which would
    show whatever colour the transparent pixels happen to hold); an embedded ICC profile (e.g. Display P3,
    CMYK) is converted to sRGB; greyscale, palette, 16-bit and CMYK images become RGB.
    """
    src, dst_png = Path(src), Path(dst_png)
    check_not_empty(src)
    try:
        with Image.open(src) as opened:
            opened.load()
            source_format = opened.format or "unknown"
            source_mode = opened.mode
            source_size = opened.size
            orientation = int(opened.getexif().get(0x0112, 1) or 1)
            if 0 in opened.size:
                raise BadInput(
                    f"{src.name!r} is an image with no pixels ({opened.width}x{opened.height}); upload a real photo"
                )
            image = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError as exc:
        size = _png_header_size(src)
        if size is not None and 0 in size:
            raise BadInput(
                f"{src.name!r} is an image with no pixels ({size[0]}x{size[1]}); upload a real photo"
            ) from exc
        with src.open("rb") as handle:
            looks_like_png = handle.read(8) == _PNG_SIGNATURE
        what = "it starts like a PNG but its data is corrupt" if looks_like_png else "unknown or corrupt format"
        raise BadInput(f"{src.name!r} is not an image Pillow can read ({what}); upload a JPEG or PNG photo") from exc
    except Image.DecompressionBombError as exc:
        raise BadInput(f"{src.name!r} is too large to open safely ({exc}); upload a smaller photo") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated data, bad chunks, zero-sized headers
        raise BadInput(f"{src.name!r} is a damaged image ({exc}); re-export it or upload the original") from exc

    rgb, alpha = _to_srgb(image)
    with _written_atomically(dst_png) as partial:
        rgb.save(partial, format="PNG", compress_level=6)
        with Image.open(partial) as written:
            if written.mode != "RGB" or written.size != rgb.size:
                raise OutputCheckError(f"{dst_png.name}: wrote {written.mode} {written.size}, expected RGB")
    return ImageConversion(
        source_format=source_format,
        source_mode=source_mode,
        source_size=source_size,
        exif_orientation=orientation,
        alpha=alpha,
        width=rgb.width,
        height=rgb.height,
    )


def _convert_audio(
    info: MediaInfo,
    stream: AudioStreamInfo,
    dst_wav: Path,
    sample_rate_hz: int,
    progress: FractionCallback | None,
) -> AudioConversion:
    src = info.path
    exe = find_ffmpeg()
    # first_pts=0 pads a late start with silence: t = 0 is the container's start, as for normalize_video
    resample: dict[str, object] = {"first_pts": 0}
    if has_soxr(exe):
        resample.update(resampler="soxr", precision=28)
    audio = (
        ffmpeg.input(str(src))[str(stream.index)]
        .filter("aresample", sample_rate_hz, **resample)
        # aresample does the downmix and sample format conversion too, to meet this
        .filter("aformat", sample_fmts="s16", channel_layouts="mono")
    )
    with _written_atomically(dst_wav) as partial:
        spec = ffmpeg.output(
            audio,
            str(partial),
            format="wav",
            acodec="pcm_s16le",
            map_metadata=-1,
            fflags="+bitexact",
            **{"flags:a": "+bitexact"},
        )
        expected_s = stream.duration_s or info.duration_s
        run = run_ffmpeg(spec, source=src, expected_duration_s=expected_s, progress=progress, exe=exe)
        out = _check_audio(probe(partial), sample_rate_hz, dst_wav)
        decoded_s = out.duration_s or 0.0
        if decoded_s <= 0:
            raise BadInput(
                f"{src.name!r} has an audio stream ({stream.codec}) but none of it could be decoded; "
                "re-export it or upload the original"
            )
        _check_not_truncated(src, "audio", expected_s, decoded_s, run.stderr_lines)
    return AudioConversion(source=info, source_stream=stream, output=out)


def _check_video(info: MediaInfo, fps: float, dst: Path) -> VideoStreamInfo:
    stream = info.video
    problems = []
    if stream is None:
        raise OutputCheckError(f"{dst.name}: the converted file has no video stream")
    if info.audio_streams:
        problems.append("has an audio stream")
    if stream.codec != "h264":
        problems.append(f"codec {stream.codec}")
    if stream.pix_fmt != "yuv420p":
        problems.append(f"pix_fmt {stream.pix_fmt}")
    if stream.fps is None or abs(stream.fps - fps) > 1e-3:
        problems.append(f"{stream.fps} fps")
    if stream.rotation_deg:
        problems.append(f"rotation {stream.rotation_deg}")
    if stream.width % 2 or stream.height % 2:
        problems.append(f"odd size {stream.width}x{stream.height}")
    if problems:
        raise OutputCheckError(f"{dst.name}: expected H.264 yuv420p at {fps} fps, got " + ", ".join(problems))
    return stream


def _check_audio(info: MediaInfo, sample_rate_hz: int, dst: Path) -> AudioStreamInfo:
    stream = info.audio
    if stream is None or info.video_streams:
        raise OutputCheckError(f"{dst.name}: expected one audio stream, got {info}")
    got = (stream.codec, stream.sample_rate_hz, stream.channels, stream.sample_format)
    if got != ("pcm_s16le", sample_rate_hz, 1, "s16"):
        raise OutputCheckError(f"{dst.name}: expected pcm_s16le {sample_rate_hz} Hz mono s16, got {got}")
    return stream


def _check_not_truncated(
    src: Path, what: str, declared_s: float | None, decoded_s: float, stderr_lines: tuple[str, ...]
) -> None:
    """BadInput when much less than the declared duration could be decoded: the file was cut short.

    A duration FFmpeg only estimated (from the bitrate, e.g. a VBR MP3 without a Xing header) proves nothing.
    """
    if not declared_s or decoded_s >= declared_s * _MIN_DECODED_SHARE:
        return
    if any("Estimating duration from bitrate" in line for line in stderr_lines):
        return
    said = f"; ffmpeg said: {stderr_lines[-1]}" if stderr_lines else ""
    raise BadInput(
        f"{src.name!r} is truncated or corrupt: it declares {declared_s:.2f} s of {what} but only "
        f"{decoded_s:.2f} s could be decoded{said}; upload the complete file"
    )


def _to_srgb(image: Image.Image) -> tuple[Image.Image, str]:
    """`image` as 8-bit RGB in sRGB, and how alpha was handled ("flattened on white" or "none")."""
    icc = image.info.get("icc_profile")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale (PNG, TIFF): PIL's convert() would clip everything above 255 to white; scale instead.
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8), mode="L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        image = flat.convert("RGB")
    if icc and image.mode in ("RGB", "CMYK", "L"):
        image = _icc_to_srgb(image, icc)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image, "flattened on white" if has_alpha else "none"


def _icc_to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """Convert through the embedded ICC profile; an unusable profile is ignored (pixels taken as sRGB)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (OSError, ImageCms.PyCMSError):
        return image
    return converted if converted is not None else image


def _png_header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when the file does not start like a PNG."""
    with path.open("rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@contextlib.contextmanager
def _written_atomically(dst: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dst` (same suffix); move it onto `dst` on success, else delete it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    try:
        yield partial
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
