"""Plain value types shared by every layer of twinplatform: states, task names, media kinds (stdlib only)."""

from __future__ import annotations

import enum


class JobState(str, enum.Enum):
    """Lifecycle of a job (one `platform run`)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_JOB_STATES


FINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE_JOB_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})


class StageState(str, enum.Enum):
    """Lifecycle of one stage of a job. SKIPPED means its committed outputs were already up to date."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STAGE_STATES


FINAL_STAGE_STATES = frozenset({StageState.SUCCEEDED, StageState.SKIPPED, StageState.FAILED, StageState.CANCELLED})
DONE_STAGE_STATES = frozenset({StageState.SUCCEEDED, StageState.SKIPPED})


class TaskName(str, enum.Enum):
    PREPROCESS = "preprocess"
    INFERENCE = "inference"


class MediaKind(str, enum.Enum):
    """The folder an ingested file lands in under raw/{twin_id}/."""

    AUDIO = "audio"
    IMAGE = "image"
    VIDEO = "video"


class ErrorKind(str, enum.Enum):
    """Why a stage failed, as recorded on the stage run and shown by `platform status`."""

    INPUT = "input"  # bad input: permanent, fix the input
    WEIGHTS_MISSING = "weights_missing"  # a model file is absent from common/: permanent until uploaded
    TRANSIENT = "transient"  # retried with backoff up to a bound
    RETRIES_EXHAUSTED = "retries_exhausted"
    WORKER_LOST = "worker_lost"  # the worker died mid-stage too often
    INTERNAL = "internal"  # our code raised something unexpected: a bug, not retried
    CANCELLED = "cancelled"
    UPSTREAM = "upstream"  # an earlier stage of the same job failed
