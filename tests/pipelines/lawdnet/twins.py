"""What the lawdnet tests share: the generated uploads and the preprocessed test twins (fixtures in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.local_pipelines import LocalRun

CLIP_S = 3.0


@dataclass(frozen=True)
class Twin:
    name: str
    folder: Path
    run: LocalRun


@dataclass(frozen=True)
class Uploads:
    folder: Path
    face_with_sound: Path
    face_mute: Path
    audio_long: Path
    audio_short: Path
