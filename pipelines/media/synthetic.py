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


def face_photo(name: str = "astronaut") -> np.ndarray:
    """A real portrait (RGB uint8) that ships inside an installed wheel, so no download is needed.

    "astronaut": scikit-image's `astronaut.png` (512x512, NASA, public domain); "grace_hopper": matplotlib's
    `grace_hopper.jpg` (512x600, public domain).
    """
    if name == "astronaut":
        from skimage import data

        return np.asarray(data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]
    if name == "grace_hopper":
        from matplotlib import cbook

        location = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        with Image.open(str(location)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    raise ValueError(f"unknown photo {name!r}; use astronaut or grace_hopper")


def make_face_video(
    path: Path,
    *,
    photo: np.ndarray | None = None,
    seconds: float = 2.0,
    fps: int = 30,
    size: int = 384,
    audio: bool = True,
) -> Path:
    """An H.264 clip of a real face photo gently moving (turn, nod, drift), with a 44.1 kHz tone.

    `size` is the height; the width keeps `photo`'s aspect (the default photo is cropped square).
    Frames are piped to ffmpeg as raw RGB. The motion is smooth and known, so tracking and smoothing have
    something real to follow; 30 fps by default so normalisation to 25 fps has work to do.
    """
    import cv2

    source = face_photo() if photo is None else photo
    if photo is None:  # the astronaut: a square crop around her face
        side = min(source.shape[:2])
        source = source[:side, (source.shape[1] - side) // 2 :][:, :side]
    width = max(2, round(size * source.shape[1] / source.shape[0] / 2) * 2)  # keep the aspect; even for yuv420p
    picture = cv2.resize(source, (width, size), interpolation=cv2.INTER_AREA)
    frames = int(round(seconds * fps))
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{size}", "-r", str(fps), "-i", "-"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}", "-ac", "2"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-frames:v", str(frames)]
    args += ["-c:a", "aac", "-shortest"] if audio else []
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as process:
        assert process.stdin is not None
        for index in range(frames):
            t = index / fps
            angle = 3.0 * np.sin(2 * np.pi * 0.5 * t)
            scale = 1.0 + 0.03 * np.sin(2 * np.pi * 0.3 * t)
            matrix = cv2.getRotationMatrix2D((width / 2, size / 2), angle, scale)
            matrix[:, 2] += (6.0 * np.sin(2 * np.pi * 0.4 * t), 4.0 * np.cos(2 * np.pi * 0.35 * t))
            frame = cv2.warpAffine(
                picture, matrix, (width, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            process.stdin.write(np.ascontiguousarray(frame).tobytes())
        process.stdin.close()
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path} (exit {process.returncode})")
    return path


def make_face_image(path: Path, *, name: str = "grace_hopper") -> Path:
    """A real portrait JPEG from a wheel (see `face_photo`)."""
    Image.fromarray(face_photo(name)).save(path, quality=92)
    return path


DEMO_SPEECH = Path(__file__).with_name("data") / "demo_speech.wav"
"""8.5 s of English speech with a pause in the middle, 16 kHz mono: "Hello. I am your digital twin, made on this
machine." ... "Nothing was downloaded to make me speak." Synthesised once with espeak-ng (en-us, 150 wpm) when
this file was made and kept in the repository, since a user's machine has no synthesiser."""


@dataclass(frozen=True)
class DemoMedia:
    video: Path
    audio: Path
    image: Path


def make_demo_media(folder: Path) -> DemoMedia:
    """The demo twin's uploads; made once and reused (same bytes, so re-ingest reports "unchanged")."""
    folder.mkdir(parents=True, exist_ok=True)
    video, audio, image = folder / "demo_face.mp4", folder / "demo_voice.wav", folder / "demo_portrait.jpg"
    if not video.exists():
        # Grace Hopper: her lips are closed in the portrait, so the mouth's rest shape is a closed mouth.
        make_face_video(video, photo=face_photo("grace_hopper")[44:556], seconds=3.0)
    if not audio.exists():
        make_audio(audio)
    if not image.exists():
        make_face_image(image, name="astronaut")
    return DemoMedia(video=video, audio=audio, image=image)
