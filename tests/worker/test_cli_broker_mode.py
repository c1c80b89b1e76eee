"""The CLI in broker mode: `platform run` sends the job to a real worker and follows it; --detach returns."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.support.cli_harness import Platform
from tests.support.cluster import Cluster, worker_log_tail
from twinplatform.cli import context
from twinplatform.cli.main import cli
from twinplatform.config import get_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]


def invoke(cluster: Cluster, *args: str) -> tuple[int, str]:
    get_settings.cache_clear()
    context.runtime.cache_clear()
    result = CliRunner().invoke(cli, list(args), env=cluster.env(), catch_exceptions=False)
    if context.runtime.cache_info().currsize:
        context.runtime().engine.dispose()
    context.runtime.cache_clear()
    get_settings.cache_clear()
    return result.exit_code, result.output


def test_run_follows_a_job_that_a_worker_runs(cluster: Cluster) -> None:
    cluster.make_twin("alice")
    cluster.start_worker()
    code, output = invoke(cluster, "run", "--twin-id", "alice", "--task", "preprocess", "--model", "kit")
    assert code == 0, output + worker_log_tail(cluster)
    assert "first      succeeded" in output and "second     succeeded" in output
    assert "processed/alice/preprocessed/kit/second/copy.bin" in output


def test_detach_returns_the_job_at_once_and_status_shows_it_later(cluster: Cluster) -> None:
    cluster.make_twin("alice")
    code, output = invoke(
        cluster, "run", "--twin-id", "alice", "--task", "preprocess", "--model", "kit", "--detach", "--json"
    )
    assert code == 0, output
    job = json.loads(output)
    assert job["state"] == "queued"  # no worker is running yet
    cluster.start_worker()
    assert cluster.wait_for([job["job_id"]], 60) == {job["job_id"]: "succeeded"}, worker_log_tail(cluster)
    code, output = invoke(cluster, "status", "--twin-id", "alice", "--json")
    assert json.loads(output)[0]["state"] == "succeeded"
    code, output = invoke(cluster, "reaper", "--once")
    assert code == 0 and "requeued 0, failed 0, redispatched 0" in output


def test_detach_needs_a_broker(platform_cli: Platform) -> None:
    result = platform_cli("run", "--twin-id", "x", "--task", "preprocess", "--detach", expect=5)
    assert "needs a broker" in result.output


def test_status_shows_where_a_running_stage_runs_and_its_heartbeat(cluster: Cluster) -> None:
    cluster.make_twin("alice")
    cluster.start_worker()
    (job_id,) = cluster.submit("alice", 1, slow_stage="first", slow_s=4)
    running = cluster.wait_until_running([job_id], settle_s=1.5)  # past the first 1 s heartbeat
    code, output = invoke(cluster, "status", "--twin-id", "alice")
    assert code == 0
    assert f"on {running[0].worker}" in output and "heartbeat" in output and "s ago" in output
    assert cluster.wait_for([job_id], 60) == {job_id: "succeeded"}


def test_dataset_build_waits_for_the_workers_preprocess_then_has_them_build_the_dataset(cluster: Cluster) -> None:
    for twin in ("alice", "bob"):
        cluster.make_twin(twin)
    cluster.start_worker()
    code, output = invoke(cluster, "dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "alice,bob")
    assert code == 0, output + worker_log_tail(cluster)
    assert "kitds/preprocess job" in output and "over 2 twin(s)" in output
    assert "assemble   succeeded" in output
    store = cluster.work_dir / "store" / "datasets/kitds/v1"
    manifest = json.loads((store / "manifest.json").read_text())
    assert sorted(manifest["twins"]) == ["alice", "bob"] and manifest["excluded"] == {}
    assert sorted(p.name for p in (store / "items").iterdir()) == ["alice.json", "bob.json"]
    code, output = invoke(cluster, "status", "--dataset", "v1", "--json")
    (job,) = json.loads(output)
    assert job["state"] == "succeeded" and job["stages"][0]["state"] == "succeeded"
