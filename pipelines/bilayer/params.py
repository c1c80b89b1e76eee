"""Reading the bilayer stages' parameters: each with a default, each refused with a BadInput that says what fits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.base import BadInput


def whole_number(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    """`params[name]` as an int in [low, high], `default` when absent."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"parameter {name}={value!r} must be a whole number from {low} to {high} (default {default})")
    return value


def fraction(params: Mapping[str, Any], name: str, default: float) -> float:
    """`params[name]` as a float in [0, 1], `default` when absent."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise BadInput(f"parameter {name}={value!r} must be a number from 0 to 1 (default {default})")
    return float(value)


def choice(params: Mapping[str, Any], name: str, options: tuple[str, ...]) -> str | None:
    """`params[name]` if it is one of `options`, None when absent."""
    value = params.get(name)
    if value is None:
        return None
    if value not in options:
        raise BadInput(f"parameter {name}={value!r} must be one of {', '.join(options)}, or left out")
    return str(value)
