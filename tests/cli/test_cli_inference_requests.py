"""`platform run --task inference --audio ...`: the request file reaches the store, later stages read earlier ones.

Uses the "kit" inference pipeline (two real copy stages), so what is checked is the platform's part: where the
request lands, under which run, with which checksum, and what a missing or unknown request file gives.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support import kit_pipelines
from tests.support.cli_harness import Platform


@pytest.fixture
def kit(platform_cli: Platform) -> Platform:
    kit_pipelines.register()
    platform_cli("twin", "create", "alice")
    return platform_cli


def test_audio_file_is_uploaded_under_the_run_and_flows_through_the_stages(kit: Platform, tmp_path: Path) -> None:
    speech = tmp_path / "hello.wav"
    speech.write_bytes(b"RIFF pretend speech " * 100)
    job = kit.json("run", "--twin-id", "alice", "--task", "inference", "--model", "kit", "--audio", str(speech))
    assert job["state"] == "succeeded"
    run = job["params"]["run"]
    request_key = f"inference/alice/kit/{run}/request/hello.wav"
    assert job["params"]["inputs"] == {"audio": request_key}
    assert job["params"]["engine"] == "classical"  # "auto": the kit model has no neural checkpoints
    stored = kit.store / request_key
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(speech.read_bytes()).hexdigest()
    # The second stage read the first stage's output of the same run.
    assert (kit.store / f"inference/alice/kit/{run}/echo/audio.bin").read_bytes() == speech.read_bytes()


def test_each_run_gets_its_own_folder_and_a_store_key_is_accepted(kit: Platform, tmp_path: Path) -> None:
    speech = tmp_path / "hello.wav"
    speech.write_bytes(b"one")
    first = kit.json("run", "--twin-id", "alice", "--task", "inference", "--model", "kit", "--audio", str(speech))
    key = first["params"]["inputs"]["audio"]
    second = kit.json(
        "run", "--twin-id", "alice", "--task", "inference", "--model", "kit", "--audio", key, "--engine", "classical"
    )
    assert second["params"]["run"] != first["params"]["run"] and second["params"]["inputs"]["audio"] == key
    assert second["params"]["engine"] == "classical"
    assert (kit.store / f"inference/alice/kit/{second['params']['run']}/echo/audio.bin").read_bytes() == b"one"


def test_inference_without_audio_or_with_an_unknown_one_is_refused(kit: Platform) -> None:
    result = kit("run", "--twin-id", "alice", "--task", "inference", "--model", "kit", expect=5)
    assert "needs --audio FILE" in result.output
    result = kit("run", "--twin-id", "alice", "--task", "inference", "--model", "kit", "--audio", "nope.wav", expect=5)
    assert "neither a file on this machine nor a key in the store" in result.output
    assert kit.json("jobs", "ls") == []


def test_preprocess_takes_no_audio_or_engine(kit: Platform, tmp_path: Path) -> None:
    speech = tmp_path / "a.wav"
    speech.write_bytes(b"x")
    result = kit("run", "--twin-id", "alice", "--task", "preprocess", "--model", "kit", "--engine", "neural", expect=5)
    assert "--engine chooses the inference engine" in result.output
    result = kit(
        "run", "--twin-id", "alice", "--task", "preprocess", "--model", "kit", "--audio", str(speech), expect=5
    )
    assert "is an input of the inference task" in result.output
