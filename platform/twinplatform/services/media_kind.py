"""Deciding whether an uploaded file is audio, image or video: by its content first, its extension second."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twinplatform.domain import MediaKind
from twinplatform.errors import InputError

EXTENSION_KINDS: dict[str, MediaKind] = {
    **{ext: MediaKind.AUDIO for ext in (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".aac", ".wma")},
    **{ext: MediaKind.VIDEO for ext in (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")},
    **{ext: MediaKind.IMAGE for ext in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".heic")},
}


@dataclass(frozen=True)
class Detection:
    kind: MediaKind
    by_content: bool
    note: str = ""  # why the content could not be read, when the extension decided


def detect_media_kind(path: Path) -> Detection:
    """Image if Pillow can read its header; else video if it has a video stream, audio if only audio; files
    whose content cannot be read fall back to their extension (the preprocess stage then reports the problem)."""
    content_problem = _sniff_problem(path)
    if isinstance(content_problem, MediaKind):
        return Detection(content_problem, by_content=True)
    by_extension = EXTENSION_KINDS.get(path.suffix.lower())
    if by_extension is None:
        raise InputError(
            f"cannot tell what {path.name!r} is ({content_problem}); pass --kind audio|image|video, "
            "or convert it to a common format (wav, mp4, png, jpg)"
        )
    return Detection(by_extension, by_content=False, note=content_problem)


def _sniff_problem(path: Path) -> MediaKind | str:
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.size  # noqa: B018  (reads the header only)
        return MediaKind.IMAGE
    except (UnidentifiedImageError, OSError, ValueError):
        pass
    import av

    try:
        with av.open(str(path)) as container:
            # NOTE: ffmpeg opens still images too (png_pipe, image2...); a picture Pillow cannot read is
            # still an image, and the image stage will say what is wrong with it.
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                return MediaKind.IMAGE
            has_video = any(stream.type == "video" and not _is_cover_art(stream) for stream in container.streams)
            has_audio = any(stream.type == "audio" for stream in container.streams)
    except (av.FFmpegError, OSError, ValueError) as exc:
        return f"not readable as media: {exc}"
    if has_video:
        return MediaKind.VIDEO
    if has_audio:
        return MediaKind.AUDIO
    return "it has neither audio nor video streams"


def _is_cover_art(stream: object) -> bool:
    disposition = getattr(stream, "disposition", None)
    return bool(disposition is not None and "attached_pic" in str(disposition).lower())
