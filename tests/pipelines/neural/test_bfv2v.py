"""BFv2v generator: the 414-key layout against the reference list, strict loading and its errors, and numerical
checks of the landmark-driven wiring (section MLP inputs, keypoints per section, the U projection, identity motion,
the position of the all-zero mesh channel)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import Tensor

from pipelines.base import BadInput, MissingWeights
from pipelines.th.neural.fv2v.bfv2v import (
    LAYOUT_SPEC,
    BFv2vConfig,
    BFv2vGenerator,
    config_from_state_dict,
    expected_shapes,
    is_bfv2v_generator,
    load_bfv2v_generator,
)
from pipelines.th.neural.fv2v.bfv2v_motion import (
    V16_SECTIONS,
    BFv2vDenseMotionConfig,
    LandmarkSection,
    parse_sections,
    project_to_grid,
)
from pipelines.th.neural.fv2v.blocks import make_coordinate_grid
from pipelines.th.neural.fv2v.checkpoint import is_generator_new
from pipelines.th.neural.fv2v.dense_motion import create_sparse_motions
from tests.support.fv2v_kit import KEYS_FILE, SECTION_NEW, TINY_IMAGE, image_batch, randomize, reference_section
from tests.support.neural_files import tiny_bfv2v_config

SECTION_BFV2V = "BFv2v generator (Daniel-H-99/MDTH"
SCALE = TINY_IMAGE / 2  # MDTH: SCALE = frame size // 2
DM = "dense_motion_network."


def tiny_config(sections: tuple[LandmarkSection, ...] = V16_SECTIONS) -> BFv2vConfig:
    return tiny_bfv2v_config(sections, landmark_scale=SCALE)


def tiny_generator(sections: tuple[LandmarkSection, ...] = V16_SECTIONS, seed: int = 0) -> BFv2vGenerator:
    torch.manual_seed(seed)
    generator = BFv2vGenerator(tiny_config(sections))
    randomize(generator, seed)
    return generator.eval()


def landmarks(batch: int, seed: int = 1) -> Tensor:
    """Face-sized landmarks (model units / SCALE, roughly +-0.7) like MDTH's normalised eos landmarks."""
    return (torch.rand(batch, 68, 3, generator=torch.Generator().manual_seed(seed)) - 0.5) * 1.4


def centred_u(batch: int, scale: float = SCALE, shift_px: tuple[float, float] = (0.0, 0.0)) -> Tensor:
    """U (row-vector convention) of 1 model unit = 1 pixel, origin at the frame centre (+ a pixel shift)."""
    u = torch.eye(4).repeat(batch, 1, 1)
    u[:, 3, 0] = scale + shift_px[0]
    u[:, 3, 1] = scale + shift_px[1]
    return u


def save_checkpoint(state: dict[str, Tensor], path: Path) -> Path:
    """A BFv2v training checkpoint dict: the generator plus entries inference ignores."""
    torch.save({"generator": state, "discriminator": {"w": torch.zeros(2)}, "epoch": 7}, path)
    return path


# ------------------------------------------------------------------------------------------------------- layout


def bfv2v_reference() -> tuple[dict[str, tuple[int, ...]], int, int]:
    """key -> shape of the BFv2v generator: the face-vid2vid SPADE list with the BFv2v section's differences."""
    if not KEYS_FILE.is_file():
        pytest.skip(f"reference key list absent: {KEYS_FILE}")
    keys = reference_section(SECTION_NEW)
    lines = KEYS_FILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("###") and SECTION_BFV2V in line)
    header = re.search(r"(\d+) keys, (\d+) elements", lines[start])
    assert header, lines[start]
    for line in lines[start + 1 :]:
        if line.startswith("###"):
            break
        missing = re.fullmatch(r"keys of face-vid2vid SPADE generator missing in BFv2v: \[(.*)\]", line.strip())
        if missing:
            for key in re.findall(r"'([^']+)'", missing.group(1)):
                del keys[key]
            continue
        entry = re.fullmatch(r"(\S+) \(([\d, ]*)\)\s+\((new|face-vid2vid: .*)\)", line.strip())
        if entry:
            keys[entry.group(1)] = tuple(int(n) for n in re.findall(r"\d+", entry.group(2)))
    return keys, int(header.group(1)), int(header.group(2))


