"""facesync's job parameters: each optional with a default, checked, refused with a sentence that names it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.base import BadInput
from pipelines.dataset_kit.params import is_number, whole_number
from pipelines.media.timeline import DEFAULT_MAX_MISMATCH_S

DEFAULT_WINDOW_FRAMES = 25
"""One second at 25 fps (16000 samples of audio): long enough to hold a few syllables, so the model hears the
sounds around each mouth shape (co-articulation); short enough that one bad frame discards only a second of
speech, and that a 3 s clip still gives three windows."""
MAX_WINDOW_FRAMES = 3000
DEFAULT_AUGMENT_FACTOR = 1
DEFAULT_TRAIN_PERCENT = 0.9
DEFAULT_SEED = 0
DEFAULT_FPS = 25
SAMPLE_RATE_HZ = 16000
"""facesync's audio rate: the seed's 16 kHz, and what th's audio stages write by default."""


def window_frames(params: Mapping[str, Any]) -> int:
    return whole_number(params, "window_frames", DEFAULT_WINDOW_FRAMES, 2, MAX_WINDOW_FRAMES, what="frames per sample")


def augment_factor(params: Mapping[str, Any], window: int) -> int:
    """Windows per base window: the sliding-window stride is `window // factor`, so at most `window`."""
    return whole_number(params, "augment_factor", DEFAULT_AUGMENT_FACTOR, 1, window, what="windows per base window")


def train_percent(params: Mapping[str, Any]) -> float:
    """The training share as a fraction (the seed's name; 0.9 means 90 %)."""
    value = params.get("train_percent", DEFAULT_TRAIN_PERCENT)
    if not is_number(value) or not 0 < value <= 1:
        raise BadInput(
            f"parameter train_percent={value!r} must be a fraction above 0 and at most 1 "
            f"(0.9 puts 90 % of the windows in train; default {DEFAULT_TRAIN_PERCENT})"
        )
    return float(value)


def seed(params: Mapping[str, Any]) -> int:
    return whole_number(params, "seed", DEFAULT_SEED, -(2**63), 2**63 - 1)


def fps(params: Mapping[str, Any]) -> float:
    """The frame rate every member twin must have (th's `fps` parameter, default 25)."""
    value = params.get("fps", DEFAULT_FPS)
    if not is_number(value) or not 1 <= value <= 120:
        raise BadInput(f"parameter fps={value!r} is not a frame rate; give a number from 1 to 120 (default 25)")
    return float(value)


def sample_rate_hz(params: Mapping[str, Any]) -> int:
    """facesync works on 16 kHz audio only; the parameter is th's, so refuse any other value with the reason."""
    value = params.get("sample_rate_hz", SAMPLE_RATE_HZ)
    if value != SAMPLE_RATE_HZ or isinstance(value, bool):
        raise BadInput(
            f"parameter sample_rate_hz={value!r}: facesync trains on {SAMPLE_RATE_HZ} Hz audio; leave it at "
            f"{SAMPLE_RATE_HZ}"
        )
    return SAMPLE_RATE_HZ


def max_mismatch_s(params: Mapping[str, Any]) -> float:
    """How far apart the audio's and the video's lengths may be before they count as different recordings."""
    value = params.get("max_mismatch_s", DEFAULT_MAX_MISMATCH_S)
    if not is_number(value) or not 0 < value <= 10:
        raise BadInput(
            f"parameter max_mismatch_s={value!r} must be a number of seconds above 0 and at most 10 "
            f"(default {DEFAULT_MAX_MISMATCH_S})"
        )
    return float(value)
