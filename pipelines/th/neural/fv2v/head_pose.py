"""face-vid2vid's HEEstimator (head pose + expression) and the keypoint maths around it.

Quirks kept on purpose, because the public weights were trained with them:
- the heads are cross-wired: `yaw` comes from `fc_roll` and `roll` from `fc_yaw`;
- an angle is decoded as sum(softmax(66 logits) * [0..65]) * 3 - 99 degrees, and converted to radians with 3.14;
- the rotation convention differs between the checkpoints: "new" (Vox-256-New, demo.py) is
  R = Rx(pitch) Ry(yaw) Rz(roll); "beta" (Vox-256-Beta, the commented-out function in demo.py) is
  R = Rx(roll) Ry(pitch) Rz(yaw). The wrong one silently gives wrong poses;
- keypoints: kp = R kp_canonical + t + exp.view(B, K, 3).
SadTalker's variant (its MappingNet gives `he`) keeps only the vertical translation: `vertical_translation_only`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.th.neural.fv2v.blocks import ResBottleneck

RotationConvention = Literal["new", "beta"]
PI_AS_IN_ORIGINAL = 3.14  # not math.pi: the original converts degrees with 3.14


@dataclass(frozen=True)
class HEEstimatorConfig:
    """`he_estimator_params` + `common_params`. The original hard-codes widths 256/512/1024/2048 and 3/3/5/2 blocks;
    they are parameters here only so a tiny test model has the same key layout."""

    block_expansion: int = 64
    image_channel: int = 3
    widths: tuple[int, int, int, int] = (256, 512, 1024, 2048)
    blocks: tuple[int, int, int, int] = (3, 3, 5, 2)
    num_bins: int = 66
    num_kp: int = 15


@dataclass(frozen=True)
class HeadPose:
    """The estimator's raw output. yaw/pitch/roll are bin logits (B, num_bins), already in the original's
    (swapped) meaning; t (B, 3); exp (B, 3K)."""

    yaw: Tensor
    pitch: Tensor
    roll: Tensor
    t: Tensor
    exp: Tensor

    def degrees(self) -> tuple[Tensor, Tensor, Tensor]:
        """(yaw, pitch, roll) in degrees, each (B,)."""
        return (
            headpose_logits_to_degrees(self.yaw),
            headpose_logits_to_degrees(self.pitch),
            headpose_logits_to_degrees(self.roll),
        )

    def index(self, item: slice | int) -> HeadPose:
        """A batch slice (ints keep the batch dimension)."""
        sl = slice(item, item + 1) if isinstance(item, int) else item
        return replace(self, yaw=self.yaw[sl], pitch=self.pitch[sl], roll=self.roll[sl], t=self.t[sl], exp=self.exp[sl])


class HEEstimator(nn.Module):
    """Image (B, 3, H, W) in [0, 1] -> HeadPose. Keys: conv1..5, norm1..5, block1..7, fc_roll/pitch/yaw/t/exp."""

    def __init__(self, config: HEEstimatorConfig | None = None) -> None:
        super().__init__()
        cfg = config or HEEstimatorConfig()
        self.config = cfg
        self.conv1 = nn.Conv2d(cfg.image_channel, cfg.block_expansion, kernel_size=7, padding=3, stride=2)
        self.norm1 = nn.BatchNorm2d(cfg.block_expansion, affine=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        previous = cfg.block_expansion
        for stage, (width, count) in enumerate(zip(cfg.widths, cfg.blocks, strict=True)):
            self.add_module(f"conv{stage + 2}", nn.Conv2d(previous, width, kernel_size=1))
            self.add_module(f"norm{stage + 2}", nn.BatchNorm2d(width, affine=True))
            repeated = 2 * stage + 1
            if stage > 0:
                self.add_module(f"block{2 * stage}", ResBottleneck(width, stride=2))
            sequence = nn.Sequential()
            for j in range(count):
                sequence.add_module(f"b{repeated}_{j}", ResBottleneck(width, stride=1))
            self.add_module(f"block{repeated}", sequence)
            previous = width
        self.fc_roll = nn.Linear(previous, cfg.num_bins)
        self.fc_pitch = nn.Linear(previous, cfg.num_bins)
        self.fc_yaw = nn.Linear(previous, cfg.num_bins)
        self.fc_t = nn.Linear(previous, 3)
        self.fc_exp = nn.Linear(previous, 3 * cfg.num_kp)

    def features(self, image: Tensor) -> Tensor:
        """The pooled (B, 2048) descriptor the heads read."""
        out = image.to(self.conv1.weight.dtype)
        out = self.maxpool(F.relu(self.norm1(self.conv1(out))))
        for stage in range(len(self.config.widths)):
            out = F.relu(getattr(self, f"norm{stage + 2}")(getattr(self, f"conv{stage + 2}")(out)))
            if stage > 0:
                out = getattr(self, f"block{2 * stage}")(out)
            out = getattr(self, f"block{2 * stage + 1}")(out)
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, image: Tensor) -> HeadPose:
        out = self.features(image)
        # Swapped on purpose (see the module docstring): the weights were trained with this wiring.
        return HeadPose(
            yaw=self.fc_roll(out),
            pitch=self.fc_pitch(out),
            roll=self.fc_yaw(out),
            t=self.fc_t(out),
            exp=self.fc_exp(out),
        )


def headpose_logits_to_degrees(logits: Tensor) -> Tensor:
    """(B, num_bins) logits -> (B,) degrees: sum(softmax * bin index) * 3 - 99 (66 bins span about -99..96).

    Computed in at least float32 (fp16 logits from a CUDA model would otherwise round the angle to ~0.1 degree).
    """
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    idx = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return torch.sum(F.softmax(logits, dim=1) * idx, dim=1) * 3 - 99


def degrees_to_radians(degrees: Tensor) -> Tensor:
    """deg / 180 * 3.14, exactly as the original (not pi)."""
    return degrees / 180 * PI_AS_IN_ORIGINAL


def _rx(a: Tensor) -> Tensor:
    one, zero, c, s = torch.ones_like(a), torch.zeros_like(a), torch.cos(a), torch.sin(a)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], dim=1).view(-1, 3, 3)


def _ry(a: Tensor) -> Tensor:
    one, zero, c, s = torch.ones_like(a), torch.zeros_like(a), torch.cos(a), torch.sin(a)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], dim=1).view(-1, 3, 3)


def _rz(a: Tensor) -> Tensor:
    one, zero, c, s = torch.ones_like(a), torch.zeros_like(a), torch.cos(a), torch.sin(a)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=1).view(-1, 3, 3)


def rotation_matrix_new(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """Vox-256-New: R = Rx(pitch) Ry(yaw) Rz(roll); angles (B,) in degrees -> (B, 3, 3).

    Rx(a) = [[1,0,0],[0,c,-s],[0,s,c]], Ry(a) = [[c,0,s],[0,1,0],[-s,0,c]], Rz(a) = [[c,-s,0],[s,c,0],[0,0,1]].
    """
    y, p, r = (degrees_to_radians(a) for a in (yaw, pitch, roll))
    return torch.einsum("bij,bjk,bkm->bim", _rx(p), _ry(y), _rz(r))


def rotation_matrix_beta(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """Vox-256-Beta: roll about x, pitch about y, yaw about z, R = Rx(roll) Ry(pitch) Rz(yaw)."""
    y, p, r = (degrees_to_radians(a) for a in (yaw, pitch, roll))
    return torch.einsum("bij,bjk,bkm->bim", _rx(r), _ry(p), _rz(y))


def rotation_matrix(yaw: Tensor, pitch: Tensor, roll: Tensor, convention: RotationConvention) -> Tensor:
    if convention == "new":
        return rotation_matrix_new(yaw, pitch, roll)
    if convention == "beta":
        return rotation_matrix_beta(yaw, pitch, roll)
    raise ValueError(f"rotation convention must be 'new' or 'beta', got {convention!r}")


def keypoint_transformation(
    kp_canonical: Tensor,
    rotation: Tensor,
    t: Tensor,
    exp: Tensor,
    vertical_translation_only: bool = False,
) -> Tensor:
    """kp = R kp_canonical + t + exp: kp_canonical (B, K, 3), rotation (B, 3, 3), t (B, 3), exp (B, 3K) -> (B, K, 3).

    `vertical_translation_only` zeroes t_x and t_z as SadTalker does.
    """
    dtype = kp_canonical.dtype
    rotated = torch.einsum("bmp,bkp->bkm", rotation.to(dtype), kp_canonical)
    t = t.to(dtype)
    if vertical_translation_only:
        t = t * torch.tensor([0.0, 1.0, 0.0], dtype=dtype, device=t.device)
    return rotated + t.unsqueeze(1) + exp.to(dtype).view(exp.shape[0], -1, 3)


def transform_keypoints(
    kp_canonical: Tensor,
    head: HeadPose,
    convention: RotationConvention,
    yaw: float | Tensor | None = None,
    pitch: float | Tensor | None = None,
    roll: float | Tensor | None = None,
    vertical_translation_only: bool = False,
) -> Tensor:
    """The original `keypoint_transformation(kp_canonical, he)`; yaw/pitch/roll in degrees override the decoded
    angles (free view). A canonical batch of 1 is broadcast to the head-pose batch."""
    batch = head.t.shape[0]
    if kp_canonical.shape[0] != batch:
        kp_canonical = kp_canonical.expand(batch, *kp_canonical.shape[1:])
    decoded = head.degrees()
    angles = []
    for override, value in zip((yaw, pitch, roll), decoded, strict=True):
        if override is None:
            angles.append(value)
        else:
            angles.append(torch.as_tensor(override, dtype=value.dtype, device=value.device).expand(batch))
    rot = rotation_matrix(angles[0], angles[1], angles[2], convention)
    return keypoint_transformation(kp_canonical, rot, head.t, head.exp, vertical_translation_only)


def convex_hull_volume(points: Tensor) -> float:
    """Volume of the convex hull of (K, 3) points (scipy's Qhull, as the original)."""
    from scipy.spatial import ConvexHull

    return float(ConvexHull(points.detach().to(torch.float64).cpu().numpy()).volume)


def relative_keypoints(
    kp_source: Tensor, kp_driving: Tensor, kp_driving_initial: Tensor, adapt_scale: bool = True
) -> Tensor:
    """Relative motion (demo.py --relative [--adapt_scale]): kp_source + (kp_driving - kp_driving_initial) * scale,
    scale = sqrt(hull_volume(kp_source[0]) / hull_volume(kp_driving_initial[0])) (1 without adapt_scale).

    Like the original, the scale comes from the first item of the source and initial batches.
    """
    scale = 1.0
    if adapt_scale:
        scale = float(np.sqrt(convex_hull_volume(kp_source[0])) / np.sqrt(convex_hull_volume(kp_driving_initial[0])))
    return (kp_driving - kp_driving_initial) * scale + kp_source
