"""Small real pipelines for testing the job engine: each stage does real file work and can be told to fail.

Registered under model "kit" by `register()`. Behaviour comes from job parameters, so a test states what it
wants in the run request, exactly as a user would pass --param.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.base import (
    BadInput,
    InputSpec,
    OutputSpec,
    Pipeline,
    Resources,
    Source,
    StageContext,
    StageResult,
    TransientStageError,
)
from pipelines.registry import register_pipeline


@dataclass
class CopyStage:
    """Copies the twin's raw audio to `<name>/copy.bin`; optional failure modes driven by params."""

    name: str
    version: str = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("audio", Source.RAW, kind="audio"),)
    resources: Resources = Resources()

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec(f"{self.name}/copy.bin"),)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None if "audio" in available_inputs else "no raw audio was ingested"

    def run(self, context: StageContext) -> StageResult:
        params = context.params
        if params.get("bad_stage") == self.name:
            raise BadInput(f"stage {self.name}: the input is unusable (asked by the test)")
        if params.get("bug_stage") == self.name:
            raise RuntimeError("an unexpected bug")
        if params.get("flaky_stage") == self.name:
            counter = Path(params["counter_file"])
            failures = int(counter.read_text()) if counter.exists() else 0
            if failures < int(params.get("flaky_failures", 1)):
                counter.write_text(str(failures + 1))
                raise TransientStageError(f"stage {self.name}: passing failure {failures + 1}")
        slow_s = float(params.get("slow_s", 0)) if params.get("slow_stage") == self.name else 0.0
        deadline = time.monotonic() + slow_s
        while time.monotonic() < deadline:
            context.progress(1 - (deadline - time.monotonic()) / slow_s, "waiting")
            context.check_cancelled()
            time.sleep(0.02)
        out = context.output_path(f"{self.name}/copy.bin")
        shutil.copyfile(context.inputs["audio"], out)
        with out.open("ab") as handle:
            handle.write(f"{self.name} n={params.get('n')}".encode())  # distinct bytes per stage and request
        context.progress(1.0, "copied")
        return StageResult(outputs=[f"{self.name}/copy.bin"], metrics={"bytes": out.stat().st_size})


@dataclass
class NoopStage:
    """Reads nothing, writes nothing: what is left of a stage's cost is the engine's own bookkeeping."""

    name: str = "noop"
    version: str = "1"
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    resources: Resources = Resources()

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None

    def run(self, context: StageContext) -> StageResult:
        return StageResult(outputs=[])


@dataclass
class RequestCopyStage:
    """inference-style: copies the request's `audio` (first stage) or the previous stage's output (`source`)."""

    name: str
    source: str | None = None  # relative name of an earlier stage's output, or None for the request file
    version: str = "1"
    resources: Resources = Resources()

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        if self.source is None:
            return (InputSpec("audio", Source.REQUEST),)
        return (InputSpec("audio", Source.OUTPUT, relative=self.source),)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec(f"{self.name}/audio.bin"),)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None

    def run(self, context: StageContext) -> StageResult:
        out = context.output_path(f"{self.name}/audio.bin")
        shutil.copyfile(context.inputs["audio"], out)
        return StageResult(outputs=[f"{self.name}/audio.bin"], message=f"engine={context.params.get('engine')}")


def build_inference_pipeline() -> Pipeline:
    return Pipeline(
        model="kit",
        task="inference",
        output_area="inference",
        stages=(RequestCopyStage("take"), RequestCopyStage("echo", source="take/audio.bin")),
    )


def build_noop_pipeline() -> Pipeline:
    return Pipeline(model="kit", task="noop", output_area="processed", stages=(NoopStage(),))


def build_gpu_pipeline() -> Pipeline:
    """One stage that declares a GPU (it does nothing): for routing and claim tests."""
    return Pipeline(
        model="kit",
        task="gpu",
        output_area="processed",
        stages=(NoopStage(name="render", resources=Resources(gpus=1)),),
    )


def build_pipeline() -> Pipeline:
    return Pipeline(
        model="kit",
        task="preprocess",
        output_area="processed",
        stages=(CopyStage("first"), CopyStage("second")),
    )


def register() -> None:
    register_pipeline("kit", "preprocess", "tests.support.kit_pipelines:build_pipeline")
    register_pipeline("kit", "noop", "tests.support.kit_pipelines:build_noop_pipeline")
    register_pipeline("kit", "gpu", "tests.support.kit_pipelines:build_gpu_pipeline")
    register_pipeline("kit", "inference", "tests.support.kit_pipelines:build_inference_pipeline")
    from tests.support import kit_datasets  # the tiny dataset model rides along, so workers know it too

    kit_datasets.register()
