"""Shared helpers of the face-vid2vid tests (no tests here): tiny configs with the real key sets, random state
dicts in a module's exact layout, and the parser of the reference key lists."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor, nn

from pipelines.th.neural.fv2v.dense_motion import DenseMotionConfig
from pipelines.th.neural.fv2v.generators import GeneratorConfig, SPADEDecoderConfig
from pipelines.th.neural.fv2v.head_pose import HEEstimatorConfig
from pipelines.th.neural.fv2v.keypoints import KPDetectorConfig

KEYS_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "checkpoint-keys.txt"

# Section titles (substrings of the "###" lines) of checkpoint-keys.txt.
SECTION_NEW = 'checkpoint["generator"] [OcclusionAwareSPADEGenerator'
SECTION_BETA = 'checkpoint["generator"] [OcclusionAwareGenerator'
SECTION_KP = 'checkpoint["kp_detector"] [KPDetector, scale_factor=0.25'
SECTION_HE = 'checkpoint["he_estimator"] [HEEstimator]'

TINY_IMAGE = 128  # the 5-level hourglasses need the 1/4-size feature divisible by 32
NUM_KP = 3


def reference_section(title: str) -> dict[str, tuple[int, ...]]:
    """key -> shape of the section of checkpoint-keys.txt whose "###" title contains `title`."""
    keys: dict[str, tuple[int, ...]] = {}
    inside = False
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("###"):
            if inside:
                break
            inside = title in line
            continue
        if inside and line.strip() and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            keys[key] = tuple(int(n) for n in re.findall(r"\d+", shape))
    assert keys, f"no section {title!r} in {KEYS_FILE}"
    return keys


def tiny_generator_config(variant: str = "new", num_kp: int = NUM_KP) -> GeneratorConfig:
    """Same key names as the real generator (6 res-blocks, 5-level hourglass, 6 SPADE blocks), tiny widths."""
    return GeneratorConfig(
        variant=variant,  # type: ignore[arg-type]
        block_expansion=4,
        max_features=16,
        num_down_blocks=2,
        reshape_channel=8,
        reshape_depth=2,
        num_resblocks=6,
        dense_motion=DenseMotionConfig(
            block_expansion=4,
            num_blocks=5,
            max_features=32,
            num_kp=num_kp,
            feature_channel=8,
            reshape_depth=2,
            compress=2,
        ),
        spade=SPADEDecoderConfig(in_channels=16, out_channels=4, hidden=8, num_middle_blocks=6),
    )


def tiny_kp_config(scale_factor: float = 0.25, num_kp: int = NUM_KP) -> KPDetectorConfig:
    return KPDetectorConfig(
        block_expansion=4,
        max_features=32,
        num_blocks=5,
        reshape_channel=64,
        reshape_depth=2,
        num_kp=num_kp,
        scale_factor=scale_factor,
    )


def tiny_he_config(num_kp: int = NUM_KP) -> HEEstimatorConfig:
    return HEEstimatorConfig(block_expansion=8, widths=(16, 32, 64, 128), num_kp=num_kp)


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm non-trivial running statistics so a wrong BN wiring changes outputs; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                assert sub.running_mean is not None and sub.running_var is not None
                sub.running_mean.copy_(torch.randn(sub.running_mean.shape, generator=generator) * 0.1)
                sub.running_var.copy_(torch.rand(sub.running_var.shape, generator=generator) + 0.5)
                sub.weight.copy_(torch.rand(sub.weight.shape, generator=generator) + 0.5)
                sub.bias.copy_(torch.randn(sub.bias.shape, generator=generator) * 0.1)
    return module.eval()


def image_batch(batch: int, size: int = TINY_IMAGE, seed: int = 0) -> Tensor:
    """Smooth-ish random RGB images in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, size // 8, size // 8, generator=generator)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