def test_full_size_key_set_and_shapes_equal_the_reference_list() -> None:
    reference, count, elements = bfv2v_reference()
    assert len(reference) == count == 414
    ours = expected_shapes(BFv2vConfig())
    assert sorted(set(reference) - set(ours)) == [], "missing keys"
    assert sorted(set(ours) - set(reference)) == [], "unexpected keys"
    assert {k: (ours[k], reference[k]) for k in reference if ours[k] != reference[k]} == {}, "mis-shaped keys"
    assert sum(torch.Size(shape).numel() for shape in ours.values()) == elements == 101_739_297
    # Same order as the original's state_dict: face-vid2vid's, with the prior extractors registered after occlusion.
    priors = [key for key in reference if ".prior_extractors." in key]
    fv2v_order = [key for key in reference if key not in priors]
    cut = fv2v_order.index(DM + "occlusion.bias") + 1
    assert list(ours) == fv2v_order[:cut] + priors + fv2v_order[cut:]


def test_full_size_channel_counts_follow_from_twenty_keypoints() -> None:
    shapes = expected_shapes(BFv2vConfig())
    assert shapes[DM + "hourglass.encoder.down_blocks.0.conv.weight"][1] == (20 + 1) * (4 + 1) + 1 == 106
    assert shapes[DM + "hourglass.decoder.conv.weight"][:2] == (138, 138)
    assert shapes[DM + "mask.weight"][:2] == (21, 138)
    assert shapes[DM + "occlusion.weight"] == (1, 138 * 16, 7, 7)
    for i, section in enumerate(V16_SECTIONS):
        assert shapes[f"{DM}prior_extractors.{i}.0.weight"] == (256, 3 * len(section.indices))
        assert shapes[f"{DM}prior_extractors.{i}.2.weight"] == (3 * section.num_kp, 256)
    assert f"{DM}prior_extractors.7.0.weight" not in shapes


def test_tiny_config_keeps_the_full_key_names() -> None:
    assert set(expected_shapes(tiny_config())) == set(expected_shapes(BFv2vConfig()))


def test_config_is_derived_from_the_shapes() -> None:
    generator = tiny_generator()
    assert config_from_state_dict(generator.state_dict(), landmark_scale=SCALE) == tiny_config()
    with torch.device("meta"):
        full = BFv2vGenerator().state_dict()
    assert config_from_state_dict(full) == BFv2vConfig()


def test_a_custom_section_layout_changes_the_key_shapes_and_loads_with_its_sections(tmp_path: Path) -> None:
    raw = [[[36, 37, 38, 39, 40, 41], 2], [list(range(48, 68)), 5]]
    sections = parse_sections(raw)
    shapes = expected_shapes(tiny_config(sections))
    assert shapes[f"{DM}prior_extractors.0.0.weight"] == (16, 18)
    assert shapes[f"{DM}prior_extractors.0.2.weight"] == (6, 16)
    assert shapes[f"{DM}prior_extractors.1.0.weight"] == (16, 60)
    assert shapes[f"{DM}prior_extractors.1.2.weight"] == (15, 16)
    assert f"{DM}prior_extractors.2.0.weight" not in shapes
    assert shapes[DM + "mask.weight"][0] == 7 + 1
    assert shapes[DM + "hourglass.encoder.down_blocks.0.conv.weight"][1] == (7 + 1) * (2 + 1) + 1

    path = save_checkpoint(tiny_generator(sections).state_dict(), tmp_path / "custom.pth.tar")
    loaded = load_bfv2v_generator(path, sections=raw, landmark_scale=SCALE)
    assert loaded.config.sections == sections and loaded.config.num_kp == 7
    with pytest.raises(BadInput, match="not the v16 layout.*sections="):
        load_bfv2v_generator(path)
    with pytest.raises(BadInput, match="do not fit"):
        load_bfv2v_generator(path, sections=[[[36, 37, 38, 39, 40, 41], 2], [list(range(48, 67)), 5]])


# ------------------------------------------------------------------------------------------------------ loading


