"""Checking model files: named local files, or every file under a model's folders in the store.

The check itself (layouts, shapes, strict loads) lives with the model in `pipelines`; this service finds the files,
brings store objects into the mirror, and hands each path to the model's checker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.registry import MODEL_FOLDERS, load_verifier
from storage_layout import Location
from twinplatform.errors import NotFoundError, WeightsMissing
from twinplatform.jobs.runtime import Runtime


@dataclass(frozen=True)
class CheckedFile:
    """One checked file: where it came from (a store key or a local path) and the model's report."""

    source: str
    report: Any  # pipelines' FileReport: .ok, .parts, .error, .as_json()

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, **self.report.as_json()}


def store_model_keys(runtime: Runtime, model: str) -> list[str]:
    """Keys of every object under the model's folders in the store (common/{model}/checkpoints/, flame/, ...)."""
    keys: list[str] = []
    for folder in MODEL_FOLDERS.get(model, ()):
        prefix = runtime.layout.key(Location.common(model, folder + "x"))[: -len("x")]
        keys += [info.key for info in runtime.backend.list(prefix)]
    return sorted(keys)


def verify_files(runtime: Runtime | None, model: str, files: list[Path]) -> list[CheckedFile]:
    """Check `files`, or (none given) every model file of `model` in the store; WeightsMissing when there are none."""
    try:
        inspect = load_verifier(model)
    except KeyError as exc:
        raise NotFoundError(str(exc.args[0])) from None
    if files:
        for path in files:
            if not path.is_file():
                raise NotFoundError(f"{path} does not exist or is not a file")
        return [CheckedFile(str(path), inspect(path)) for path in files]
    assert runtime is not None
    keys = store_model_keys(runtime, model)
    if not keys:
        folders = ", ".join(f"common/{model}/{folder}" for folder in MODEL_FOLDERS.get(model, ()))
        raise WeightsMissing(f"no model files in the store under {folders}: upload them, or name files to check")
    return [CheckedFile(key, inspect(runtime.mirror.fetch(key).path)) for key in keys]
