"""Run the ffmpeg command-line tool: find the binary, run a command built with ffmpeg-python, report progress.

The binary is the static one bundled with `imageio-ffmpeg` (users have no system ffmpeg); an `ffmpeg` on PATH
is the fallback. Commands are built with ffmpeg-python (`ffmpeg.input(...).output(...)`) and run by
`run_ffmpeg`, which adds `-progress pipe:1` so a long conversion reports the fraction done, and translates a
failed run into `BadInput` carrying the last meaningful lines ffmpeg wrote to stderr.

Errors:
    BadInput             ffmpeg exited non-zero (almost always the input's fault; the message quotes ffmpeg)
    TransientStageError  ffmpeg failed for lack of disk space or memory
    PipelineError        no ffmpeg binary could be found (an installation problem, not the input's)
    anything the progress callback raises (e.g. `Cancelled`) propagates after ffmpeg was stopped
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.base import BadInput, PipelineError, TransientStageError

FractionCallback = Callable[[float], None]

# Lines of ffmpeg's stderr that carry no diagnosis of their own.
_NOISE_PREFIXES = ("Conversion failed", "Error opening output files", "Error opening input files")
_TRANSIENT_MARKERS = ("No space left on device", "Cannot allocate memory")
_STDERR_TAIL_LINES = 4
_ADDRESS = re.compile(r" @ 0x[0-9a-f]+")  # "[mov,mp4 @ 0x55d9da1495c0]": the pointer is noise in a message


@dataclass(frozen=True)
class FfmpegRun:
    """What a successful run left behind: the command and ffmpeg's stderr (errors and warnings only)."""

    args: tuple[str, ...]
    stderr_lines: tuple[str, ...]


def find_ffmpeg() -> str:
    """Path of the ffmpeg binary: imageio-ffmpeg's bundled one, else `ffmpeg` on PATH.

    Raises PipelineError (an installation problem) when neither exists.
    """
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:  # RuntimeError: the wheel has no binary for this platform
        on_path = shutil.which("ffmpeg")
        if on_path:
            return on_path
        raise PipelineError(
            "no ffmpeg binary found: install the 'imageio-ffmpeg' package (it bundles one) or put ffmpeg on PATH"
        ) from exc


@functools.lru_cache(maxsize=8)
def has_soxr(exe: str) -> bool:
    """Whether this ffmpeg's `aresample` filter offers the SoX resampler (static imageio-ffmpeg builds do)."""
    completed = subprocess.run(
        [exe, "-hide_banner", "-h", "filter=aresample"], capture_output=True, text=True, check=False
    )
    return "soxr" in completed.stdout


def run_ffmpeg(
    stream_spec: Any,
    *,
    source: Path,
    expected_duration_s: float | None = None,
    progress: FractionCallback | None = None,
    exe: str | None = None,
) -> FfmpegRun:
    """Run an ffmpeg-python stream spec (an `.output(...)` node) to completion.

    `source` is the input file, named in error messages. When `expected_duration_s` and `progress` are given,
    `progress(fraction)` is called with 0..1 as ffmpeg reports its output time (and 1.0 at the end). If the
    callback raises (e.g. `Cancelled`), ffmpeg is killed and the exception propagates.
    """
    exe = exe or find_ffmpeg()
    spec = stream_spec.global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning")
    spec = spec.global_args("-progress", "pipe:1").overwrite_output()
    args = tuple(spec.compile(cmd=exe))
    try:
        process = spec.run_async(cmd=exe, pipe_stdout=True, pipe_stderr=True)
    except OSError as exc:
        raise PipelineError(f"could not start ffmpeg at {exe!r}: {exc}") from exc

    stderr_chunks: list[bytes] = []
    # NOTE: stderr is drained on a thread while stdout (the progress stream) is read here, so that neither
    # pipe can fill up and stall ffmpeg.
    drain = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()), daemon=True)
    drain.start()
    try:
        _follow_progress(process.stdout, expected_duration_s, progress)
        returncode = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        drain.join()
        process.stdout.close()
        process.stderr.close()

    stderr_text = _ADDRESS.sub("", b"".join(stderr_chunks).decode("utf-8", "replace"))
    stderr_lines = tuple(line.strip() for line in stderr_text.splitlines() if line.strip())
    if returncode != 0:
        raise _translate_failure(source, returncode, stderr_lines)
    if progress is not None:
        progress(1.0)
    return FfmpegRun(args=args, stderr_lines=stderr_lines)


def _follow_progress(stdout: Any, expected_duration_s: float | None, progress: FractionCallback | None) -> None:
    """Read ffmpeg's `-progress` lines until it closes stdout; report `out_time_us` as a fraction."""
    for raw in iter(stdout.readline, b""):
        if progress is None or not expected_duration_s or expected_duration_s <= 0:
            continue
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            fraction = int(value) / 1e6 / expected_duration_s
            progress(min(max(fraction, 0.0), 0.99))


def last_meaningful_lines(stderr_lines: Sequence[str], count: int = _STDERR_TAIL_LINES) -> list[str]:
    """The last `count` stderr lines that say something (ffmpeg's closing boilerplate is dropped)."""
    meaningful = [line for line in stderr_lines if not line.startswith(_NOISE_PREFIXES)]
    return meaningful[-count:]


def _translate_failure(source: Path, returncode: int, stderr_lines: Sequence[str]) -> PipelineError:
    tail = last_meaningful_lines(stderr_lines) or [f"ffmpeg exited with status {returncode} and said nothing"]
    detail = " | ".join(tail)
    if any(marker in line for line in stderr_lines for marker in _TRANSIENT_MARKERS):
        return TransientStageError(f"ffmpeg ran out of resources while converting {source.name!r}: {detail}")
    return BadInput(
        f"{source.name!r} could not be converted by ffmpeg ({detail}); "
        "check that it plays in a media player, then re-export it or upload the original"
    )