def test_tiny_checkpoint_loads_strictly_and_reproduces_the_saved_model(tmp_path: Path) -> None:
    original = tiny_generator()
    path = save_checkpoint(original.state_dict(), tmp_path / "bfv2v.pth.tar")
    loaded = load_bfv2v_generator(path, landmark_scale=SCALE)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    image, lms = image_batch(1), landmarks(2)
    u = centred_u(2)
    with torch.no_grad():
        expected = original.animate(image, lms[:1], lms, u[:1], u)
        got = loaded.animate(image, lms[:1], lms, u[:1], u)
    assert got["prediction"].shape == (2, 3, TINY_IMAGE, TINY_IMAGE)
    assert 0 <= float(got["prediction"].min()) and float(got["prediction"].max()) <= 1
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


def test_bare_state_dicts_and_dataparallel_prefixes_load(tmp_path: Path) -> None:
    state = tiny_generator().state_dict()
    torch.save(state, tmp_path / "bare.pth")
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "wrapped.pth")
    for name in ("bare.pth", "wrapped.pth"):
        assert load_bfv2v_generator(tmp_path / name).config.num_kp == 20
    assert load_bfv2v_generator(state, dtype=torch.float64).decoder.fc.weight.dtype == torch.float64


def test_missing_file_names_the_weights_and_says_none_are_public(tmp_path: Path) -> None:
    with pytest.raises(MissingWeights, match="no public BFv2v weights") as caught:
        load_bfv2v_generator(tmp_path / "absent.pth.tar", weights_name="checkpoints/bfv2v_v16.pth.tar")
    assert caught.value.names == ("checkpoints/bfv2v_v16.pth.tar",)


def test_unusable_files_and_state_dicts_fail_with_the_reason(tmp_path: Path) -> None:
    state = tiny_generator().state_dict()
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(BadInput, match="text.pth: cannot be read"):
        load_bfv2v_generator(tmp_path / "text.pth")
    face_vid2vid = {k: v for k, v in state.items() if ".prior_extractors." not in k}
    with pytest.raises(BadInput, match="not a BFv2v generator"):
        load_bfv2v_generator(face_vid2vid)
    missing = {k: v for k, v in state.items() if k != "decoder.up_0.conv_1.weight_u"}
    with pytest.raises(BadInput, match=r"1 missing \(decoder.up_0.conv_1.weight_u\)"):
        load_bfv2v_generator(missing)
    reshaped = dict(state, **{"fourth.bias": torch.zeros(5)})
    with pytest.raises(BadInput, match=r"mis-shaped \(fourth.bias: file \[5\] vs expected \[16\]\)"):
        load_bfv2v_generator(reshaped)
    extra = dict(state, **{"kp_extractor.weight": torch.zeros(3)})
    with pytest.raises(BadInput, match=r"1 unexpected \(kp_extractor.weight\)"):
        load_bfv2v_generator(extra)


def test_verifier_hooks_tell_bfv2v_from_face_vid2vid() -> None:
    state = tiny_generator().state_dict()
    name, detect, expected, load = LAYOUT_SPEC
    assert "BFv2v" in name and detect(state) and is_bfv2v_generator(state)
    assert not is_generator_new(state), "the face-vid2vid New layout must not claim a BFv2v generator"
    face_vid2vid = {k: v for k, v in state.items() if ".prior_extractors." not in k}
    assert not detect(face_vid2vid)
    assert expected(state) == {k: tuple(v.shape) for k, v in state.items()}
    load(state)


# ------------------------------------------------------------------------------------------------------- wiring


@pytest.mark.parametrize("section_index", range(len(V16_SECTIONS)))
def test_each_section_mlp_reads_exactly_its_landmarks(section_index: int) -> None:
    network = tiny_generator().motion_network
    section = V16_SECTIONS[section_index]
    first = sum(s.num_kp for s in V16_SECTIONS[:section_index])
    own = slice(first, first + section.num_kp)
    base = landmarks(2)
    outside = base.clone()
    others = [i for i in range(68) if i not in section.indices]
    outside[:, others] += torch.randn(2, len(others), 3) * 0.3
    inside = base.clone()
    inside[:, section.indices[-1]] += 0.3
    with torch.no_grad():
        p_base, p_outside, p_inside = (network.priors(x) for x in (base, outside, inside))
    torch.testing.assert_close(p_outside[:, own], p_base[:, own], rtol=0, atol=0)
    assert not torch.allclose(p_inside[:, own], p_base[:, own]), "the section's own landmark must move its keypoints"
    rest = [k for k in range(20) if not own.start <= k < own.stop]
    torch.testing.assert_close(p_inside[:, rest], p_base[:, rest], rtol=0, atol=0)
    # The MLP input is the section's points in the listed order, flattened point by point (x0, y0, z0, x1, ...).
    by_hand = torch.cat([base[:, j] for j in section.indices], dim=1)
    with torch.no_grad():
        direct = network.prior_extractors[section_index](by_hand).view(2, -1, 3)
    torch.testing.assert_close(p_base[:, own], direct)


