"""Reading a dataset model's job parameters: each optional with a default, and a BadInput naming the parameter, its
value and what fits when it is wrong. Shared by every dataset model so the checks and their messages agree."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipelines.base import BadInput


def whole_number(params: Mapping[str, Any], name: str, default: int, low: int, high: int, *, what: str = "") -> int:
    """`params[name]` as an int in [low, high], `default` when absent; `what` names the unit in the message."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        unit = f" of {what}" if what else ""
        raise BadInput(
            f"parameter {name}={value!r} must be a whole number{unit} from {low} to {high} (default {default})"
        )
    return value


def number(params: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    """`params[name]` as a finite float in [low, high], `default` when absent."""
    value = params.get(name, default)
    if not is_number(value) or not low <= value <= high:
        raise BadInput(f"parameter {name}={value!r} must be a number from {low:g} to {high:g} (default {default:g})")
    return float(value)


def fraction(params: Mapping[str, Any], name: str, default: float) -> float:
    """`params[name]` as a float in [0, 1], `default` when absent."""
    return number(params, name, default, 0.0, 1.0)


def choice(params: Mapping[str, Any], name: str, options: tuple[str, ...]) -> str | None:
    """`params[name]` if it is one of `options`, None when absent."""
    value = params.get(name)
    if value is None:
        return None
    if value not in options:
        raise BadInput(f"parameter {name}={value!r} must be one of {', '.join(options)}, or left out")
    return str(value)


def is_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
