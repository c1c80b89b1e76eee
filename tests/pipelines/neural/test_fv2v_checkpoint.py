"""Loading face-vid2vid files: zlh-style `.pth.tar` dicts, SadTalker-style safetensors, New vs Beta, clear errors.

The fast tests use tiny random models saved in the real key layout; the `slow` tests build the FULL-size key sets of
checkpoint-keys.txt, save them, load them strictly and run one 256x256 forward pass of each module.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from pipelines.base import BadInput, MissingWeights
from pipelines.th.neural.fv2v.checkpoint import (
    LAYOUT_SPECS,
    Fv2vCheckpointError,
    Fv2vModels,
    detect_generator_variant,
    load_fv2v,
    load_part,
    read_state_dicts,
)
from pipelines.th.neural.fv2v.generators import GeneratorConfig, build_generator
from pipelines.th.neural.fv2v.head_pose import HEEstimator, HEEstimatorConfig, transform_keypoints
from pipelines.th.neural.fv2v.keypoints import KPDetector, KPDetectorConfig
from tests.support.fv2v_kit import (
    KEYS_FILE,
    NUM_KP,
    SECTION_BETA,
    SECTION_HE,
    SECTION_KP,
    SECTION_NEW,
    TINY_IMAGE,
    image_batch,
    randomize,
    reference_section,
    tiny_generator_config,
    tiny_he_config,
    tiny_kp_config,
)


def _tiny_modules(variant: str) -> dict[str, nn.Module]:
    torch.manual_seed(21)
    return {
        "generator": randomize(build_generator(tiny_generator_config(variant)), seed=1),
        "kp_detector": randomize(KPDetector(tiny_kp_config(0.25 if variant == "new" else 1.0)), seed=2),
        "he_estimator": randomize(HEEstimator(tiny_he_config()), seed=3),
    }


def _training_extras(modules: dict[str, nn.Module]) -> dict[str, object]:
    """What zlh's Logger.save_cpk also stores: a discriminator, optimizer states and the epoch."""
    discriminator = {
        "discs.1.down_blocks.0.conv.weight_orig": torch.randn(4, 3, 4, 4),
        "discs.1.conv.bias": torch.zeros(1),
    }
    optimizer = {
        "state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3)}},
        "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8, "weight_decay": 0, "params": [0]}],
    }
    extras: dict[str, object] = {"discriminator": discriminator, "epoch": 189}
    for name in ("generator", "discriminator", "kp_detector", "he_estimator"):
        extras[f"optimizer_{name}"] = optimizer
    return extras


def _save_zlh(path: Path, modules: dict[str, nn.Module]) -> Path:
    checkpoint: dict[str, object] = {name: module.state_dict() for name, module in modules.items()}
    checkpoint.update(_training_extras(modules))
    torch.save(checkpoint, path)
    return path


def _save_sadtalker(path: Path, modules: dict[str, nn.Module]) -> Path:
    prefixes = {"generator": "generator.", "kp_detector": "kp_extractor.", "he_estimator": "he_estimator."}
    flat = {
        prefixes[name] + key: tensor.contiguous()
        for name, module in modules.items()
        for key, tensor in module.state_dict().items()
    }
    flat["audio2exp.netG.fc.weight"] = torch.randn(2, 2)  # SadTalker's other nets share the file
    flat["mapping.fc_yaw.weight"] = torch.randn(66, 4)
    save_file(flat, str(path))
    return path


def _outputs(modules: dict[str, nn.Module] | Fv2vModels) -> tuple[Tensor, Tensor, Tensor]:
    """kp_detector keypoints, he_estimator t, and a generated frame for fixed inputs."""
    get = modules.__getitem__ if isinstance(modules, dict) else lambda name: getattr(modules, name)
    image = image_batch(1, seed=4)
    with torch.no_grad():
        kp = get("kp_detector")(image)
        head = get("he_estimator")(image)
        generator = get("generator")
        kp_driving = transform_keypoints(kp, head, "new")
        frame = generator(image, kp_driving=kp_driving, kp_source=kp).prediction
    return kp, head.t, frame


