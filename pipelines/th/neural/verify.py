"""Checking a model file before a run: which layout it is, how many parameters, and which keys do not fit.

`inspect_file(path)` reads one file without running anything from it (torch's weights-only loader, safetensors, or
the restricted FLAME unpickler), splits it into parts (a face-vid2vid `.pth.tar` holds a generator, a keypoint
detector and a head-pose estimator; a SadTalker `.safetensors` holds them under prefixes), recognises each part's
layout, derives the part's configuration from its own tensor shapes, compares every key and shape with what that
configuration expects, and finally builds the module and loads the part strictly. The report says per part: the
layout, the parameter count, missing / unexpected / mis-shaped keys, and whether the strict load worked.

A layout is registered in `LAYOUTS` with three functions of the part's state dict: `detect` (is it this layout),
`expected` (key -> shape for the configuration the shapes imply) and `load` (build and load strictly; raises on
failure). Adding a model = one `Layout` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.base import BadInput, PipelineError
from pipelines.th.neural.fv2v.checkpoint import PARTS, SAFETENSORS_PREFIXES

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Layout:
    name: str
    detect: Callable[[StateDict], bool]
    expected: Callable[[StateDict], dict[str, tuple[int, ...]]]
    load: Callable[[StateDict], None]


@dataclass
class PartReport:
    """One part of a file (the whole file for most formats)."""

    part: str
    layout: str | None
    parameters: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # key, file, expected
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.layout is not None and not (self.missing or self.unexpected or self.mismatched or self.error)

    def as_json(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "layout": self.layout,
            "parameters": self.parameters,
            "ok": self.ok,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "mismatched": [{"key": k, "file": list(f), "expected": list(e)} for k, f, e in self.mismatched],
            "error": self.error,
        }


@dataclass
class FileReport:
    path: Path
    parts: list[PartReport]
    error: str | None = None  # the file itself could not be read
    ignored: list[str] = field(default_factory=list)  # entries not needed for inference (optimizer states...)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.parts) and all(part.ok for part in self.parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "error": self.error,
            "parts": [part.as_json() for part in self.parts],
            "ignored": self.ignored,
        }


LAYOUTS: list[Layout] = []


def register(layout: Layout) -> None:
    LAYOUTS.append(layout)


def inspect_file(path: Path) -> FileReport:
    """Read `path`, recognise and check each part; never raises for a bad file (the report says what is wrong)."""
    _register_builtin_layouts()
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".pkl") or name.endswith(".npy"):
            return _inspect_flame_file(path)
        parts, ignored = _read_parts(path)
    except Exception as exc:  # noqa: BLE001  (whatever a foreign file makes the readers raise is the report)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return FileReport(path, [], error=f"{type(exc).__name__}: {first_line}")
    return FileReport(path, [_check_part(part, state) for part, state in parts], ignored=ignored)


def _check_part(part: str, state: StateDict) -> PartReport:
    parameters = int(sum(int(np.prod(tuple(t.shape))) for t in state.values()))
    layout = next((candidate for candidate in LAYOUTS if _safe_detect(candidate, state)), None)
    if layout is None:
        sample = ", ".join(sorted(state)[:5])
        return PartReport(part, None, parameters, error=f"no known layout has these keys (first: {sample})")
    report = PartReport(part, layout.name, parameters)
    try:
        expected = layout.expected(state)
    except (PipelineError, RuntimeError, ValueError, KeyError, IndexError) as exc:
        report.error = f"the shapes do not describe a {layout.name}: {exc}"
        return report
    report.missing = sorted(set(expected) - set(state))
    report.unexpected = sorted(set(state) - set(expected))
    report.mismatched = [
        (key, tuple(state[key].shape), expected[key])
        for key in sorted(set(state) & set(expected))
        if tuple(state[key].shape) != expected[key]
    ]
    if report.missing or report.unexpected or report.mismatched:
        return report
    try:
        layout.load(state)
    except (PipelineError, RuntimeError, ValueError, KeyError) as exc:
        report.error = f"strict load failed: {exc}"
    return report


def _safe_detect(layout: Layout, state: StateDict) -> bool:
    try:
        return layout.detect(state)
    except (KeyError, IndexError, ValueError, RuntimeError):
        return False



def _read_parts(path: Path) -> tuple[list[tuple[str, dict[str, torch.Tensor]]], list[str]]:
    if not path.is_file():
        raise BadInput(f"{path} does not exist")
    if path.name.lower().endswith(".safetensors"):
        from safetensors.torch import load_file

        flat = load_file(str(path))
        grouped: dict[str, dict[str, torch.Tensor]] = {}
        other_prefixes: set[str] = set()
        for key, tensor in flat.items():
            prefix = next((p for p in SAFETENSORS_PREFIXES if key.startswith(p)), None)
            if prefix is None:
                other_prefixes.add(key.split(".", 1)[0])
                continue
            grouped.setdefault(SAFETENSORS_PREFIXES[prefix], {})[key[len(prefix) :]] = tensor
        if not grouped:
            return [("file", dict(flat))], []
        return [(part, grouped[part]) for part in PARTS if part in grouped], sorted(other_prefixes)
    content = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(content, dict):
        raise BadInput(f"{path.name} holds a {type(content).__name__}, not a state dict or a checkpoint dict")
    if all(isinstance(value, torch.Tensor) for value in content.values()):
        return [("file", content)], []
    parts = [(name, content[name]) for name in PARTS if isinstance(content.get(name), dict)]
    if "state_dict" in content and isinstance(content["state_dict"], dict) and not parts:
        parts = [("state_dict", content["state_dict"])]
    if not parts:
        raise BadInput(f"{path.name} is a dict without tensors or known parts (keys: {sorted(content)[:8]})")
    ignored = sorted(key for key in content if key not in {name for name, _ in parts})
    return [(name, {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}) for name, state in parts], ignored


def _inspect_flame_file(path: Path) -> FileReport:
    """FLAME model pickles and landmark embeddings, through the FLAME readers (no chumpy, no code execution)."""
    from pipelines.th.flame import load_flame_model, read_deca_embedding, read_ringnet_embedding

    name = path.name.lower()
    try:
        if name.endswith("_model.pkl") or name == "generic_model.pkl":
            data = load_flame_model(path)
            count = sum(
                int(np.prod(a.shape))
                for a in (data.v_template, data.shapedirs, data.posedirs, data.J_regressor, data.weights)
            )
            layout = (
                f"FLAME model ({data.num_vertices} vertices, {len(data.faces)} faces, {data.num_shape_components} "
                f"identity + {data.num_expression_components} expression components)"
            )
            return FileReport(path, [PartReport("file", layout, count)])
        if name == "landmark_embedding.npy":
            embedding = read_deca_embedding(path)
            layout = "FLAME landmark embedding, DECA (51 static + 17 contour points)"
        elif name == "flame_dynamic_embedding.npy":
            return FileReport(
                path,
                [PartReport("file", "FLAME contour embedding, RingNet (checked with flame_static_embedding.pkl)", 0)],
            )
        else:
            static = path
            dynamic = path.with_name("flame_dynamic_embedding.npy")
            embedding = read_ringnet_embedding(static, dynamic if dynamic.is_file() else None)
            layout = "FLAME landmark embedding, RingNet static (51 points)" + (
                " + dynamic contour" if embedding.has_contour else ""
            )
        count = int(embedding.static_faces.size + embedding.static_barycentric.size)
        return FileReport(path, [PartReport("file", layout, count)])
    except PipelineError as exc:
        return FileReport(path, [], error=str(exc))


def _register_builtin_layouts() -> None:
    """Import the model modules that register their layouts (once; they append to LAYOUTS on import)."""
    if LAYOUTS:
        return
    from pipelines.th.neural import layouts  # noqa: F401  (registers on import)
