"""Head pose decoding, the yaw/roll head swap, both rotation conventions and the keypoint maths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipelines.th.neural.fv2v.head_pose import (
    HeadPose,
    HEEstimator,
    headpose_logits_to_degrees,
    keypoint_transformation,
    relative_keypoints,
    rotation_matrix,
    rotation_matrix_beta,
    rotation_matrix_new,
    transform_keypoints,
)
from tests.support.fv2v_kit import image_batch, randomize, tiny_he_config


def _rad(deg: float) -> float:
    return deg / 180 * 3.14


def rx(deg: float) -> np.ndarray:
    c, s = math.cos(_rad(deg)), math.sin(_rad(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def ry(deg: float) -> np.ndarray:
    c, s = math.cos(_rad(deg)), math.sin(_rad(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rz(deg: float) -> np.ndarray:
    c, s = math.cos(_rad(deg)), math.sin(_rad(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _peak(bin_index: int, bins: int = 66, height: float = 50.0) -> torch.Tensor:
    logits = torch.zeros(1, bins, dtype=torch.float64)
    logits[0, bin_index] = height
    return logits


def test_degrees_are_the_softmax_expectation_of_the_bin_index_times_3_minus_99() -> None:
    logits = torch.randn(4, 66, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    probs = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(axis=1, keepdims=True)
    expected = (probs * np.arange(66)).sum(axis=1) * 3 - 99
    np.testing.assert_allclose(headpose_logits_to_degrees(logits).numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("bin_index", "degrees"), [(0, -99.0), (33, 0.0), (40, 21.0), (65, 96.0)])
def test_a_sharp_peak_decodes_to_its_bin(bin_index: int, degrees: float) -> None:
    assert headpose_logits_to_degrees(_peak(bin_index)).item() == pytest.approx(degrees, abs=1e-6)


def _he_with_peaks(roll_head_bin: int, pitch_head_bin: int, yaw_head_bin: int) -> HEEstimator:
    """Zero every head's weights and put a peak in one bin of fc_roll / fc_pitch / fc_yaw."""
    he = randomize(HEEstimator(tiny_he_config()))
    assert isinstance(he, HEEstimator)
    with torch.no_grad():
        for head, peak in ((he.fc_roll, roll_head_bin), (he.fc_pitch, pitch_head_bin), (he.fc_yaw, yaw_head_bin)):
            head.weight.zero_()
            head.bias.zero_()
            head.bias[peak] = 60.0
    return he


def test_yaw_comes_from_fc_roll_and_roll_from_fc_yaw() -> None:
    he = _he_with_peaks(roll_head_bin=40, pitch_head_bin=20, yaw_head_bin=10)
    with torch.no_grad():
        yaw, pitch, roll = he(image_batch(2, 64)).degrees()
    assert yaw.tolist() == pytest.approx([40 * 3 - 99] * 2, abs=1e-3)  # from fc_roll
    assert pitch.tolist() == pytest.approx([20 * 3 - 99] * 2, abs=1e-3)
    assert roll.tolist() == pytest.approx([10 * 3 - 99] * 2, abs=1e-3)  # from fc_yaw


def test_he_estimator_outputs_and_batching() -> None:
    he = randomize(HEEstimator(tiny_he_config(num_kp=3)))
    images = image_batch(3, 64)
    with torch.no_grad():
        whole = he(images)
        single = [he(images[i : i + 1]) for i in range(3)]
    assert whole.yaw.shape == (3, 66) and whole.t.shape == (3, 3) and whole.exp.shape == (3, 9)
    for i, one in enumerate(single):
        for name in ("yaw", "pitch", "roll", "t", "exp"):
            torch.testing.assert_close(getattr(whole, name)[i : i + 1], getattr(one, name), rtol=1e-5, atol=1e-5)


ANGLES = (30.0, 20.0, 10.0)  # yaw, pitch, roll in degrees


def test_new_convention_is_rx_pitch_ry_yaw_rz_roll() -> None:
    yaw, pitch, roll = ANGLES
    got = rotation_matrix_new(_t(yaw), _t(pitch), _t(roll))[0].numpy()
    np.testing.assert_allclose(got, rx(pitch) @ ry(yaw) @ rz(roll), atol=1e-12)


def test_beta_convention_is_rx_roll_ry_pitch_rz_yaw() -> None:
    yaw, pitch, roll = ANGLES
    got = rotation_matrix_beta(_t(yaw), _t(pitch), _t(roll))[0].numpy()
    np.testing.assert_allclose(got, rx(roll) @ ry(pitch) @ rz(yaw), atol=1e-12)


