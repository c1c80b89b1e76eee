"""Classifying what a stage raised: permanent (fail now), transient (retry with backoff) or a bug.

This is the seam where `pipelines` errors (which cannot import ours) become platform error kinds.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from pipelines.base import BadInput, Cancelled, MissingWeights, PipelineError, TransientStageError
from twinplatform.domain import ErrorKind
from twinplatform.errors import (
    ChecksumMismatch,
    ConfigError,
    InputError,
    NotFoundError,
    TransientError,
    WeightsMissing,
)


@dataclass(frozen=True)
class Failure:
    kind: ErrorKind | str
    message: str
    retryable: bool
    detail: str = ""  # traceback for bugs, kept in the event log


def classify(exc: BaseException, *, common_prefix: str = "") -> Failure:
    if isinstance(exc, Cancelled):
        return Failure(ErrorKind.CANCELLED, str(exc), retryable=False)
    if isinstance(exc, MissingWeights):
        keys = ", ".join(common_prefix + name for name in exc.names)
        hint = f"; upload {keys} to the store" if keys else ""
        return Failure(ErrorKind.WEIGHTS_MISSING, f"{exc}{hint}", retryable=False)
    if isinstance(exc, WeightsMissing):
        return Failure(ErrorKind.WEIGHTS_MISSING, str(exc), retryable=False)
    if isinstance(exc, BadInput | InputError | NotFoundError):
        return Failure(ErrorKind.INPUT, str(exc), retryable=False)
    if isinstance(exc, TransientStageError | TransientError | ChecksumMismatch):
        # NOTE: a checksum mismatch on download is usually a transfer glitch; retrying re-downloads, bounded.
        return Failure(ErrorKind.TRANSIENT, str(exc), retryable=True)
    if isinstance(exc, ConfigError):
        return Failure("config", str(exc), retryable=False)
    if isinstance(exc, PipelineError):
        return Failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}", retryable=False)
    if isinstance(exc, MemoryError | OSError) and not isinstance(exc, FileNotFoundError):
        return Failure(ErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}", retryable=True)
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Failure(
        ErrorKind.INTERNAL,
        f"unexpected {type(exc).__name__}: {exc} (a bug in the stage or the platform; the traceback is in "
        "`platform jobs show JOB --events`)",
        retryable=False,
        detail=detail[-8000:],
    )
