"""Twin registry through the CLI: create, ingest (never a silent overwrite), ls, show, rm."""

from __future__ import annotations

from pathlib import Path

from pipelines.media.synthetic import make_audio, make_image, make_video
from tests.support.cli_harness import Platform


def test_ingest_files_by_detected_media_type(platform_cli: Platform, tmp_path: Path) -> None:
    platform_cli("twin", "create", "alice", "--name", "Alice")
    clip = make_video(tmp_path / "take1.mov", seconds=1)
    voice = make_audio(tmp_path / "voice.wav", seconds=0.5)
    photo = make_image(tmp_path / "photo.jpg")
    rows = platform_cli.json("twin", "ingest", "alice", str(clip), str(voice), str(photo))
    assert {r["key"]: r["kind"] for r in rows} == {
        "raw/alice/video/take1.mov": "video",
        "raw/alice/audio/voice.wav": "audio",
        "raw/alice/image/photo.jpg": "image",
    }
    assert sorted(
        p.relative_to(platform_cli.store).as_posix()
        for p in platform_cli.store.rglob("*")
        if p.is_file() and ".twinplatform" not in p.parts
    ) == sorted(r["key"] for r in rows)
    twins = platform_cli.json("twin", "ls")
    assert twins[0]["twin_id"] == "alice" and twins[0]["raw_files"] == 3 and twins[0]["ready"] is False


def test_ingest_never_silently_overwrites(platform_cli: Platform, tmp_path: Path) -> None:
    platform_cli("twin", "create", "alice")
    (tmp_path / "a").mkdir()
    first = make_audio(tmp_path / "a" / "voice.wav", seconds=0.5)
    assert "added" in platform_cli("twin", "ingest", "alice", str(first)).output
    assert "unchanged" in platform_cli("twin", "ingest", "alice", str(first)).output
    (tmp_path / "b").mkdir()
    other = make_audio(tmp_path / "b" / "voice.wav", seconds=0.7)
    result = platform_cli("twin", "ingest", "alice", str(other), expect=5)
    assert "already exists" in result.output and "--replace" in result.output
    assert (platform_cli.store / "raw/alice/audio/voice.wav").read_bytes() == first.read_bytes()
    assert "replaced" in platform_cli("twin", "ingest", "alice", str(other), "--replace").output
    assert (platform_cli.store / "raw/alice/audio/voice.wav").read_bytes() == other.read_bytes()


def test_bad_twin_ids_are_refused_with_the_rule(platform_cli: Platform) -> None:
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        result = platform_cli("twin", "create", bad, expect=5)
        assert "twin_id" in result.output
    assert platform_cli.json("twin", "ls") == []


def test_unknown_twin_is_not_found(platform_cli: Platform, tmp_path: Path) -> None:
    voice = make_audio(tmp_path / "voice.wav", seconds=0.2)
    assert "not registered" in platform_cli("twin", "ingest", "ghost", str(voice), expect=4).output
    assert "not registered" in platform_cli("run", "--twin-id", "ghost", "--task", "preprocess", expect=4).output
    assert "not registered" in platform_cli("twin", "show", "ghost", expect=4).output


def test_show_lists_files_with_local_paths(platform_cli: Platform, tmp_path: Path) -> None:
    platform_cli("twin", "ingest", "alice", str(make_image(tmp_path / "p.png")), "--create")
    platform_cli("twin", "ingest", "bob", str(make_audio(tmp_path / "b.wav", seconds=0.2)), "--create")
    shown = platform_cli.json("twin", "show", "alice")
    assert (shown["twin_id"], shown["raw_files"]) == ("alice", 1)
    (asset,) = shown["assets"]
    assert asset["key"] == "raw/alice/image/p.png"
    assert Path(asset["local_path"]).read_bytes() == (tmp_path / "p.png").read_bytes()


def test_rm_deletes_rows_and_every_object_after_confirmation(platform_cli: Platform, tmp_path: Path) -> None:
    platform_cli("twin", "ingest", "alice", str(make_audio(tmp_path / "v.wav", seconds=0.3)), "--create")
    platform_cli("twin", "ingest", "bob", str(make_audio(tmp_path / "w.wav", seconds=0.3)), "--create")
    platform_cli("run", "--twin-id", "alice", "--task", "preprocess")
    aborted = platform_cli("twin", "rm", "alice", input="n\n", expect=1)
    assert "Aborted" in aborted.output and (platform_cli.store / "raw/alice").exists()
    result = platform_cli("twin", "rm", "alice", "--yes")
    assert "deleted raw/alice/audio/v.wav" in result.output
    assert "deleted processed/alice/preprocessed/th/audio/audio.wav" in result.output
    assert not (platform_cli.store / "raw/alice").exists() and not (platform_cli.store / "processed/alice").exists()
    assert (platform_cli.store / "raw/bob/audio/w.wav").exists()
    assert [t["twin_id"] for t in platform_cli.json("twin", "ls")] == ["bob"]
    assert platform_cli.json("status", "--twin-id", "bob") == []
