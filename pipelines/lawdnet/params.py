"""Reading the lawdnet jobs' parameters: each with its default, and BadInput that names the parameter and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.base import BadInput
from pipelines.lawdnet.audio_features import DEFAULT_FEATURES, FEATURE_NAMES

FPS = 25  # DINet and LawDNet train on 25 fps video: their clips, windows and DeepSpeech rows assume it
SAMPLE_RATE_HZ = 16000  # DeepSpeech's and the mel extractor's rate

DEFAULT_CLIP_FRAMES = 9  # DINet/LawDNet clip: 5 source frames 2..6, each with a 5-frame audio window
DEFAULT_MIN_CLIPS = 6  # LawDNet's loader treats a video with fewer clips as dirty data
DEFAULT_VAL_PERCENT = 0.0  # the seed only made training data
DEFAULT_SEED = 0
DEFAULT_JPEG_QUALITY = 95  # OpenCV's default, what the seed's cv2.imwrite wrote


def audio_features(params: Mapping[str, Any]) -> str:
    value = params.get("audio_features", DEFAULT_FEATURES)
    if value not in FEATURE_NAMES:
        raise BadInput(f"parameter audio_features={value!r} is unknown; use one of {', '.join(FEATURE_NAMES)}")
    return str(value)


def check_media_rates(params: Mapping[str, Any]) -> None:
    """The th media stages take `fps` and `sample_rate_hz`; lawdnet needs their defaults."""
    fps = params.get("fps", FPS)
    if fps != FPS:
        raise BadInput(
            f"parameter fps={fps!r}: LawDNet trains on {FPS} fps video (its clips and audio windows assume it); "
            "run the lawdnet preprocess without the fps parameter"
        )
    rate = params.get("sample_rate_hz", SAMPLE_RATE_HZ)
    if rate != SAMPLE_RATE_HZ:
        raise BadInput(
            f"parameter sample_rate_hz={rate!r}: LawDNet's audio features are computed from {SAMPLE_RATE_HZ} Hz "
            "audio; run the lawdnet preprocess without the sample_rate_hz parameter"
        )


def percent(params: Mapping[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 100:
        raise BadInput(f"parameter {name}={value!r} must be a percentage from 0 up to (not including) 100")
    return float(value)


def text(params: Mapping[str, Any], name: str, default: str) -> str:
    value = params.get(name, default)
    if not isinstance(value, str):
        raise BadInput(f"parameter {name}={value!r} must be a string (default {default!r})")
    return value