def test_the_two_conventions_differ_and_rotation_matrix_dispatches() -> None:
    y, p, r = (_t(a) for a in ANGLES)
    new, beta = rotation_matrix(y, p, r, "new"), rotation_matrix(y, p, r, "beta")
    assert (new - beta).abs().max().item() > 0.1
    torch.testing.assert_close(new, rotation_matrix_new(y, p, r))
    torch.testing.assert_close(beta, rotation_matrix_beta(y, p, r))
    with pytest.raises(ValueError, match="convention"):
        rotation_matrix(y, p, r, "other")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("convention", "axis_of"),
    [("new", {"pitch": rx, "yaw": ry, "roll": rz}), ("beta", {"roll": rx, "pitch": ry, "yaw": rz})],
)
def test_each_angle_alone_rotates_about_its_axis(convention: str, axis_of: dict[str, object]) -> None:
    for name, builder in axis_of.items():
        angles = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, name: 25.0}
        got = rotation_matrix(_t(angles["yaw"]), _t(angles["pitch"]), _t(angles["roll"]), convention)  # type: ignore[arg-type]
        assert callable(builder)
        np.testing.assert_allclose(got[0].numpy(), builder(25.0), atol=1e-12)


def test_radians_use_3_14_not_pi() -> None:
    got = rotation_matrix_new(_t(90.0), _t(0.0), _t(0.0))[0, 0, 0].item()
    assert got == pytest.approx(math.cos(1.57), abs=1e-12)
    assert abs(got - math.cos(math.pi / 2)) > 1e-4


def test_keypoint_transformation_is_r_kp_plus_t_plus_exp() -> None:
    gen = torch.Generator().manual_seed(3)
    kp = torch.rand(2, 4, 3, generator=gen, dtype=torch.float64) * 2 - 1
    rot = rotation_matrix_new(_t(12.0, -7.0), _t(5.0, 3.0), _t(-4.0, 9.0))
    t = torch.rand(2, 3, generator=gen, dtype=torch.float64)
    exp = torch.rand(2, 12, generator=gen, dtype=torch.float64) * 0.1
    got = keypoint_transformation(kp, rot, t, exp)
    for b in range(2):
        expected = kp[b].numpy() @ rot[b].numpy().T + t[b].numpy() + exp[b].numpy().reshape(4, 3)
        np.testing.assert_allclose(got[b].numpy(), expected, atol=1e-12)
    vertical = keypoint_transformation(kp, rot, t, exp, vertical_translation_only=True)
    torch.testing.assert_close(vertical - got, -(t * _t(1.0, 0.0, 1.0)).unsqueeze(1).expand_as(got))


def _head(batch: int, num_kp: int, yaw_bin: int = 33, pitch_bin: int = 33, roll_bin: int = 33) -> HeadPose:
    return HeadPose(
        yaw=_peak(yaw_bin).expand(batch, 66),
        pitch=_peak(pitch_bin).expand(batch, 66),
        roll=_peak(roll_bin).expand(batch, 66),
        t=torch.zeros(batch, 3, dtype=torch.float64),
        exp=torch.zeros(batch, 3 * num_kp, dtype=torch.float64),
    )


@pytest.mark.parametrize("convention", ["new", "beta"])
def test_zero_pose_translation_and_expression_return_the_canonical_keypoints(convention: str) -> None:
    kp = torch.rand(1, 5, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2 - 1
    head = _head(1, 5)  # every angle peaks at bin 33 = 0 degrees
    torch.testing.assert_close(transform_keypoints(kp, head, convention), kp, atol=1e-9, rtol=0)  # type: ignore[arg-type]
    freeview = transform_keypoints(kp, _head(1, 5, 60, 5, 50), convention, yaw=0.0, pitch=0.0, roll=0.0)  # type: ignore[arg-type]
    torch.testing.assert_close(freeview, kp, atol=1e-12, rtol=0)


def test_transform_keypoints_decodes_the_heads_and_broadcasts_the_canonical_batch() -> None:
    kp = torch.rand(1, 3, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    head = _head(2, 3, yaw_bin=40, pitch_bin=30, roll_bin=36)  # 21, -9, 9 degrees
    got = transform_keypoints(kp, head, "new")
    rot = rx(-9.0) @ ry(21.0) @ rz(9.0)
    for b in range(2):
        np.testing.assert_allclose(got[b].numpy(), kp[0].numpy() @ rot.T, atol=1e-6)


def test_relative_motion_with_adapted_scale() -> None:
    gen = torch.Generator().manual_seed(6)
    initial = torch.rand(1, 15, 3, generator=gen, dtype=torch.float64)
    source = initial * 2.0  # hull volume x 8 -> movement scale sqrt(8)
    driving = initial + torch.rand(3, 15, 3, generator=gen, dtype=torch.float64) * 0.05
    got = relative_keypoints(source, driving, initial, adapt_scale=True)
    torch.testing.assert_close(got, source + (driving - initial) * math.sqrt(8.0))
    plain = relative_keypoints(source, driving, initial, adapt_scale=False)
    torch.testing.assert_close(plain, source + (driving - initial))
    torch.testing.assert_close(relative_keypoints(source, initial, initial), source.expand(1, 15, 3))
