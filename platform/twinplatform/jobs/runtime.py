"""Everything a job needs at run time, built once by the CLI or the worker from settings and passed down."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage_layout import DEFAULT_LAYOUT, Layout
from twinplatform.storage.base import StorageBackend
from twinplatform.storage.mirror import MirrorCache


@dataclass(frozen=True)
class EnginePolicy:
    """Leases, heartbeats and retries. Defaults suit GPU stages of minutes; tests shrink them."""

    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    retry_backoff_max_s: float = 300.0
    progress_write_interval_s: float = 1.0
    max_worker_losses: int = 3
    redispatch_after_s: float = 60.0
    db_outage_tolerance_s: float = 120.0
    #: take over at once when the lease holder is a dead process on this host (else wait for the lease)
    detect_dead_local_holders: bool = True

    def backoff_s(self, attempt: int) -> float:
        """Delay before attempt `attempt + 1`: exponential from retry_backoff_s, capped."""
        return float(min(self.retry_backoff_max_s, self.retry_backoff_s * (2 ** max(0, attempt - 1))))


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Runtime:
    engine: Engine
    sessions: sessionmaker[Session]
    backend: StorageBackend
    mirror: MirrorCache
    mirror_root: Path
    layout: Layout = DEFAULT_LAYOUT
    policy: EnginePolicy = field(default_factory=EnginePolicy)
    worker_id: str = field(default_factory=default_worker_id)

    @property
    def scratch_root(self) -> Path:
        """Where stages write before upload: inside the mirror root so renames stay on one filesystem."""
        return self.mirror_root / ".scratch"
