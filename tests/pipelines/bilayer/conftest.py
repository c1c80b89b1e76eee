"""Shared, expensive set-up of the bilayer tests: generated clips and their preprocess runs, made once a session.

The face clip is 3 s of a real face photo moving, at 30 fps: th's video stage normalises it to 75 frames at 25 fps.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.base import Pipeline
from pipelines.bilayer.frames_stage import FramesStage
from pipelines.bilayer.samples_file import Samples, load_samples
from pipelines.media.synthetic import face_photo, ffmpeg_exe, make_face_video, make_video
from pipelines.th import outputs as th_files
from tests.pipelines.bilayer.support import MAIN_SAMPLING_RATE, RerunFrames
from tests.support.local_pipelines import LocalRun, run_pipeline


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bilayer_clips")
    face = make_face_video(folder / "face.mp4", photo=face_photo()[:320, 64:384], seconds=3.0, size=256)
    faceless = make_video(folder / "pattern.mp4", seconds=2.0, size="256x256")
    late = folder / "late_face.mp4"
    _concatenate(make_video(folder / "intro.mp4", seconds=1.0, size="256x256"), face, late)
    return {"face": face, "faceless": faceless, "late_face": late}


@pytest.fixture(scope="session")
def face_twin(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """The face clip through the whole bilayer preprocess, every 5th frame kept."""
    out = tmp_path_factory.mktemp("twin_face")
    return run_pipeline(
        ("bilayer", "preprocess"), out, raw={"video": clips["face"]}, params={"sampling_rate": MAIN_SAMPLING_RATE}
    )


@pytest.fixture(scope="session")
def face_samples(face_twin: LocalRun) -> Samples:
    return load_samples(face_twin.out / "bilayer/samples.npz", "face twin")


@pytest.fixture(scope="session")
def late_face_twin(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """A clip whose first second shows no face, sampled so that only frame 0 is taken: no usable sampled frame.

    The landmarks stage refuses a video with a face in under 90 % of its frames; a twin owner may relax that
    (`quality`), and then the sampled frames can all be faceless."""
    out = tmp_path_factory.mktemp("twin_late_face")
    params = {"sampling_rate": 500, "quality": {"min_found_ratio": 0.5}}
    return run_pipeline(("bilayer", "preprocess"), out, raw={"video": clips["late_face"]}, params=params)


@pytest.fixture(scope="session")
def rerun_frames() -> RerunFrames:
    """run(source, out, **params): only the frames stage, on a copy of a preprocess run's video and landmarks."""

    def run(source: Path, out: Path, **params: object) -> LocalRun:
        for relative in (th_files.VIDEO_MP4, th_files.VIDEO_LANDMARKS):
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, out / relative)
        pipeline = Pipeline("bilayer", "preprocess", "processed", (FramesStage(),))
        return run_pipeline(pipeline, out, params=params)

    return run


def _concatenate(first: Path, second: Path, out: Path) -> None:
    filters = "[0:v]fps=30,format=yuv420p[a];[1:v]fps=30,format=yuv420p[b];[a][b]concat=n=2:v=1:a=0[v]"
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(first), "-i", str(second)]
    command += ["-filter_complex", filters, "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", str(out)]
    subprocess.run(command, check=True)