def test_landmarks_in_no_section_do_not_move_any_keypoint() -> None:
    network = tiny_generator().motion_network
    used = {i for s in V16_SECTIONS for i in s.indices}
    unused = [i for i in range(68) if i not in used]
    assert unused == list(range(3, 14)) + list(range(17, 27)) + list(range(31, 36))
    base = landmarks(1)
    moved = base.clone()
    moved[:, unused] += 0.5
    with torch.no_grad():
        torch.testing.assert_close(network.priors(moved), network.priors(base), rtol=0, atol=0)


def test_keypoints_per_section_follow_the_layout_in_order() -> None:
    network = tiny_generator().motion_network
    lms = landmarks(1)
    for i, section in enumerate(V16_SECTIONS):
        with torch.no_grad():
            saved = [t.clone() for t in (network.prior_extractors[i][2].weight, network.prior_extractors[i][2].bias)]
            network.prior_extractors[i][2].weight.zero_()
            network.prior_extractors[i][2].bias.zero_()
            priors = network.priors(lms)
            network.prior_extractors[i][2].weight.copy_(saved[0])
            network.prior_extractors[i][2].bias.copy_(saved[1])
        zero_rows = (priors[0].abs().sum(dim=1) == 0).nonzero().flatten().tolist()
        first = sum(s.num_kp for s in V16_SECTIONS[:i])
        assert zero_rows == list(range(first, first + section.num_kp)), f"section {i}"


def test_the_projection_follows_mdth_rule_for_u() -> None:
    priors = torch.rand(2, 5, 3) - 0.5
    # A centred U (1 unit = 1 px, origin at the frame centre) puts keypoints where the priors are.
    torch.testing.assert_close(project_to_grid(priors, centred_u(2), SCALE), priors)
    # Moving the head right by SCALE/2 pixels moves keypoints by 0.5 in grid x; z is never shifted.
    shifted = project_to_grid(priors, centred_u(2, shift_px=(SCALE / 2, 0.0)), SCALE)
    torch.testing.assert_close(shifted - priors, torch.tensor([0.5, 0.0, 0.0]).expand(2, 5, 3))
    # A general U acts on row vectors [p, 1/SCALE] (not U^T), then -(1, 1, 0); per-frame scales are honoured.
    u = torch.randn(2, 4, 4)
    scales = torch.tensor([64.0, 128.0])
    got = project_to_grid(priors, u, scales)
    for b in range(2):
        for k in range(5):
            row = torch.cat([priors[b, k], 1 / scales[b : b + 1]])
            want = torch.stack([sum(row[j] * u[b, j, c] for j in range(4)) for c in range(3)])
            torch.testing.assert_close(got[b, k], want - torch.tensor([1.0, 1.0, 0.0]))


