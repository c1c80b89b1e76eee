"""Dataset jobs in the engine, on SQLite and PostgreSQL: one active build per dataset, duplicates are followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import kit_datasets
from twinplatform.domain import MediaKind
from twinplatform.errors import InputError
from twinplatform.jobs.runtime import Runtime
from twinplatform.services.datasets import DatasetRequest, check_request, submit_dataset_job
from twinplatform.services.ingest import ingest_files
from twinplatform.services.twins import ensure_twin


@pytest.fixture
def members(runtime: Runtime, tmp_path: Path) -> Runtime:
    kit_datasets.register()
    for twin in ("a", "b"):
        ensure_twin(runtime.sessions, twin)
        upload = tmp_path / f"{twin}.wav"
        upload.write_bytes(b"RIFF" + b"x" * 40)
        ingest_files(runtime, twin, [upload], kind=MediaKind.AUDIO)
    return runtime


def test_an_identical_build_is_followed_and_a_different_one_is_refused_while_one_is_active(members: Runtime) -> None:
    request = check_request(members, DatasetRequest(model="kitds", name="v1", twins=("a", "b")))
    first = submit_dataset_job(members, request, ["a", "b"], {}, in_process=True)  # queued, not run
    again = submit_dataset_job(members, request, ["a", "b"], {}, in_process=True)
    assert first.created and not again.created and again.job_id == first.job_id
    with pytest.raises(InputError, match=f"is being built by job {first.job_id}"):
        submit_dataset_job(members, request, ["a"], {"b": "excluded for the test"}, in_process=True)
    other = check_request(members, DatasetRequest(model="kitds", name="v2", twins=("a",)))
    assert submit_dataset_job(members, other, ["a"], {}, in_process=True).created  # another dataset is free
