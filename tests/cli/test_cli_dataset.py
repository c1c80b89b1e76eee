"""`platform dataset build|status|ls` on the embedded default, with the tiny "kitds" dataset model.

What is checked is the platform's part, the same for every dataset model: member preprocess jobs, exclusion of
twins that fail (with their reason), the dataset job over the rest, the manifest's keys and checksums, skipping
an unchanged build, extending a dataset, pruning what a rebuild no longer writes, and a build with no usable twin.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support import kit_datasets
from tests.support.cli_harness import Platform

DATASET = "datasets/kitds/v1"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def kit(platform_cli: Platform, tmp_path: Path) -> Platform:
    kit_datasets.register()
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for twin, content in {"a": b"x" * 40, "b": b"y" * 20, "c": b"BAD upload", "e": b"z" * 50}.items():
        path = uploads / f"{twin}.wav"
        path.write_bytes(content)
        platform_cli("twin", "ingest", twin, str(path), "--kind", "audio", "--create")
    platform_cli("twin", "create", "d")  # no uploads at all
    return platform_cli


def manifest(kit: Platform) -> dict:
    return json.loads((kit.store / DATASET / "manifest.json").read_text())


def test_a_build_excludes_failed_twins_with_their_reason_and_records_what_went_in(kit: Platform) -> None:
    result = kit(
        "dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "a,b,c,d", "--param", "min_bytes=10"
    )
    assert "twin c: excluded: preprocess stage measure failed: c.wav is corrupt" in result.output
    assert "twin d: excluded: preprocess not started: twin 'd' has no uploaded media" in result.output
    assert sorted(p.name for p in (kit.store / DATASET / "items").iterdir()) == ["a.json", "b.json"]
    found = manifest(kit)
    assert sorted(found["twins"]) == ["a", "b"] and sorted(found["excluded"]) == ["c", "d"]
    assert found["name"] == "v1" and found["params"] == {"min_bytes": 10}
    for twin in ("a", "b"):
        source = found["twins"][twin]["inputs"]["size"]
        assert source["key"] == f"processed/{twin}/preprocessed/kitds/measure/size.json"
        assert source["checksum"] == sha256(kit.store / source["key"])  # exactly the bytes that went in
    assert found["splits"] == {"train": 1, "val": 1}
    status = kit.json("dataset", "status", "v1", "--model", "kitds")
    assert status["state"] == "succeeded" and status["files"] == 4 and status["manifest"] == found
    jobs = kit.json("status", "--dataset", "v1")
    assert [(j["twin_id"], j["dataset"], j["task"]) for j in jobs] == [(None, "v1", "dataset")]
    table = kit("status").output
    assert "dataset v1" in table and "kitds/dataset" in table


def test_the_same_build_again_does_no_work(kit: Platform) -> None:
    kit("dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "a,b")
    before = {p: p.stat().st_mtime_ns for p in (kit.store / DATASET).rglob("*") if p.is_file()}
    kit("dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "a,b")
    after = {p: p.stat().st_mtime_ns for p in (kit.store / DATASET).rglob("*") if p.is_file()}
    assert after == before
    jobs = kit.json("status", "--limit", "20")
    dataset_jobs = [j for j in jobs if j["task"] == "dataset"]
    assert [j["stages"][0]["state"] for j in dataset_jobs] == ["skipped", "succeeded"]
    assert "up to date" in dataset_jobs[0]["stages"][0]["message"]


def test_adding_twins_keeps_the_earlier_ones_and_a_rebuild_prunes_what_it_no_longer_writes(kit: Platform) -> None:
    kit("dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "a,b")
    kit("dataset", "build", "--model", "kitds", "--name", "v1", "--add", "--twins", "e")
    assert sorted(manifest(kit)["twins"]) == ["a", "b", "e"]
    assert (kit.store / DATASET / "items/e.json").is_file()
    # b (20 bytes) now falls below the threshold: its item must leave the dataset, not linger from the last build
    kit("dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "a,b,e", "--param", "min_bytes=30")
    assert sorted(p.name for p in (kit.store / DATASET / "items").iterdir()) == ["a.json", "e.json"]
    assert "fewer than min_bytes=30" in manifest(kit)["excluded"]["b"]
    keys = {asset["key"] for asset in kit.json("twin", "show", "b")["assets"]}  # b's own files are untouched
    assert "processed/b/preprocessed/kitds/measure/size.json" in keys
    pruned = kit.json("jobs", "show", kit.json("status", "--dataset", "v1")[0]["job_id"], "--events")
    assert any(event["type"] == "outputs.pruned" for event in pruned["events"])


def test_no_usable_twin_fails_the_dataset_job_with_every_reason(kit: Platform) -> None:
    result = kit("dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "c,d", expect=6)
    assert "no usable twin for dataset 'v1'" in result.output
    status = kit.json("dataset", "status", "v1", "--model", "kitds")
    assert status["state"] == "failed"
    assert "c: preprocess stage measure failed" in status["error"] and "d: preprocess not started" in status["error"]
    assert not (kit.store / DATASET).exists()
    listed = kit.json("dataset", "ls")
    assert [(d["model"], d["name"], d["state"]) for d in listed] == [("kitds", "v1", "failed")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "th", "--name", "v1", "--twins", "a"), "model 'th' has no dataset task"),
        (("--model", "kitds", "--name", "../v1", "--twins", "a"), "dataset name '../v1' is invalid"),
        (("--model", "kitds", "--name", "v1", "--twins", "a,ghost"), "ghost"),
        (("--model", "kitds", "--name", "v1", "--twins", "a,a"), "listed twice"),
        (("--model", "kitds", "--name", "v1", "--add", "--twins", "a"), "never been built"),
        (("--model", "kitds", "--name", "v1", "--twins", "a", "--param", "twins=x"), "set by the platform"),
    ],
)
def test_bad_requests_are_refused_before_any_work(kit: Platform, args: tuple[str, ...], message: str) -> None:
    result = kit("dataset", "build", *args, expect=None)
    assert result.exit_code in (4, 5), result.output
    assert message in result.output
    assert kit.json("status") == []  # refused before any job, member preprocess included
