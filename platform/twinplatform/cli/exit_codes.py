"""Exit codes of the `platform` command, in one place (documented in docs/cli.md)."""

from __future__ import annotations

from twinplatform import errors

OK = 0
INTERNAL = 1  # an unexpected error: a bug; the message says where to look
USAGE = 2  # wrong command-line usage (click's own code)
CONFIG = 3  # configuration or an unreachable service: fix settings
NOT_FOUND = 4  # a twin, job or object does not exist
BAD_INPUT = 5  # bad input (media, ids, arguments): change the input
JOB_FAILED = 6  # the job ran and ended FAILED or CANCELLED; `platform jobs show` says why
TRANSIENT = 7  # a passing failure (network, 5xx): try again
WEIGHTS_MISSING = 8  # a model file is absent from common/{model}/: upload it
CHECKSUM = 9  # stored bytes differ from their recorded checksum
INTERRUPTED = 130  # Ctrl-C

_BY_ERROR: list[tuple[type[errors.PlatformError], int]] = [
    (errors.ConfigError, CONFIG),
    (errors.NotFoundError, NOT_FOUND),
    (errors.InputError, BAD_INPUT),
    (errors.StageFailed, JOB_FAILED),
    (errors.TransientError, TRANSIENT),
    (errors.WeightsMissing, WEIGHTS_MISSING),
    (errors.ChecksumMismatch, CHECKSUM),
]


def for_error(error: errors.PlatformError) -> int:
    for error_type, code in _BY_ERROR:
        if isinstance(error, error_type):
            return code
    return INTERNAL
