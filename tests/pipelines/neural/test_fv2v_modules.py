"""Numerical wiring checks of KPDetector, the dense motion and both generators on tiny random models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipelines.th.neural.fv2v.blocks import (
    AntiAliasDownsample,
    SpectralNormConv2d,
    anti_alias_kernel,
    make_coordinate_grid,
    scale_from_kernel_size,
)
from pipelines.th.neural.fv2v.dense_motion import create_sparse_motions
from pipelines.th.neural.fv2v.generators import Fv2vGenerator, build_generator, warp_feature
from pipelines.th.neural.fv2v.keypoints import KPDetector
from tests.support.fv2v_kit import NUM_KP, TINY_IMAGE, image_batch, randomize, tiny_generator_config, tiny_kp_config


def _generator(variant: str) -> Fv2vGenerator:
    torch.manual_seed(11)
    generator = randomize(build_generator(tiny_generator_config(variant)))
    assert isinstance(generator, Fv2vGenerator)
    return generator


def _keypoints(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, NUM_KP, 3, generator=torch.Generator().manual_seed(seed)) * 1.2 - 0.6


# ----------------------------------------------------------------------------------------------------- KPDetector


@pytest.mark.parametrize(("scale", "size"), [(0.25, TINY_IMAGE), (1.0, 64)])
def test_kp_detector_keypoints_are_deterministic_batched_and_in_the_unit_cube(scale: float, size: int) -> None:
    torch.manual_seed(2)
    detector = randomize(KPDetector(tiny_kp_config(scale_factor=scale)))
    assert isinstance(detector, KPDetector)
    assert (detector.down is None) == (scale == 1.0)
    image = image_batch(1, size, seed=1)
    images = torch.cat([image, image, image_batch(1, size, seed=2)])
    with torch.no_grad():
        batched = detector(images)
        singles = torch.cat([detector(images[i : i + 1]) for i in range(3)])
        heatmaps = detector.heatmaps(images)
    assert batched.shape == (3, NUM_KP, 3)
    torch.testing.assert_close(batched[0], batched[1], rtol=0, atol=0)
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)
    assert batched.abs().max().item() <= 1.0
    torch.testing.assert_close(heatmaps.sum(dim=(2, 3, 4)), torch.ones(3, NUM_KP))


def test_kp_detector_returns_the_expected_grid_coordinate_of_its_heatmap() -> None:
    """Bias one keypoint channel's logits towards a voxel: the keypoint moves to that voxel's grid coordinate."""
    detector = randomize(KPDetector(tiny_kp_config(scale_factor=1.0)))
    assert isinstance(detector, KPDetector)
    with torch.no_grad():
        assert detector.kp.bias is not None
        detector.kp.weight.zero_()
        detector.kp.bias.zero_()
        kp = detector(image_batch(1, 64))
    # All-zero logits: uniform softmax, so every keypoint is the centre of the grid.
    torch.testing.assert_close(kp, torch.zeros_like(kp), atol=1e-6, rtol=0)


def test_anti_alias_kernel_is_the_13x13_sigma_1_5_gaussian() -> None:
    kernel = anti_alias_kernel(3, 0.25)
    assert kernel.shape == (3, 1, 13, 13)
    coords = torch.arange(13, dtype=torch.float32) - 6
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    expected = g[:, None] * g[None, :]
    torch.testing.assert_close(kernel[0, 0], expected / expected.sum())
    assert scale_from_kernel_size(13) == 0.25
    down = AntiAliasDownsample(3, 0.25)
    flat = torch.full((1, 3, 64, 64), 0.5)
    out = down(flat)
    assert out.shape == (1, 3, 16, 16)
    torch.testing.assert_close(out[:, :, 2:-2, 2:-2], torch.full((1, 3, 12, 12), 0.5))


def test_spectral_norm_conv_matches_torch_spectral_norm_in_eval_mode() -> None:
    torch.manual_seed(5)
    reference = nn.utils.spectral_norm(nn.Conv2d(6, 4, kernel_size=3, padding=1))
    reference.train()
    x = torch.randn(2, 6, 9, 9)
    for _ in range(3):
        reference(x)  # power iterations update u and v, as training did
    reference.eval()
    ours = SpectralNormConv2d(6, 4, kernel_size=3, padding=1)
    ours.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


# --------------------------------------------------------------------------------------------------- dense motion


def test_sparse_motions_are_all_the_identity_when_source_equals_driving() -> None:
    kp = _keypoints(2, seed=3)
    motions = create_sparse_motions((2, 8, 8), kp, kp)
    identity = make_coordinate_grid((2, 8, 8), kp.dtype, kp.device)
    assert motions.shape == (2, NUM_KP + 1, 2, 8, 8, 3)
    torch.testing.assert_close(motions, identity.expand_as(motions), rtol=0, atol=1e-7)


@pytest.mark.parametrize("variant", ["new", "beta"])
def test_identity_motion_gives_the_identity_deformation_and_an_unmoved_feature(variant: str) -> None:
    generator = _generator(variant)
    kp = _keypoints(2, seed=4)
    with torch.no_grad():
        feature = generator.encode_source(image_batch(2))
        out = generator.warp_and_decode(feature, kp_source=kp, kp_driving=kp)
        identity = make_coordinate_grid(tuple(feature.shape[2:]), feature.dtype, feature.device)  # type: ignore[arg-type]
        torch.testing.assert_close(out.deformation, identity.expand_as(out.deformation), rtol=0, atol=1e-6)
        warped = warp_feature(feature, out.deformation)
        unwarped = F.grid_sample(feature, identity.expand_as(out.deformation), align_corners=False)
    torch.testing.assert_close(warped, unwarped, rtol=0, atol=1e-6)
    # "Up to grid_sample interpolation": the grid puts -1 and 1 on the first and last samples while
    # align_corners=False reads those as the outer pixel edges, so samples move by up to half a pixel (and the first
    # and last depth slices get half weight against the zero padding, as in the original). The warped feature is
    # still the same picture: strongly correlated with the unwarped one.
    interior = (slice(None), slice(None), slice(None), slice(4, -4), slice(4, -4))
    a, b = warped[interior].flatten(), feature[interior].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1].item() > 0.95


def test_translating_every_driving_keypoint_moves_the_deformation_by_the_masked_offset() -> None:
    """grid - kp_driving + kp_source: deformation = identity - delta * (1 - background weight)."""
    generator = _generator("new")
    kp_source = _keypoints(1, seed=5)
    delta = torch.tensor([0.1, -0.05, 0.02])
    with torch.no_grad():
        feature = generator.encode_source(image_batch(1))
        out = generator.warp_and_decode(feature, kp_source=kp_source, kp_driving=kp_source + delta)
    identity = make_coordinate_grid(tuple(feature.shape[2:]), feature.dtype, feature.device)  # type: ignore[arg-type]
    foreground = (1 - out.mask[:, 0]).unsqueeze(-1)
    torch.testing.assert_close(out.deformation, identity - delta * foreground, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------- generators


@pytest.mark.parametrize("variant", ["new", "beta"])
def test_generator_outputs_shapes_and_ranges(variant: str) -> None:
    generator = _generator(variant)
    with torch.no_grad():
        out = generator(image_batch(2), kp_driving=_keypoints(2, 6), kp_source=_keypoints(2, 7))
    assert out.prediction.shape == (2, 3, TINY_IMAGE, TINY_IMAGE)
    assert out.mask.shape == (2, NUM_KP + 1, 2, TINY_IMAGE // 4, TINY_IMAGE // 4)
    assert out.occlusion_map is not None and out.occlusion_map.shape == (2, 1, TINY_IMAGE // 4, TINY_IMAGE // 4)
    assert 0.0 <= out.prediction.min().item() and out.prediction.max().item() <= 1.0
    torch.testing.assert_close(out.mask.sum(dim=1), torch.ones_like(out.mask[:, 0]))


@pytest.mark.parametrize("variant", ["new", "beta"])
def test_cached_source_feature_and_batching_give_the_per_frame_results(variant: str) -> None:
    generator = _generator(variant)
    source = image_batch(1, seed=8)
    kp_source = _keypoints(1, seed=9)
    kp_driving = _keypoints(3, seed=10)
    with torch.no_grad():
        feature = generator.encode_source(source)  # once per twin
        batched = generator.warp_and_decode(feature, kp_source=kp_source, kp_driving=kp_driving).prediction
        singles = [
            generator(source, kp_driving=kp_driving[i : i + 1], kp_source=kp_source).prediction for i in range(3)
        ]
    for i, single in enumerate(singles):
        torch.testing.assert_close(batched[i : i + 1], single, rtol=1e-4, atol=1e-5)
    assert (batched[0] - batched[1]).abs().max().item() > 1e-4, "the driving keypoints change the frame"


def test_generators_reject_the_other_variant_config() -> None:
    from pipelines.th.neural.fv2v.generators import OcclusionAwareGenerator, OcclusionAwareSPADEGenerator

    with pytest.raises(ValueError, match="variant='new'"):
        OcclusionAwareSPADEGenerator(tiny_generator_config("beta"))
    with pytest.raises(ValueError, match="variant='beta'"):
        OcclusionAwareGenerator(tiny_generator_config("new"))


def test_adopted_parts_share_the_generator_parameters() -> None:
    generator = _generator("new")
    assert generator.appearance_encoder.first is generator.first
    assert generator.post_warp.third is generator.third
    names = {name.split(".")[0] for name in generator.state_dict()}
    assert names == {
        "dense_motion_network",
        "first",
        "down_blocks",
        "second",
        "resblocks_3d",
        "third",
        "fourth",
        "decoder",
    }
    generator.to(torch.float64)
    assert generator.appearance_encoder.second.weight.dtype == torch.float64
