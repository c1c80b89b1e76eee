"""Run a model's pipelines on local folders, without the platform: the pipeline-level tests of dataset models.

The platform does the same resolution against the store (see twinplatform.jobs.inputs); this stand-in keeps
the pipelines' tests free of the database and the store while running the real stages in order:

- RAW inputs come from `raw` ({kind: file});
- PROCESSED and OUTPUT inputs from the folder the run writes to;
- COMMON inputs from `common` (a folder laid out like common/{model}/);
- MEMBER inputs (dataset tasks) from each member twin's preprocess folder, as "{twin}/{name}".

A stage's `applies` is honoured; errors propagate as the stage raised them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.base import Pipeline, Source, StageContext, StageResult
from pipelines.registry import load_pipeline


@dataclass
class LocalRun:
    """What a local run did: each stage's result, or the reason it was skipped."""

    out: Path
    results: dict[str, StageResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def run_pipeline(
    pipeline: Pipeline | tuple[str, str],
    out: Path,
    *,
    raw: Mapping[str, Path] | None = None,
    members: Mapping[str, Path] | None = None,
    common: Path | None = None,
    params: Mapping[str, Any] | None = None,
) -> LocalRun:
    """Run every stage of `pipeline` (or the registered (model, task)) writing into `out`."""
    if isinstance(pipeline, tuple):
        pipeline = load_pipeline(*pipeline)
    params = dict(params or {})
    if members is not None:
        params.setdefault("twins", list(members))
    out.mkdir(parents=True, exist_ok=True)
    run = LocalRun(out)
    for stage in pipeline.stages:
        inputs: dict[str, Path] = {}
        sources: dict[str, dict[str, str]] = {}
        for spec in stage.inputs:
            if spec.source is Source.RAW:
                candidate = (raw or {}).get(spec.kind or "")
                if candidate is not None:
                    inputs[spec.name] = Path(candidate)
            elif spec.source in (Source.PROCESSED, Source.OUTPUT):
                path = out / (spec.relative or "")
                if path.is_file():
                    inputs[spec.name] = path
            elif spec.source is Source.COMMON:
                if common is not None and (common / (spec.relative or "")).is_file():
                    inputs[spec.name] = common / (spec.relative or "")
            elif spec.source is Source.MEMBER:
                for twin, folder in (members or {}).items():
                    path = Path(folder) / (spec.relative or "")
                    if path.is_file():
                        inputs[f"{twin}/{spec.name}"] = path
                        sources[f"{twin}/{spec.name}"] = {
                            "key": f"processed/{twin}/preprocessed/{pipeline.model}/{spec.relative}",
                            "checksum": "local",
                        }
        reason = stage.applies(set(inputs), params)
        if reason is not None:
            run.skipped[stage.name] = reason
            continue
        context = StageContext(inputs=inputs, output_dir=out, params=params, sources=sources)
        result = stage.run(context)
        declared = stage.outputs
        for name in result.outputs:
            if not any(spec.covers(name) for spec in declared):
                raise AssertionError(f"stage {stage.name} reported undeclared output {name!r}")
            if not (out / name).is_file():
                raise AssertionError(f"stage {stage.name} reported {name!r} but did not write it")
        run.results[stage.name] = result
    return run
