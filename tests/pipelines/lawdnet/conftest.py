"""lawdnet test twins: short generated face clips run once per session through the real preprocess.

    own    3 s face clip at 30 fps with its own 44.1 kHz sound track
    long   the same face without sound, plus an uploaded 3.3 s audio file (audio longer than the video)
    short  the same face without sound, plus an uploaded 2.7 s audio file (audio shorter than the video)
"""

from __future__ import annotations

import pytest

from pipelines.media.synthetic import make_audio, make_face_video
from tests.pipelines.lawdnet.twins import CLIP_S, Twin, Uploads
from tests.support.local_pipelines import run_pipeline


@pytest.fixture(scope="session")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Uploads:
    folder = tmp_path_factory.mktemp("lawdnet_uploads")
    return Uploads(
        folder=folder,
        face_with_sound=make_face_video(folder / "own.mp4", seconds=CLIP_S),
        face_mute=make_face_video(folder / "mute.mp4", seconds=CLIP_S, audio=False),
        audio_long=make_audio(folder / "long.wav", seconds=CLIP_S + 0.3),
        audio_short=make_audio(folder / "short.wav", seconds=CLIP_S - 0.3),
    )


@pytest.fixture(scope="session")
def twins(uploads: Uploads, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Twin]:
    """The three twins' preprocess folders (the real lawdnet preprocess, run once)."""
    root = tmp_path_factory.mktemp("lawdnet_processed")
    raws = {
        "own": {"video": uploads.face_with_sound},
        "long": {"video": uploads.face_mute, "audio": uploads.audio_long},
        "short": {"video": uploads.face_mute, "audio": uploads.audio_short},
    }
    made = {}
    for name, raw in raws.items():
        folder = root / name
        made[name] = Twin(name, folder, run_pipeline(("lawdnet", "preprocess"), folder, raw=raw))
    return made
