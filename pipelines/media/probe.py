"""Describe a media file: container, duration, size and its video and audio streams (read with PyAV).

`probe` opens the file, reads the container's stream table and decodes the first frame of each video stream
(the only place FFmpeg exposes the display matrix, i.e. the phone's rotation). It never decodes further.

Errors:
    BadInput  the file is missing, empty, or not a media file PyAV can read; the message names the file,
              the problem and the fix.
"""

from __future__ import annotations

import codecs
import threading
from dataclasses import dataclass
from pathlib import Path

import av
import av.logging

from pipelines.base import BadInput

_ATTACHED_PIC = 1024  # AV_DISPOSITION_ATTACHED_PIC: cover art stored as a one-frame "video" stream
_DEFAULT = 1  # AV_DISPOSITION_DEFAULT
_FIX = "re-export it or upload the original"
_MAX_DECODE_ERRORS = 25
_MAX_PACKETS_BEFORE_A_FRAME = 1000  # 40 s at 25 fps: a stream cut mid-GOP shows a picture well before that
_log_level_lock = threading.Lock()


@dataclass(frozen=True)
class VideoStreamInfo:
    """One video stream. `width`/`height` are the coded size, before rotation.

    `rotation_deg` is the counter-clockwise rotation a player applies for display (FFmpeg's display matrix, as
    PyAV's `VideoFrame.rotation` reads it), normalised to 0, 90, 180 or 270; a phone held upright typically
    records 270 (ffprobe prints it as "rotation of -90.00 degrees"). `fps` is the average frame rate.
    `frames` is the container's frame count, None when the container does not say. `decodable` tells whether
    the first frame could be decoded.
    """

    index: int
    codec: str
    width: int
    height: int
    fps: float | None
    frames: int | None
    duration_s: float | None
    rotation_deg: int
    pix_fmt: str | None
    decodable: bool
    is_default: bool = False
    is_attached_picture: bool = False

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown to a viewer, i.e. after rotation."""
        if self.rotation_deg in (90, 270):
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream. `codec` is FFmpeg's codec name (mp3, aac, pcm_s16le...), `sample_format` its sample
    format name (s16, fltp, ...)."""

    index: int
    codec: str
    sample_rate_hz: int
    channels: int
    sample_format: str | None
    duration_s: float | None
    is_default: bool = False


@dataclass(frozen=True)
class MediaInfo:
    """A media file as PyAV sees it. `format_name` is the demuxer's name (e.g. "mov,mp4,m4a,3gp,3g2,mj2")."""

    path: Path
    format_name: str
    duration_s: float | None
    size_bytes: int
    video_streams: tuple[VideoStreamInfo, ...]
    audio_streams: tuple[AudioStreamInfo, ...]

    @property
    def video(self) -> VideoStreamInfo | None:
        """The stream a player would show: the default one, else the first; cover art does not count."""
        moving = [stream for stream in self.video_streams if not stream.is_attached_picture]
        return next((s for s in moving if s.is_default), moving[0] if moving else None)

    @property
    def audio(self) -> AudioStreamInfo | None:
        """The stream a player would play: the default one, else the first."""
        streams = self.audio_streams
        return next((s for s in streams if s.is_default), streams[0] if streams else None)