@pytest.mark.parametrize("variant", ["new", "beta"])
def test_zlh_checkpoint_with_training_entries_loads_and_reproduces_the_modules(tmp_path: Path, variant: str) -> None:
    modules = _tiny_modules(variant)
    path = _save_zlh(tmp_path / "00000189-checkpoint.pth.tar", modules)
    read = read_state_dicts(path)
    assert sorted(read.parts) == ["generator", "he_estimator", "kp_detector"]
    assert "discriminator" in read.ignored and "optimizer_generator" in read.ignored and "epoch" in read.ignored
    loaded = load_fv2v(path)
    assert loaded.variant == variant and loaded.rotation_convention == variant
    assert (loaded.kp_detector.down is None) == (variant == "beta")  # down.weight only with scale_factor 0.25
    assert not loaded.generator.training and not any(p.requires_grad for p in loaded.generator.parameters())
    for expected, got in zip(_outputs(modules), _outputs(loaded), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_sadtalker_safetensors_with_prefixes_loads(tmp_path: Path) -> None:
    modules = _tiny_modules("new")
    path = _save_sadtalker(tmp_path / "SadTalker_V0.0.2_256.safetensors", modules)
    read = read_state_dicts(path)
    assert sorted(read.parts) == ["generator", "he_estimator", "kp_detector"]
    assert read.ignored == ["audio2exp", "mapping"]
    loaded = load_fv2v(path)
    assert loaded.variant == "new"
    for expected, got in zip(_outputs(modules), _outputs(loaded), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_variant_detection_from_the_first_conv_kernel() -> None:
    new = build_generator(tiny_generator_config("new")).state_dict()
    beta = build_generator(tiny_generator_config("beta")).state_dict()
    assert detect_generator_variant(new) == "new"
    assert detect_generator_variant(beta) == "beta"
    inconsistent = dict(beta)
    inconsistent["first.conv.weight"] = new["first.conv.weight"]
    with pytest.raises(ValueError, match="3x3 .New. but there is no SPADE decoder"):
        detect_generator_variant(inconsistent)
    odd = dict(new)
    odd["first.conv.weight"] = torch.zeros(4, 3, 5, 5)
    with pytest.raises(ValueError, match="5x5 kernel"):
        detect_generator_variant(odd)


def test_dtype_and_module_prefix(tmp_path: Path) -> None:
    modules = _tiny_modules("new")
    wrapped = {name: {f"module.{k}": v for k, v in m.state_dict().items()} for name, m in modules.items()}
    path = tmp_path / "dataparallel.pth.tar"
    torch.save(wrapped, path)
    loaded = load_fv2v(path, dtype=torch.float64)
    assert loaded.generator.appearance_encoder.first.conv.weight.dtype == torch.float64
    assert loaded.kp_detector.predictor.conv.weight.dtype == torch.float64
    kp = loaded.kp_detector(image_batch(1))
    assert kp.dtype == torch.float64 and kp.shape == (1, NUM_KP, 3)


def test_a_mismatched_generator_names_the_file_the_part_and_the_keys(tmp_path: Path) -> None:
    modules = _tiny_modules("new")
    state = dict(modules["generator"].state_dict())
    state["decoder.fc.bias_renamed"] = state.pop("decoder.fc.bias")
    state["fourth.bias"] = torch.zeros(5)
    checkpoint = {name: module.state_dict() for name, module in modules.items()}
    checkpoint["generator"] = state
    path = tmp_path / "broken.pth.tar"
    torch.save(checkpoint, path)
    with pytest.raises(Fv2vCheckpointError) as info:
        load_fv2v(path)
    message = str(info.value)
    assert str(path) in message and "'generator'" in message
    assert "decoder.fc.bias" in message and "decoder.fc.bias_renamed" in message
    assert "fourth.bias: file [5] vs expected [16]" in message
    assert isinstance(info.value, BadInput)


def test_a_bfv2v_generator_is_not_taken_for_face_vid2vid(tmp_path: Path) -> None:
    state = dict(build_generator(tiny_generator_config("new")).state_dict())
    state["dense_motion_network.prior_extractors.0.0.weight"] = torch.zeros(256, 18)
    with pytest.raises(Fv2vCheckpointError, match="1 unexpected .dense_motion_network.prior_extractors"):
        load_part("generator", state, origin=str(tmp_path / "bfv2v.pth.tar"))
    detectors = {name: detect(state) for name, detect, _, _ in LAYOUT_SPECS}
    assert not any(detectors.values())


def test_layout_specs_detect_each_part() -> None:
    states = {
        "face-vid2vid generator New (SPADE)": build_generator(tiny_generator_config("new")).state_dict(),
        "face-vid2vid generator Beta (original)": build_generator(tiny_generator_config("beta")).state_dict(),
        "face-vid2vid KPDetector": KPDetector(tiny_kp_config()).state_dict(),
        "face-vid2vid HEEstimator": HEEstimator(tiny_he_config()).state_dict(),
    }
    for name, state in states.items():
        matches = [layout for layout, detect, _, _ in LAYOUT_SPECS if detect(state)]
        assert matches == [name]
        spec = next(spec for spec in LAYOUT_SPECS if spec[0] == name)
        assert spec[2](state) == {k: tuple(v.shape) for k, v in state.items()}
        spec[3](state)  # builds and loads strictly without raising


def test_unusable_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingWeights) as missing:
        load_fv2v(tmp_path / "absent.pth.tar")
    assert missing.value.names == ("absent.pth.tar",)
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(Fv2vCheckpointError, match="garbage.pth.tar: cannot be read as a torch checkpoint"):
        load_fv2v(garbage)
    tensor_file = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(Fv2vCheckpointError, match="holds a Tensor"):
        load_fv2v(tensor_file)
    other = tmp_path / "vocaset.pth"
    torch.save({"vertice_map.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(Fv2vCheckpointError, match="has none of the entries generator, kp_detector, he_estimator"):
        load_fv2v(other)
    partial = tmp_path / "partial.pth.tar"
    torch.save({"generator": build_generator(tiny_generator_config("new")).state_dict()}, partial)
    with pytest.raises(Fv2vCheckpointError, match="lacks the kp_detector, he_estimator part"):
        load_fv2v(partial)
    wrong_part = tmp_path / "swapped.pth.tar"
    torch.save(
        {
            "generator": KPDetector(tiny_kp_config()).state_dict(),
            "kp_detector": KPDetector(tiny_kp_config()).state_dict(),
            "he_estimator": HEEstimator(tiny_he_config()).state_dict(),
        },
        wrong_part,
    )
    with pytest.raises(Fv2vCheckpointError, match="swapped.pth.tar: the 'generator' entry is not a face-vid2vid"):
        load_fv2v(wrong_part)
    no_prefix = tmp_path / "other.safetensors"
    save_file({"netG.weight": torch.zeros(2)}, str(no_prefix))
    with pytest.raises(Fv2vCheckpointError, match="not a SadTalker face renderer file"):
        load_fv2v(no_prefix)


def test_missing_num_batches_tracked_is_tolerated() -> None:
    state = {k: v for k, v in HEEstimator(tiny_he_config()).state_dict().items() if "num_batches_tracked" not in k}
    module = load_part("he_estimator", state)
    assert isinstance(module, HEEstimator)


# ------------------------------------------------------------------------------------------------- full size, slow


def _reference_state(title: str, module: nn.Module, drop: tuple[str, ...] = ()) -> dict[str, Tensor]:
    """EXACTLY the keys and shapes listed in checkpoint-keys.txt, with the (sane, random) values of `module`."""
    reference = reference_section(title)
    for key in drop:
        del reference[key]
    values = module.state_dict()
    state = {key: values[key].clone() for key in reference}
    assert {k: tuple(v.shape) for k, v in state.items()} == reference
    return state


@pytest.mark.slow
@pytest.mark.skipif(not KEYS_FILE.is_file(), reason=f"reference key list {KEYS_FILE} is absent")
@pytest.mark.parametrize("variant", ["new", "beta"])
def test_full_size_checkpoint_loads_strictly_and_runs(tmp_path: Path, variant: str) -> None:
    torch.manual_seed(0)
    generator_title = SECTION_NEW if variant == "new" else SECTION_BETA
    kp_config = KPDetectorConfig(scale_factor=0.25 if variant == "new" else 1.0)
    checkpoint: dict[str, object] = {
        "generator": _reference_state(
            generator_title,
            randomize(build_generator(GeneratorConfig(variant=variant))),  # type: ignore[arg-type]
        ),
        "kp_detector": _reference_state(
            SECTION_KP, randomize(KPDetector(kp_config)), drop=() if variant == "new" else ("down.weight",)
        ),
        "he_estimator": _reference_state(SECTION_HE, randomize(HEEstimator(HEEstimatorConfig()))),
    }
    path = tmp_path / f"vox-256-{variant}.pth.tar"
    torch.save(checkpoint, path)
    del checkpoint
    loaded = load_fv2v(path)
    assert loaded.variant == variant
    image = image_batch(1, 256, seed=5)
    with torch.no_grad():
        kp = loaded.kp_detector(image)
        head = loaded.he_estimator(image)
        kp_source = transform_keypoints(kp, head, loaded.rotation_convention)
        kp_driving = transform_keypoints(kp, head, loaded.rotation_convention, yaw=10.0)
        out = loaded.generator(image, kp_driving=kp_driving, kp_source=kp_source)
    assert kp.shape == (1, 15, 3) and kp.abs().max().item() <= 1.0
    assert head.yaw.shape == (1, 66) and head.exp.shape == (1, 45)
    assert out.prediction.shape == (1, 3, 256, 256) and torch.isfinite(out.prediction).all()
    assert out.mask.shape == (1, 16, 16, 64, 64)
    assert out.occlusion_map is not None and out.occlusion_map.shape == (1, 1, 64, 64)


def test_tiny_image_constant_is_consistent() -> None:
    assert TINY_IMAGE % 128 == 0
