"""Media made at test time: short clips from ffmpeg's lavfi sources, images from PIL, broken files by hand.

Every generated file is made once per session (`media` fixture) in a temporary folder; tests copy nothing and
write their outputs to their own `tmp_path`.
"""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from pipelines.media.ffmpeg_tool import find_ffmpeg

SHARED_MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
SIZE = "160x120"
DURATION_S = 2


def run_ffmpeg_cli(*args: str) -> None:
    """Run the bundled ffmpeg with `args`; fail the test set-up loudly if it fails."""
    command = [find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, f"{' '.join(command)}\n{completed.stderr}"


def top_level_boxes(path: Path) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of an MP4's top-level boxes."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append((kind, offset, size))
        if size < 8:
            break
        offset += size
    return boxes


def png_bytes(width: int, height: int) -> bytes:
    """A PNG whose header says `width`x`height` (PIL cannot write a 0x0 image, so this is built by hand)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


class Media:
    """Lazily generated test media; each property makes its file on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._made: dict[str, Path] = {}

    def _once(self, name: str, make: Callable[[Path], None]) -> Path:
        if name not in self._made:
            path = self.folder / name
            make(path)
            self._made[name] = path
        return self._made[name]

    # --- video -----------------------------------------------------------------------------------

    @property
    def video_30fps_with_audio(self) -> Path:
        """2 s, 160x120, 30 fps H.264 + 44.1 kHz stereo AAC; moov at the end (ffmpeg's default)."""
        return self._once(
            "talk_30fps.mp4",
            lambda path: run_ffmpeg_cli(
                "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate=30:duration={DURATION_S}",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={DURATION_S}",
                "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-shortest", str(path),
            ),
        )  # fmt: skip

    @property
    def video_faststart(self) -> Path:
        """The same clip with its moov box first, so that cutting it in half leaves a readable index."""
        return self._once(
            "talk_faststart.mp4",
            lambda path: run_ffmpeg_cli(
                "-i", str(self.video_30fps_with_audio), "-c", "copy", "-movflags", "+faststart", str(path)
            ),
        )  # fmt: skip

    @property
    def video_vfr(self) -> Path:
        """2 s at ~30 fps with uneven frame intervals (alternately 20 and 46 ms), no audio."""
        return self._once(
            "vfr.mp4",
            lambda path: run_ffmpeg_cli(
                "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate=30:duration={DURATION_S}",
                "-vf", "setpts='(N/30+0.013*mod(N,2))/TB'", "-fps_mode", "vfr",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
            ),
        )  # fmt: skip

    @property
    def video_marked_corner(self) -> Path:
        """2 s, 160x120 at 25 fps, red with a blue square in the top-left corner, no audio."""
        return self._once(
            "corner.mp4",
            lambda path: run_ffmpeg_cli(
                "-f", "lavfi", "-i", f"color=c=red:size={SIZE}:rate=25:duration={DURATION_S}",
                "-vf", "drawbox=x=0:y=0:w=40:h=40:color=blue:t=fill",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
            ),
        )  # fmt: skip

    @property
    def video_rotated(self) -> Path:
        """`video_marked_corner` with a phone-style display matrix: shown turned 90 degrees anticlockwise."""
        return self.rotated(90)

    def rotated(self, degrees: int) -> Path:
        """`video_marked_corner` with a display matrix asking players to turn it `degrees` anticlockwise.

        NOTE: on ffmpeg 9 the input option `-display_rotation` with `-c copy` writes the display matrix;
        `-metadata:s:v rotate=90` no longer does anything.
        """
        return self._once(
            f"rotated_{degrees}.mp4",
            lambda path: run_ffmpeg_cli(
                "-display_rotation", str(degrees), "-i", str(self.video_marked_corner), "-c", "copy", str(path)
            ),
        )  # fmt: skip

    @property
    def video_odd_size(self) -> Path:
        """2 s, 161x121, 25 fps H.264 4:4:4 (4:2:0 cannot have odd sizes, so the normaliser must fix it)."""
        return self._once(
            "odd.mp4",
            lambda path: run_ffmpeg_cli(
                "-f", "lavfi", "-i", f"testsrc=size=161x121:rate=25:duration={DURATION_S}",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(path),
            ),
        )  # fmt: skip

    @property
    def audio_only_mp4(self) -> Path:
        """2 s of AAC in an MP4 with no video stream."""
        return self._once(
            "voice_only.mp4",
            lambda path: run_ffmpeg_cli(
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={DURATION_S}",
                "-c:a", "aac", str(path),
            ),
        )  # fmt: skip

    # --- audio -----------------------------------------------------------------------------------

    @property
    def wav_44k_stereo(self) -> Path:
        """2 s, 44.1 kHz stereo PCM16: 440 Hz left, 1000 Hz right."""
        return self._once(
            "voice_44k_stereo.wav",
            lambda path: run_ffmpeg_cli(
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={DURATION_S}",
                "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=44100:duration={DURATION_S}",
                "-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo", "-c:a", "pcm_s16le",
                str(path),
            ),
        )  # fmt: skip

    @property
    def mp3_vbr_without_xing(self) -> Path:
        """1.5 s of silence then 1.5 s of noise, VBR MP3 with no Xing header: FFmpeg can only estimate its
        duration from the first frames' bitrate, and estimates 4.8 s."""
        return self._once(
            "no_xing.mp3",
            lambda path: run_ffmpeg_cli(
                "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-f", "lavfi", "-i", "anoisesrc=r=44100:d=1.5",
                "-filter_complex", "[0:a]atrim=duration=1.5[silence];[silence][1:a]concat=n=2:v=0:a=1",
                "-c:a", "libmp3lame", "-q:a", "4", "-write_xing", "0", str(path),
            ),
        )  # fmt: skip

    # --- broken files ----------------------------------------------------------------------------

    @property
    def empty_mp4(self) -> Path:
        return self._once("empty.mp4", lambda path: path.write_bytes(b""))

    @property
    def text_named_wav(self) -> Path:
        return self._once("notes.wav", lambda path: path.write_text("meeting notes, not a recording\n" * 20))

    @property
    def mp4_first_half(self) -> Path:
        """The first half of a faststart MP4: the index is there, half the frames are not."""

        def make(path: Path) -> None:
            data = self.video_faststart.read_bytes()
            path.write_bytes(data[: len(data) // 2])

        return self._once("first_half.mp4", make)

    @property
    def mp4_without_moov(self) -> Path:
        """A real MP4 (moov at the end) with its moov box cut off, as an interrupted upload leaves it."""

        def make(path: Path) -> None:
            source = self.video_30fps_with_audio
            moov = next(offset for kind, offset, _ in top_level_boxes(source) if kind == b"moov")
            path.write_bytes(source.read_bytes()[:moov])

        return self._once("no_moov.mp4", make)

    @property
    def mp4_undecodable(self) -> Path:
        """A valid MP4 container whose H.264 payload is all zeros: 50 frames listed, none decodable."""

        def make(path: Path) -> None:
            data = bytearray(self.video_marked_corner.read_bytes())
            for kind, offset, size in top_level_boxes(self.video_marked_corner):
                if kind == b"mdat":
                    data[offset + 8 : offset + size] = bytes(size - 8)
            path.write_bytes(bytes(data))

        return self._once("zeros.mp4", make)

    # --- images ----------------------------------------------------------------------------------

    @property
    def jpeg_exif_rotated(self) -> Path:
        """40x20 stored, red, blue top-left square; EXIF orientation 6 (shown turned 90 degrees clockwise)."""

        def make(path: Path) -> None:
            image = Image.new("RGB", (40, 20), (255, 0, 0))
            image.paste((0, 0, 255), (0, 0, 10, 10))
            exif = image.getexif()
            exif[0x0112] = 6
            image.save(path, format="JPEG", quality=95, exif=exif.tobytes())

        return self._once("phone.jpg", make)

    @property
    def jpeg_cmyk(self) -> Path:
        return self._once(
            "print.jpg", lambda path: Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(path, quality=95)
        )

    @property
    def png_rgba(self) -> Path:
        """30x20: left half opaque green, right half fully transparent (black underneath)."""

        def make(path: Path) -> None:
            image = Image.new("RGBA", (30, 20), (0, 0, 0, 0))
            image.paste((0, 255, 0, 255), (0, 0, 15, 20))
            image.save(path)

        return self._once("cutout.png", make)

    @property
    def png_palette(self) -> Path:
        """30x20 palette image: left half green, right half the transparent palette entry."""

        def make(path: Path) -> None:
            image = Image.new("P", (30, 20), 0)
            image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
            image.paste(1, (0, 0, 15, 20))
            image.save(path, transparency=0)

        return self._once("palette.png", make)

    @property
    def png_grey16(self) -> Path:
        return self._once("grey16.png", lambda path: Image.new("I;16", (30, 20), 0x8080).save(path))

    @property
    def png_with_icc(self) -> Path:
        """30x20 orange, with an embedded sRGB ICC profile (the conversion to sRGB must keep its colour)."""

        def make(path: Path) -> None:
            icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
            Image.new("RGB", (30, 20), (230, 120, 30)).save(path, icc_profile=icc)

        return self._once("profiled.png", make)

    @property
    def png_zero_size(self) -> Path:
        return self._once("nothing.png", lambda path: path.write_bytes(png_bytes(0, 0)))

    @property
    def png_garbage(self) -> Path:
        return self._once("garbage.png", lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x07" * 200))

    @property
    def png_truncated(self) -> Path:
        def make(path: Path) -> None:
            buffer = io.BytesIO()
            Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, format="PNG")
            path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])

        return self._once("cut.png", make)

    @property
    def png_empty(self) -> Path:
        return self._once("empty.png", lambda path: path.write_bytes(b""))


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return Media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def shared_media() -> Path:
    """../shared/media (real recordings); tests using it skip where it is absent, e.g. in a user's clone."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip(f"real test media not found at {SHARED_MEDIA} (only CI and developer machines have it)")
    return SHARED_MEDIA
