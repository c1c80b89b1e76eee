"""The platform's exception tree: one base, branches chosen by what the caller does next.

    PlatformError
    ├── ConfigError              settings are wrong or a service is unreachable at start-up: fix config
    ├── NotFoundError
    │   ├── TwinNotFound         no such twin_id in the registry
    │   ├── JobNotFound
    │   └── AssetNotFound        a key is not in the store (or not in the registry)
    ├── InputError               bad user input (media, ids, arguments): not retryable
    │   └── AlreadyExists        an object or twin exists and --replace / another id is needed
    ├── WeightsMissing           a model file under common/{model}/ is missing: upload it
    ├── ChecksumMismatch         bytes read back differ from the recorded checksum
    ├── StageFailed              a job stage ended FAILED (carries the reason)
    ├── LeaseLost                this attempt no longer holds its stage's lease: its work is discarded
    └── TransientError           network, 5xx, lock timeout: safe to retry with backoff

Every message names the input, what is wrong and what to do next. Third-party errors are translated at the
seam that meets them (`raise ... from exc`). The CLI maps each branch to one exit code (cli/exit_codes.py).
"""

from __future__ import annotations


class PlatformError(Exception):
    """Base of every error the platform raises on purpose."""

    #: short machine-readable kind, recorded on failed jobs ("input", "transient", ...)
    kind = "platform"


class ConfigError(PlatformError):
    kind = "config"


class NotFoundError(PlatformError):
    kind = "not_found"


class TwinNotFound(NotFoundError):
    def __init__(self, twin_id: str) -> None:
        super().__init__(
            f"twin {twin_id!r} is not registered: create it with `platform twin create {twin_id}` "
            "or list twins with `platform twin ls`"
        )
        self.twin_id = twin_id


class JobNotFound(NotFoundError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} does not exist: list jobs with `platform jobs ls`")
        self.job_id = job_id


class AssetNotFound(NotFoundError):
    pass


class InputError(PlatformError):
    """Bad input from the user: retrying cannot help, the input must change."""

    kind = "input"


class AlreadyExists(InputError):
    kind = "exists"


class WeightsMissing(PlatformError):
    kind = "weights_missing"


class ChecksumMismatch(PlatformError):
    kind = "checksum"


class StageFailed(PlatformError):
    kind = "stage_failed"


class LeaseLost(PlatformError):
    kind = "lease_lost"


class TransientError(PlatformError):
    """A failure that may pass by itself (network, 5xx, timeouts): the job engine retries these."""

    kind = "transient"
