"""Printing for commands: JSON for machines (`--json`), aligned tables and a progress line for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

STATE_COLOURS = {
    "succeeded": "green",
    "skipped": "cyan",
    "failed": "red",
    "cancelled": "yellow",
    "running": "blue",
    "retry_wait": "yellow",
    "queued": None,
}


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def state_text(state: str) -> str:
    return click.style(state, fg=STATE_COLOURS.get(state))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(click.unstyle(row[i])) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        padded = [cell + " " * (widths[i] - len(click.unstyle(cell))) for i, cell in enumerate(row)]
        line = "  ".join(padded).rstrip()
        click.echo(click.style(line, bold=True) if index == 0 else line)


def short(text: str | None, width: int = 70) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class ProgressLine:
    """A one-line progress bar for a terminal; silent when output is not a terminal."""

    def __init__(self, width: int = 28) -> None:
        self._width = width
        self._active = sys.stdout.isatty()
        self._shown = False

    def update(self, stage: str, fraction: float, message: str) -> None:
        if not self._active:
            return
        filled = int(round(fraction * self._width))
        bar = "#" * filled + "." * (self._width - filled)
        click.echo(f"\r  {stage:<10} [{bar}] {fraction * 100:5.1f}% {short(message, 40):<40}", nl=False)
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            click.echo("\r" + " " * (self._width + 70) + "\r", nl=False)
            self._shown = False
