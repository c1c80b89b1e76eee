"""The stage contract every model's pipeline is built from.

A *pipeline* is the ordered list of stages for one (model, task). A *stage* is a plain object that declares
what it reads (`inputs`), what it writes (`outputs`, relative names), what it needs (`resources`), and a
`version` that changes whenever its outputs would change; `run(context)` does the work on local paths.

Errors a stage may raise (the platform translates them at its seam):

    PipelineError           base; anything else raised by a stage is treated as a bug (not retried)
    ├── BadInput            the input is unusable (corrupt, wrong kind, no face...): permanent, fix the input
    ├── MissingWeights      a model file the stage needs is absent: permanent until it is uploaded
    └── TransientStageError a passing failure (e.g. out of memory on a busy GPU): retried with backoff
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class PipelineError(Exception):
    """Base of the errors a stage raises on purpose."""


class BadInput(PipelineError):
    """The input cannot be processed; the message names the file, the problem and the fix."""


class MissingWeights(PipelineError):
    """A weight or model file is absent. `names` are paths relative to the model's common folder."""

    def __init__(self, message: str, names: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.names = names


class TransientStageError(PipelineError):
    """A failure that may pass if the stage is tried again."""


class Cancelled(PipelineError):
    """Raised by `StageContext.check_cancelled` when the platform asked the stage to stop."""


class Source(str, enum.Enum):
    """Where a declared input comes from."""

    RAW = "raw"  # an uploaded file of one media kind, chosen by the platform (see `InputSpec.kind`)
    PROCESSED = "processed"  # a file a previous preprocess stage of the same model wrote
    REQUEST = "request"  # a file given with the run request (e.g. --audio for inference)
    COMMON = "common"  # a shared model file under common/{model}/
    OUTPUT = "output"  # a file an earlier stage of the same job wrote (e.g. inference's normalised audio)
    MEMBER = "member"  # dataset tasks: a file each member twin's preprocess of the same model wrote


@dataclass(frozen=True)
class InputSpec:
    """One input of a stage.

    `name` is the key under which the local path appears in `StageContext.inputs`. For RAW, `kind` is the media
    folder (audio|image|video); for PROCESSED, COMMON, OUTPUT and MEMBER, `relative` is the file's relative name.
    A MEMBER input is resolved once per member twin of a dataset job and appears as "{twin_id}/{name}" (see
    `StageContext.members`). An optional input that is absent is simply missing from `StageContext.inputs`.
    """

    name: str
    source: Source
    kind: str | None = None
    relative: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class OutputSpec:
    """One output file, relative to the stage's output area (e.g. "video/video.mp4").

    A `relative` ending in "/" declares a folder: every file the stage writes beneath it is an output (for
    dataset tasks, whose file count depends on the data). A required folder must hold at least one file.
    """

    relative: str
    optional: bool = False

    @property
    def is_folder(self) -> bool:
        return self.relative.endswith("/")

    def covers(self, relative: str) -> bool:
        """Whether the written file `relative` is this output (or lies in this output folder)."""
        return relative.startswith(self.relative) if self.is_folder else relative == self.relative


@dataclass(frozen=True)
class Resources:
    gpus: int = 0

    @property
    def queue(self) -> str:
        return "gpu" if self.gpus > 0 else "cpu"


ProgressCallback = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


def _never_cancelled() -> bool:
    return False


@dataclass
class StageContext:
    """What a stage gets: local input paths, a folder for its outputs, its parameters and two callbacks."""

    inputs: Mapping[str, Path]
    output_dir: Path
    params: Mapping[str, Any] = field(default_factory=dict)
    progress: ProgressCallback = _no_progress
    is_cancelled: Callable[[], bool] = _never_cancelled
    # input name (as in `inputs`) -> {"key": store key, "checksum": its version}: what a dataset manifest records
    sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def output_path(self, relative: str) -> Path:
        """Where to write the declared output `relative`; parent folders are created."""
        path = self.output_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def check_cancelled(self) -> None:
        if self.is_cancelled():
            raise Cancelled("the platform asked this stage to stop")

    def members(self) -> dict[str, dict[str, Path]]:
        """MEMBER inputs grouped by twin: {twin_id: {input name: local path}}, twins in the job's order
        (`params["twins"]`), each twin present even when none of its inputs was found."""
        grouped: dict[str, dict[str, Path]] = {str(twin): {} for twin in self.params.get("twins", ())}
        for key, path in self.inputs.items():
            twin, sep, name = key.partition("/")
            if sep:
                grouped.setdefault(twin, {})[name] = path
        return grouped


@dataclass
class StageResult:
    """What a stage reports. `outputs` lists the relative names it wrote (declared ones only)."""

    outputs: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


class Stage(Protocol):
    name: str
    version: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    resources: Resources

    def run(self, context: StageContext) -> StageResult: ...

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        """Return None if the stage should run, or a reason to skip it (e.g. "no raw audio was ingested").

        `available_inputs` are the names of the declared inputs found; `params` the job's stage parameters.
        """
        ...


@dataclass(frozen=True)
class Pipeline:
    """The ordered stages of one (model, task). `output_area` is where outputs land (processed|inference|datasets)."""

    model: str
    task: str
    output_area: str
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"pipeline {self.model}/{self.task} has no stage {name!r}")

    def validate(self) -> None:
        """Fail early if stage names repeat or a PROCESSED input is produced by no earlier stage."""
        seen: set[str] = set()
        produced: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage name {stage.name!r} repeats in {self.model}/{self.task}")
            seen.add(stage.name)
            for spec in stage.inputs:
                if spec.source is Source.MEMBER and self.output_area != "datasets":
                    raise ValueError(f"stage {stage.name!r} reads member inputs, which only dataset tasks have")
                own_output = spec.source is Source.OUTPUT or (
                    spec.source is Source.PROCESSED and self.output_area == "processed"
                )
                if own_output and spec.relative not in produced and not spec.optional:
                    raise ValueError(f"stage {stage.name!r} reads {spec.relative!r}, which no earlier stage writes")
            produced.update(out.relative for out in stage.outputs)
