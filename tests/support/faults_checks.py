"""The assertions every fault scenario must pass (shared by the fault test modules)."""

from __future__ import annotations

from tests.support.cluster import Cluster, worker_log_tail
from tests.support.faults import ScenarioResult


def check(result: ScenarioResult, cluster: Cluster, *, max_recovery_s: float | None = None) -> None:
    detail = f"{result.row()}\n{result.states}\n{worker_log_tail(cluster)}"
    assert result.jobs >= 5
    assert result.completed == result.jobs, detail
    assert result.duplicate_commits == 0, detail
    assert result.partial_objects == 0, detail
    if max_recovery_s is not None:
        assert result.recovery_s, detail
        assert result.worst_recovery_s is not None and result.worst_recovery_s < max_recovery_s, detail
