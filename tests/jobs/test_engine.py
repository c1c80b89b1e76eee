"""The job engine on a real database (SQLite and PostgreSQL): states, skips, retries, failures, events."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pipelines.media.synthetic import make_audio
from pipelines.registry import load_pipeline
from tests.support import kit_pipelines
from twinplatform.db.models import Asset, Event, Job, StageRun
from twinplatform.domain import JobState
from twinplatform.jobs.inline import run_job_inline
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import submit_job
from twinplatform.services.ingest import ingest_files
from twinplatform.services.jobs import cancel_job, get_job, retry_job
from twinplatform.services.twins import create_twin
from twinplatform.storage.checksum import sha256_file

kit_pipelines.register()


@pytest.fixture
def twin(runtime: Runtime, tmp_path: Path) -> str:
    create_twin(runtime.sessions, "alice")
    ingest_files(runtime, "alice", [make_audio(tmp_path / "voice.wav", seconds=0.5)])
    return "alice"


def run(runtime: Runtime, twin_id: str, **params: object) -> str:
    submitted = submit_job(runtime, load_pipeline("kit", "preprocess"), twin_id, params=dict(params))
    run_job_inline(runtime, submitted.job_id)
    return submitted.job_id


def stage_states(runtime: Runtime, job_id: str) -> dict[str, tuple[str, int]]:
    view = get_job(runtime.sessions, job_id)
    return {stage.stage: (stage.state, stage.attempt) for stage in view.stages}


def test_job_succeeds_commits_outputs_and_logs_every_transition(runtime: Runtime, twin: str) -> None:
    job_id = run(runtime, twin)
    view = get_job(runtime.sessions, job_id, with_events=True)
    assert view.state == "succeeded"
    assert stage_states(runtime, job_id) == {"first": ("succeeded", 1), "second": ("succeeded", 1)}
    for stage in ("first", "second"):
        key = f"processed/alice/preprocessed/kit/{stage}/copy.bin"
        info = runtime.backend.head(key)
        assert info is not None
        with runtime.sessions() as session:
            asset = session.scalars(select(Asset).where(Asset.key == key)).one()
            assert asset.checksum == info.checksum and asset.size_bytes == info.size_bytes
            assert asset.stage_run_id is not None
    transitions = [(e["type"], e["from"], e["to"]) for e in view.events if e["to"]]
    assert transitions == [
        ("job.state", None, "queued"),
        ("stage.state", "queued", "running"),
        ("job.state", "queued", "running"),
        ("stage.state", "running", "succeeded"),
        ("stage.state", "queued", "running"),
        ("stage.state", "running", "succeeded"),
        ("job.state", "running", "succeeded"),
    ]


def test_second_run_skips_everything_and_uploads_nothing(runtime: Runtime, twin: str, tmp_path: Path) -> None:
    run(runtime, twin)
    keys = [f"processed/alice/preprocessed/kit/{s}/copy.bin" for s in ("first", "second")]
    before = {key: runtime.backend.head(key) for key in keys}
    job_id = run(runtime, twin)
    view = get_job(runtime.sessions, job_id)
    assert view.state == "succeeded"
    assert [s.state for s in view.stages] == ["skipped", "skipped"]
    assert all("up to date" in s.message for s in view.stages)
    assert {key: runtime.backend.head(key) for key in keys} == before  # same objects, same modification times


def test_deleting_one_output_reruns_only_its_stage(runtime: Runtime, twin: str) -> None:
    run(runtime, twin)
    runtime.backend.delete("processed/alice/preprocessed/kit/second/copy.bin")
    job_id = run(runtime, twin)
    assert stage_states(runtime, job_id) == {"first": ("skipped", 1), "second": ("succeeded", 1)}
    assert runtime.backend.head("processed/alice/preprocessed/kit/second/copy.bin") is not None


def test_changed_parameters_rerun_the_stage(runtime: Runtime, twin: str) -> None:
    run(runtime, twin)
    job_id = run(runtime, twin, note="different")
    assert stage_states(runtime, job_id) == {"first": ("succeeded", 1), "second": ("succeeded", 1)}


def test_transient_failure_is_retried_with_backoff(runtime: Runtime, twin: str, tmp_path: Path) -> None:
    job_id = run(runtime, twin, flaky_stage="second", flaky_failures=2, counter_file=str(tmp_path / "count"))
    view = get_job(runtime.sessions, job_id, with_events=True)
    assert view.state == "succeeded"
    assert stage_states(runtime, job_id)["second"] == ("succeeded", 3)
    retry_events = [e for e in view.events if e["to"] == "retry_wait"]
    assert len(retry_events) == 2 and "passing failure" in retry_events[0]["message"]


def test_transient_failure_gives_up_after_max_attempts(runtime: Runtime, twin: str, tmp_path: Path) -> None:
    job_id = run(runtime, twin, flaky_stage="first", flaky_failures=10, counter_file=str(tmp_path / "count"))
    view = get_job(runtime.sessions, job_id)
    assert view.state == "failed"
    first, second = view.stages
    assert (first.state, first.attempt, first.error_kind) == ("failed", 3, "retries_exhausted")
    assert second.state == "cancelled" and second.error_kind == "upstream"
    assert "after 3 attempts" in (view.error or "")


def test_bad_input_fails_at_once_with_the_reason(runtime: Runtime, twin: str) -> None:
    job_id = run(runtime, twin, bad_stage="first")
    view = get_job(runtime.sessions, job_id)
    assert view.state == "failed" and view.error_kind == "input"
    assert view.stages[0].attempt == 1
    assert "unusable" in (view.error or "") and "stage first" in (view.error or "")
    assert runtime.backend.head("processed/alice/preprocessed/kit/first/copy.bin") is None


def test_unexpected_error_is_recorded_with_traceback_and_not_retried(runtime: Runtime, twin: str) -> None:
    job_id = run(runtime, twin, bug_stage="second")
    view = get_job(runtime.sessions, job_id, with_events=True)
    assert view.state == "failed" and view.error_kind == "internal"
    assert view.stages[1].attempt == 1
    failed = [e for e in view.events if e["to"] == "failed" and e["type"] == "stage.state"]
    assert "RuntimeError: an unexpected bug" in failed[0]["data"]["traceback"]


def test_retry_resumes_from_the_failed_stage(runtime: Runtime, twin: str) -> None:
    job_id = run(runtime, twin, bad_stage="second")
    assert get_job(runtime.sessions, job_id).state == "failed"
    # The input is "fixed" by changing nothing the first stage depends on; retry runs only stage two again.
    with runtime.sessions() as session, session.begin():
        job = session.get_one(Job, job_id)
        job.params = {}
    assert retry_job(runtime.sessions, job_id) == ["second"]
    assert run_job_inline(runtime, job_id) is JobState.SUCCEEDED
    assert stage_states(runtime, job_id) == {"first": ("succeeded", 1), "second": ("succeeded", 1)}


def test_duplicate_submission_while_active_returns_the_same_job(runtime: Runtime, twin: str) -> None:
    pipeline = load_pipeline("kit", "preprocess")
    first = submit_job(runtime, pipeline, twin, params={"x": 1})
    again = submit_job(runtime, pipeline, twin, params={"x": 1})
    other = submit_job(runtime, pipeline, twin, params={"x": 2})
    assert first.created and not again.created and again.job_id == first.job_id
    assert other.created and other.job_id != first.job_id
    run_job_inline(runtime, first.job_id)
    after = submit_job(runtime, pipeline, twin, params={"x": 1})
    assert after.created and after.job_id != first.job_id


def test_cancel_a_queued_job(runtime: Runtime, twin: str) -> None:
    submitted = submit_job(runtime, load_pipeline("kit", "preprocess"), twin)
    assert cancel_job(runtime.sessions, submitted.job_id) == []  # in-process: nothing was sent to a broker
    assert get_job(runtime.sessions, submitted.job_id).state == "cancelled"
    assert run_job_inline(runtime, submitted.job_id) is JobState.CANCELLED
    assert {s.state for s in get_job(runtime.sessions, submitted.job_id).stages} == {"cancelled"}


def test_every_row_of_a_job_is_consistent_with_the_store(runtime: Runtime, twin: str) -> None:
    job_id = run(runtime, twin)
    with runtime.sessions() as session:
        runs = session.scalars(select(StageRun).where(StageRun.job_id == job_id)).all()
        for stage_run in runs:
            for entry in (stage_run.output_manifest or {})["outputs"].values():
                local = runtime.mirror_root / "check.bin"
                runtime.backend.get_file(entry["key"], local)
                assert sha256_file(local) == entry["checksum"]
        assert session.scalar(select(Event).where(Event.job_id == job_id).limit(1)) is not None
