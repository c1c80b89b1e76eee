"""Fault injection with real processes: every job completes, nothing is committed twice, nothing partial.

Leases here are short (6 s) so the suite stays quick; `benchmarks/fault_table.py` runs the same scenarios
with the production defaults and prints the table in docs/faults.md.
"""

from __future__ import annotations

import pytest

from tests.support import faults
from tests.support.cluster import Cluster
from tests.support.faults_checks import check

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults, pytest.mark.timeout(300)]


def test_kill_9_of_a_pool_child(cluster: Cluster) -> None:
    check(faults.pool_child_kill(cluster), cluster, max_recovery_s=5)


def test_kill_9_of_the_whole_worker_recovers_by_lease(cluster: Cluster) -> None:
    cluster.settings["detect_dead_local_holders"] = "false"  # as if the new worker ran on another machine
    lease_s, reaper_s = float(cluster.settings["lease_s"]), float(cluster.settings["reaper_interval_s"])
    check(faults.worker_kill(cluster), cluster, max_recovery_s=lease_s + reaper_s + 10)


def test_sigterm_lets_the_running_stage_finish(cluster: Cluster) -> None:
    result = faults.sigterm_during_stage(cluster)
    check(result, cluster)
    assert result.notes.startswith("worker exited 0")