def test_same_source_and_driving_landmarks_give_identity_motion() -> None:
    generator = tiny_generator()
    lms, u = landmarks(2), centred_u(2, shift_px=(7.0, -3.0))
    with torch.no_grad():
        kp_source = generator.keypoints(lms, u)
        kp_driving = generator.keypoints(lms.clone(), u.clone())
        torch.testing.assert_close(kp_source, kp_driving, rtol=0, atol=0)
        size = (2, TINY_IMAGE // 4, TINY_IMAGE // 4)
        motions = create_sparse_motions(size, kp_driving, kp_source)
        identity = make_coordinate_grid(size, torch.float32, torch.device("cpu"))
        torch.testing.assert_close(motions, identity.expand_as(motions), rtol=0, atol=0)
        out = generator.animate(image_batch(1), lms, lms, u, u)
        torch.testing.assert_close(out["deformation"], identity.expand_as(out["deformation"]), rtol=0, atol=1e-5)
        moved = lms.clone()
        moved[:, 48:68, 1] += 0.2  # open the mouth
        other = generator.animate(image_batch(1), lms, moved, u, u)
    assert (other["deformation"] - out["deformation"]).abs().max() > 1e-3
    assert (other["prediction"] - out["prediction"]).abs().max() > 1e-4


def test_the_zero_mesh_channel_is_the_first_hourglass_input() -> None:
    """Input channel 0 is the all-zero mesh image and channel 1 the background motion's zero heatmap, so their
    weights cannot matter; channel 2 (the background's warped feature) and the last channel (the last keypoint's
    feature) do. With the mesh channel anywhere else, channel 1 or the last channel would contradict this."""
    generator = tiny_generator()
    with torch.no_grad():
        generator.dense_motion_network.norm.bias.fill_(2.0)  # keep every compressed channel alive through the ReLU
    lms, u = landmarks(1), centred_u(1)
    moved = lms.clone()
    moved[:, 36:48, 1] += 0.1
    first_conv = generator.dense_motion_network.hourglass.encoder.down_blocks[0].conv.weight

    def run() -> Tensor:
        return generator.animate(image_batch(1), lms, moved, u, u)["prediction"]

    with torch.no_grad():
        base = run()
        first_conv[:, :2] += 5.0
        torch.testing.assert_close(run(), base, rtol=0, atol=0)
        for channel in (2, first_conv.shape[1] - 1):
            first_conv[:, channel] += 5.0
            assert (run() - base).abs().max() > 1e-4, f"input channel {channel} must matter"
            first_conv[:, channel] -= 5.0


def test_cached_source_and_batched_frames_match_one_call_per_frame() -> None:
    generator = tiny_generator()
    image, lms, u = image_batch(1), landmarks(3), centred_u(3, shift_px=(2.0, 1.0))
    with torch.no_grad():
        feature = generator.encode_source(image)
        kp_source = generator.keypoints(lms[:1], u[:1])
        batched = generator.warp_and_decode(feature, kp_source, generator.keypoints(lms, u)).prediction
        for b in range(3):
            single = generator.animate(image, lms[:1], lms[b : b + 1], u[:1], u[b : b + 1])["prediction"]
            torch.testing.assert_close(batched[b : b + 1], single, rtol=1e-4, atol=1e-5)


def test_parse_sections_rejects_bad_layouts_with_the_fix() -> None:
    assert parse_sections([[list(range(36, 42)), 3]]) == (LandmarkSection(tuple(range(36, 42)), 3),)
    for bad, reason in (
        ([], "non-empty list"),
        ([[[36, 68], 1]], "outside 0-67"),
        ([[[36, 36], 1]], "repeats"),
        ([[[36, 37], 0]], "keypoint count 0"),
        ([[[], 1]], "no landmark indices"),
        ([[[36, 37]]], "not a pair"),
    ):
        with pytest.raises(BadInput, match=reason):
            parse_sections(bad, source="vox-256-renderer_v16.yaml")
    with pytest.raises(ValueError, match="differs from the sections"):
        BFv2vDenseMotionConfig(num_kp=15)


# --------------------------------------------------------------------------------------------------- full size


@pytest.mark.slow
def test_full_size_checkpoint_saves_loads_strictly_and_animates_256(tmp_path: Path) -> None:
    torch.manual_seed(0)
    original = randomize(BFv2vGenerator())
    path = save_checkpoint(original.state_dict(), tmp_path / "00002099-checkpoint.pth.tar")
    del original
    generator = load_bfv2v_generator(path)
    assert len(generator.state_dict()) == 414
    lms, u = landmarks(1), centred_u(1, scale=128.0)
    moved = lms.clone()
    moved[:, 48:68, 1] += 0.05
    with torch.no_grad():
        out = generator.animate(image_batch(1, size=256), lms, moved, u, u)
    assert out["prediction"].shape == (1, 3, 256, 256)
    assert out["mask"].shape == (1, 21, 16, 64, 64)
    assert out["occlusion_map"].shape == (1, 1, 64, 64)
    assert out["kp_driving"].shape == (1, 20, 3)
    assert torch.isfinite(out["prediction"]).all()
    assert 0 <= float(out["prediction"].min()) and float(out["prediction"].max()) <= 1
