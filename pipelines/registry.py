"""(model, task) -> the function that builds its Pipeline. One line per pipeline; imported lazily."""

from __future__ import annotations

import importlib
from typing import Any

from pipelines.base import Pipeline

PIPELINES: dict[tuple[str, str], str] = {
    ("th", "preprocess"): "pipelines.th.preprocess:build_pipeline",
    ("th", "inference"): "pipelines.th.inference:build_pipeline",
    # Dataset models: a per-twin preprocess, and a dataset task that assembles many twins into one dataset.
    ("facesync", "preprocess"): "pipelines.facesync.preprocess:build_pipeline",
    ("facesync", "dataset"): "pipelines.facesync.dataset:build_pipeline",
    ("bilayer", "preprocess"): "pipelines.bilayer.preprocess:build_pipeline",
    ("bilayer", "dataset"): "pipelines.bilayer.dataset:build_pipeline",
    ("lawdnet", "preprocess"): "pipelines.lawdnet.preprocess:build_pipeline",
    ("lawdnet", "dataset"): "pipelines.lawdnet.dataset:build_pipeline",
    ("perceptalign", "preprocess"): "pipelines.perceptalign.preprocess:build_pipeline",
    ("perceptalign", "dataset"): "pipelines.perceptalign.dataset:build_pipeline",
}


# model -> "module:function" that checks one model file (`platform models verify`), imported lazily.
VERIFIERS: dict[str, str] = {
    "th": "pipelines.th.neural.verify:inspect_file",
}
# Folders under common/{model}/ that hold the model's files, checked when no file is named.
MODEL_FOLDERS: dict[str, tuple[str, ...]] = {
    "th": ("checkpoints/", "flame/", "face_alignment/"),
}


# model -> files under common/{model}/ the neural inference engine needs; with engine "auto" a run uses the neural
# engine when all are in the store, else the classical one (and says which were missing).
NEURAL_ENGINE_FILES: dict[str, tuple[str, ...]] = {
    "th": ("checkpoints/vocaset.pth", "checkpoints/bfv2v.pth.tar", "flame/generic_model.pkl"),
}


def load_verifier(model: str) -> Any:
    """The file checker of `model`; KeyError names the models that have one."""
    try:
        target = VERIFIERS[model]
    except KeyError:
        raise KeyError(f"no model file checker for {model!r}; known: {', '.join(sorted(VERIFIERS))}") from None
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def register_pipeline(model: str, task: str, target: str) -> None:
    """Add a pipeline at run time ("package.module:builder"); for plugins and the test suite's pipelines."""
    existing = PIPELINES.get((model, task))
    if existing is not None and existing != target:
        raise ValueError(f"{model}/{task} is already registered to {existing}")
    PIPELINES[(model, task)] = target


def models() -> list[str]:
    return sorted({model for model, _ in PIPELINES})


def tasks(model: str) -> list[str]:
    return sorted(task for m, task in PIPELINES if m == model)


def load_pipeline(model: str, task: str) -> Pipeline:
    """Import and build the pipeline; KeyError names what exists when the pair is unknown."""
    try:
        target = PIPELINES[(model, task)]
    except KeyError:
        known = ", ".join(f"{m}/{t}" for m, t in sorted(PIPELINES))
        raise KeyError(f"no pipeline for model {model!r} and task {task!r}; known: {known}") from None
    module_name, _, attribute = target.partition(":")
    builder = getattr(importlib.import_module(module_name), attribute)
    pipeline: Pipeline = builder()
    pipeline.validate()
    return pipeline
