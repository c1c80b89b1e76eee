"""`--param NAME=VALUE` options, shared by the commands that take stage parameters (`run`, `dataset build`)."""

from __future__ import annotations

import json
from typing import Any

import click


def parse_params(values: tuple[str, ...], option: str = "--param") -> dict[str, Any]:
    """NAME=VALUE pairs to a dict; VALUE is read as JSON when it parses (numbers, lists, objects), else as text."""
    params: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint=option)
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params
