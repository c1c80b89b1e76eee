"""The dataset manifest: exactly which twin outputs went into a dataset, which twins were left out and why.

Every dataset task writes `manifest.json` at the dataset's root. It is what a training run cites: the store key
and checksum of every member input, the parameters, the split sizes and the files written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.base import StageContext

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def excluded_by_platform(params: Mapping[str, Any]) -> dict[str, str]:
    """Twins the platform left out before the dataset stage ran (their preprocess failed): {twin: reason}."""
    return {str(twin): str(reason) for twin, reason in dict(params.get("excluded") or {}).items()}


def member_sources(context: StageContext, twin_id: str) -> dict[str, dict[str, str]]:
    """{input name: {"key", "checksum"}} of one member twin's inputs, as the platform resolved them."""
    prefix = f"{twin_id}/"
    return {
        name[len(prefix) :]: dict(source)
        for name, source in context.sources.items()
        if name.startswith(prefix)
    }


def written_files(output_dir: Path, folder: str = "") -> list[str]:
    """Relative names (with '/') of every file under `output_dir / folder`, sorted: a folder output's files."""
    root = output_dir / folder if folder else output_dir
    if not root.exists():
        return []
    return sorted(path.relative_to(output_dir).as_posix() for path in root.rglob("*") if path.is_file())


def write_manifest(
    context: StageContext,
    *,
    model: str,
    included: Mapping[str, Mapping[str, Any]],
    excluded: Mapping[str, str],
    splits: Mapping[str, int],
    files: Mapping[str, int],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write `manifest.json` into the stage's output folder and return its relative name.

    `included`: {twin: what the dataset took from it (counts)}; its inputs' keys and checksums are added from
    `context.sources`. `excluded`: {twin: reason}, both the platform's and the stage's own exclusions.
    `splits`: items per split; `files`: files per top-level folder.
    """
    params = {key: value for key, value in context.params.items() if key not in {"twins", "excluded", "dataset"}}
    document = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "name": context.params.get("dataset", ""),
        "params": params,
        "twins": {
            twin: {"taken": dict(taken), "inputs": member_sources(context, twin)} for twin, taken in included.items()
        },
        "excluded": dict(excluded),
        "splits": dict(splits),
        "files": dict(files),
        **dict(extra or {}),
    }
    path = context.output_path(MANIFEST)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=_plain) + "\n")
    return MANIFEST


def _plain(value: Any) -> Any:
    """numpy scalars and paths in a manifest become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
