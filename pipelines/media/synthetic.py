"""Generated media for the demo and for tests, made offline with the ffmpeg binary that pip installs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run(args: list[str]) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_video(path: Path, *, seconds: float = 3.0, fps: int = 30, size: str = "320x240", audio: bool = True) -> Path:
    """An H.264 test pattern (not 25 fps by default, so normalisation has work to do), with a 44.1 kHz tone."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}", "-ac", "2"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-shortest"] if audio else []
    _run([*args, str(path)])
    return path


def make_audio(path: Path, *, seconds: float = 3.0, sample_rate_hz: int = 48000) -> Path:
    """A stereo WAV with a syllable-like rhythm: a tone switched on and off four times a second."""
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    envelope = (np.sin(2 * np.pi * 4 * t) > 0).astype(np.float64)
    mono = 0.3 * envelope * np.sin(2 * np.pi * 220 * t)
    stereo = (np.stack([mono, mono], axis=1) * 32767).astype("<i2")
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(sample_rate_hz)
        out.writeframes(stereo.tobytes())
    return path


def make_image(path: Path, *, width: int = 320, height: int = 240) -> Path:
    """A colour gradient JPEG."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    rgb = np.stack(
        [
            np.broadcast_to(x, (height, width)),
            np.broadcast_to(y, (height, width)),
            np.full((height, width), 128.0),
        ],
        axis=2,
    ).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=90)
    return path


@dataclass(frozen=True)
class DemoMedia:
    video: Path
    audio: Path
    image: Path


def make_demo_media(folder: Path) -> DemoMedia:
    """The demo twin's uploads; made once and reused (same bytes, so re-ingest reports "unchanged")."""
    folder.mkdir(parents=True, exist_ok=True)
    video, audio, image = folder / "demo_clip.mp4", folder / "demo_voice.wav", folder / "demo_photo.jpg"
    if not video.exists():
        make_video(video)
    if not audio.exists():
        make_audio(audio)
    if not image.exists():
        make_image(image)
    return DemoMedia(video=video, audio=audio, image=image)