def probe(path: Path) -> MediaInfo:
    """Read `path`'s container and stream table. BadInput when the file is missing, empty or unreadable."""
    path = Path(path)
    size_bytes = check_not_empty(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        if _looks_like_text(path):
            raise BadInput(
                f"{path.name!r} is not a readable media file (it contains text, not audio or video); "
                "upload the recording itself"
            ) from exc
        raise BadInput(f"{path.name!r} is not a readable media file ({_diagnose(path, exc)}); {_FIX}") from exc
    with container:
        video = tuple(_video_info(container, stream) for stream in container.streams.video)
        audio = tuple(_audio_info(stream) for stream in container.streams.audio)
        duration_s = container.duration / 1e6 if container.duration and container.duration > 0 else None
        return MediaInfo(
            path=path,
            format_name=container.format.name,
            duration_s=duration_s,
            size_bytes=size_bytes,
            video_streams=video,
            audio_streams=audio,
        )


def check_not_empty(path: Path) -> int:
    """Return the file's size; BadInput if it is missing, not a file, or zero bytes."""
    try:
        size_bytes = path.stat().st_size
    except FileNotFoundError as exc:
        raise BadInput(f"{path.name!r} does not exist at {path}; upload it again") from exc
    if not path.is_file():
        raise BadInput(f"{path.name!r} is not a file ({path}); upload a media file")
    if size_bytes == 0:
        raise BadInput(f"{path.name!r} is empty (0 bytes): the upload or export did not finish; upload the file again")
    return size_bytes


def _video_info(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> VideoStreamInfo:
    context = stream.codec_context
    disposition = int(stream.disposition)
    rotation, decodable = _first_frame_rotation(container, stream)
    if not rotation:
        rotation = _rotate_tag(stream.metadata.get("rotate"))
    return VideoStreamInfo(
        index=stream.index,
        codec=context.codec.canonical_name,
        width=context.width,
        height=context.height,
        fps=float(stream.average_rate) if stream.average_rate else None,
        frames=stream.frames or None,
        duration_s=_stream_duration_s(stream),
        rotation_deg=rotation,
        pix_fmt=context.format.name if context.format is not None else None,
        decodable=decodable,
        is_default=bool(disposition & _DEFAULT),
        is_attached_picture=bool(disposition & _ATTACHED_PIC),
    )


def _audio_info(stream: av.audio.stream.AudioStream) -> AudioStreamInfo:
    context = stream.codec_context
    return AudioStreamInfo(
        index=stream.index,
        codec=context.codec.canonical_name,
        sample_rate_hz=context.sample_rate,
        channels=context.layout.nb_channels,
        sample_format=context.format.name if context.format is not None else None,
        duration_s=_stream_duration_s(stream),
        is_default=bool(int(stream.disposition) & _DEFAULT),
    )


def _first_frame_rotation(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[int, bool]:
    """(rotation in degrees, whether a frame decoded) from the first decodable frame of `stream`.

    Packets that fail to decode are skipped (a clip cut mid-GOP starts with some), up to a bound, so that a
    wholly corrupt stream is reported as undecodable without being read to the end.
    """
    if stream.index != container.streams.video[0].index:
        try:
            container.seek(0)
        except av.error.FFmpegError:
            return 0, False
    errors = 0
    try:
        for count, packet in enumerate(container.demux(stream)):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                frames = []
            if frames:
                return _normalise_degrees(frames[0].rotation), True
            if errors > _MAX_DECODE_ERRORS or count > _MAX_PACKETS_BEFORE_A_FRAME:
                break
    except av.error.FFmpegError:
        pass  # NOTE: a demux error here means the same as no frame: reported through `decodable`
    return 0, False


def _rotate_tag(value: str | None) -> int:
    """The legacy `rotate` tag (clockwise degrees), as the counter-clockwise angle `rotation_deg` uses."""
    try:
        return _normalise_degrees(-float(value)) if value else 0
    except ValueError:
        return 0


def _normalise_degrees(degrees: float) -> int:
    return int(round(degrees / 90.0)) % 4 * 90


def _stream_duration_s(stream: av.stream.Stream) -> float | None:
    if stream.duration is None or stream.duration <= 0 or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _diagnose(path: Path, exc: Exception) -> str:
    """Why FFmpeg could not open `path`: its own log line (e.g. "moov atom not found") when it wrote one."""
    reason = "truncated or corrupt" if path.suffix.lower() in {".mp4", ".mov", ".m4a", ".m4v"} else "unknown format"
    # NOTE: PyAV keeps FFmpeg's log off by default; it is switched on only here, to re-open the failed file
    # and catch the line that explains the failure, and restored at once.
    with _log_level_lock:
        previous, skipped_repeats = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.ERROR)
        av.logging.set_skip_repeated(False)  # else the same file failing twice says nothing the second time
        try:
            with av.logging.Capture() as logs:
                try:
                    av.open(str(path)).close()
                except av.error.FFmpegError:
                    pass
        finally:
            av.logging.set_level(previous)
            av.logging.set_skip_repeated(skipped_repeats)
    messages = [message.strip() for _, _, message in logs if message.strip()]
    if messages:
        return f"{reason}: {messages[-1]}"
    return f"{reason}: {getattr(exc, 'strerror', None) or exc}"


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(512)
    if not head or b"\x00" in head:
        return False
    try:
        # an incremental decoder tolerates a character cut in two at the 512-byte boundary
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch.isspace() for ch in text)
