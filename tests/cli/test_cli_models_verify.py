"""`platform models verify`: each file's layout, parameter count and the keys that do not fit, before a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipelines.th.neural.fv2v.generators import build_generator
from pipelines.th.neural.fv2v.head_pose import HEEstimator
from pipelines.th.neural.fv2v.keypoints import KPDetector
from tests.support.cli_harness import Platform
from tests.support.flame_files import write_tiny_flame_store
from tests.support.fv2v_kit import tiny_generator_config, tiny_he_config, tiny_kp_config
from tests.support.neural_files import write_tiny_bfv2v, write_tiny_faceformer


def _fv2v_parts(variant: str) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "generator": build_generator(tiny_generator_config(variant)).state_dict(),
        "kp_detector": KPDetector(tiny_kp_config(0.25 if variant == "new" else 1.0)).state_dict(),
        "he_estimator": HEEstimator(tiny_he_config()).state_dict(),
    }


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "faceformer": write_tiny_faceformer(tmp_path / "vocaset.pth", vertice_dim=30),
        "bfv2v": write_tiny_bfv2v(tmp_path / "bfv2v.pth.tar"),
    }
    for variant in ("new", "beta"):
        checkpoint = dict(_fv2v_parts(variant))
        checkpoint.update(discriminator={"w": torch.zeros(1)}, optimizer_generator={}, epoch=189)
        made[f"fv2v_{variant}"] = tmp_path / f"fv2v_{variant}.pth.tar"
        torch.save(checkpoint, made[f"fv2v_{variant}"])
    prefixes = {"generator": "generator.", "kp_detector": "kp_extractor.", "he_estimator": "he_estimator."}
    flat = {
        prefixes[part] + key: t.contiguous() for part, state in _fv2v_parts("new").items() for key, t in state.items()
    }
    flat["audio2exp.netG.weight"] = torch.zeros(2)
    made["sadtalker"] = tmp_path / "SadTalker_V0.0.2_256.safetensors"
    save_file(flat, str(made["sadtalker"]))
    write_tiny_flame_store(tmp_path / "common")
    made["flame"] = tmp_path / "common/flame/generic_model.pkl"
    made["embedding"] = tmp_path / "common/flame/landmark_embedding.npy"
    return made


def test_every_public_layout_is_recognised_and_loads(platform_cli: Platform, files: dict[str, Path]) -> None:
    reports = platform_cli.json("models", "verify", *(str(path) for path in files.values()))
    by_name = {Path(report["source"]).name: report for report in reports}
    assert all(report["ok"] for report in reports), [r for r in reports if not r["ok"]]
    layouts = {name: [part["layout"] for part in report["parts"]] for name, report in by_name.items()}
    assert layouts["vocaset.pth"] == ["FaceFormer vocaset (FLAME topology, 30 fps)"]
    assert layouts["bfv2v.pth.tar"] == ["BFv2v generator (landmark-driven, v16 sections)"]
    assert layouts["fv2v_new.pth.tar"] == [
        "face-vid2vid generator New (SPADE)",
        "face-vid2vid KPDetector",
        "face-vid2vid HEEstimator",
    ]
    assert layouts["fv2v_beta.pth.tar"][0] == "face-vid2vid generator Beta (original)"
    assert layouts["SadTalker_V0.0.2_256.safetensors"][0] == "face-vid2vid generator New (SPADE)"
    assert by_name["SadTalker_V0.0.2_256.safetensors"]["ignored"] == ["audio2exp"]
    assert sorted(by_name["fv2v_new.pth.tar"]["ignored"]) == ["discriminator", "epoch", "optimizer_generator"]
    assert layouts["generic_model.pkl"][0].startswith("FLAME model (120 vertices")
    parameters = by_name["vocaset.pth"]["parts"][0]["parameters"]
    saved = torch.load(files["faceformer"], weights_only=True)
    assert parameters == sum(t.numel() for t in saved.values())


def test_a_damaged_checkpoint_is_reported_key_by_key(platform_cli: Platform, tmp_path: Path) -> None:
    path = write_tiny_faceformer(tmp_path / "vocaset.pth", vertice_dim=30)
    state = torch.load(path, weights_only=True)
    del state["audio_encoder.encoder.layer_norm.bias"]
    state["vertice_map_r.bias"] = torch.zeros(31)
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)

    result = platform_cli("models", "verify", str(path), expect=5)
    assert "[FAIL]" in result.output
    assert "missing     audio_encoder.encoder.layer_norm.bias" in result.output
    assert "unexpected  extra.weight" in result.output
    assert "mis-shaped  vertice_map_r.bias: file [31], expected [30]" in result.output


def test_unknown_files_and_an_empty_store(platform_cli: Platform, tmp_path: Path) -> None:
    junk = tmp_path / "notes.pth"
    junk.write_bytes(b"not a checkpoint")
    result = platform_cli("models", "verify", str(junk), expect=5)
    assert "cannot read" in result.output
    random = tmp_path / "random.pth"
    torch.save({"layer.weight": torch.zeros(3)}, random)
    assert "no known layout" in platform_cli("models", "verify", str(random), expect=5).output
    result = platform_cli("models", "verify", expect=8)
    assert "common/th/checkpoints/" in result.output
