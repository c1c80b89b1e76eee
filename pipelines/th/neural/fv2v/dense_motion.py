"""face-vid2vid's DenseMotionNetwork: from two keypoint sets to a 3-D deformation field and an occlusion map.

How it works (zlh `modules/dense_motion.py`): the appearance feature is compressed (1x1x1 conv + BN + ReLU), warped
by K+1 "sparse motions" (the identity, then for each keypoint k the translation grid - kp_driving[k] +
kp_source[k]), concatenated with Gaussian heatmap differences of the keypoints, and fed to a 3-D hourglass whose
output gives a softmax mask over the K+1 motions (their weighted sum is the deformation) and, flattened over depth,
the occlusion map. The pieces are module-level functions so BFv2v's variant (other keypoints, extra inputs) can reuse
them. Keypoints are (B, K, 3) tensors in (x, y, z) grid_sample order; no jacobians (estimate_jacobian is False
in every public config).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.th.neural.fv2v.blocks import ALIGN_CORNERS, Hourglass3d, kp2gaussian, make_coordinate_grid

KP_VARIANCE = 0.01  # hard-coded in the original


@dataclass(frozen=True)
class DenseMotionConfig:
    """`dense_motion_params` of vox-256.yaml plus the values the generator passes in (num_kp, feature_channel)."""

    block_expansion: int = 32
    num_blocks: int = 5
    max_features: int = 1024
    num_kp: int = 15
    feature_channel: int = 32
    reshape_depth: int = 16
    compress: int = 4
    estimate_occlusion_map: bool = True

    @property
    def hourglass_in_features(self) -> int:
        return (self.num_kp + 1) * (self.compress + 1)


@dataclass(frozen=True)
class DenseMotion:
    """mask (B, K+1, d, h, w) softmax weights; deformation (B, d, h, w, 3); occlusion_map (B, 1, h, w) or None."""

    mask: Tensor
    deformation: Tensor
    occlusion_map: Tensor | None


def create_sparse_motions(spatial_size: tuple[int, int, int], kp_driving: Tensor, kp_source: Tensor) -> Tensor:
    """(B, K+1, d, h, w, 3): the identity grid, then grid - kp_driving[k] + kp_source[k] for each keypoint.

    With kp_driving == kp_source every motion is the identity grid (the identity-motion check in the tests).
    """
    bs, num_kp, _ = kp_driving.shape
    d, h, w = spatial_size
    identity = make_coordinate_grid(spatial_size, kp_source.dtype, kp_source.device).view(1, 1, d, h, w, 3)
    shift = (kp_source - kp_driving).view(bs, num_kp, 1, 1, 1, 3)
    driving_to_source = identity + shift
    return torch.cat([identity.expand(bs, 1, d, h, w, 3), driving_to_source], dim=1)


def create_deformed_feature(feature: Tensor, sparse_motions: Tensor) -> Tensor:
    """Warp `feature` (B, C, d, h, w) by each of the K+1 motions: (B, K+1, C, d, h, w)."""
    bs, c, d, h, w = feature.shape
    n = sparse_motions.shape[1]
    repeated = feature.unsqueeze(1).expand(bs, n, c, d, h, w).reshape(bs * n, c, d, h, w)
    grids = sparse_motions.reshape(bs * n, d, h, w, 3)
    deformed = F.grid_sample(repeated, grids, mode="bilinear", padding_mode="zeros", align_corners=ALIGN_CORNERS)
    return deformed.view(bs, n, c, d, h, w)


def create_heatmap_representations(spatial_size: tuple[int, int, int], kp_driving: Tensor, kp_source: Tensor) -> Tensor:
    """Gaussian(kp_driving) - Gaussian(kp_source) per keypoint after an all-zero background: (B, K+1, 1, d, h, w)."""
    heatmap = kp2gaussian(kp_driving, spatial_size, KP_VARIANCE) - kp2gaussian(kp_source, spatial_size, KP_VARIANCE)
    zeros = torch.zeros(heatmap.shape[0], 1, *spatial_size, dtype=heatmap.dtype, device=heatmap.device)
    return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)


def combine_motions(mask: Tensor, sparse_motions: Tensor) -> Tensor:
    """Mask-weighted sum of the motions: mask (B, K+1, d, h, w), motions (B, K+1, d, h, w, 3) -> (B, d, h, w, 3)."""
    return (sparse_motions * mask.unsqueeze(-1)).sum(dim=1)


class DenseMotionNetwork(nn.Module):
    """Keys: hourglass.*, mask.*, compress.*, norm.*, occlusion.* (the latter iff estimate_occlusion_map)."""

    def __init__(self, config: DenseMotionConfig) -> None:
        super().__init__()
        self.config = config
        self.hourglass = Hourglass3d(
            block_expansion=config.block_expansion,
            in_features=config.hourglass_in_features,
            num_blocks=config.num_blocks,
            max_features=config.max_features,
        )
        self.mask = nn.Conv3d(self.hourglass.out_filters, config.num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(config.feature_channel, config.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(config.compress, affine=True)
        self.occlusion: nn.Conv2d | None = None
        if config.estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters * config.reshape_depth, 1, kernel_size=7, padding=3)

    def forward(self, feature: Tensor, kp_driving: Tensor, kp_source: Tensor) -> DenseMotion:
        bs, _, d, h, w = feature.shape
        size = (d, h, w)
        kp_driving = kp_driving.to(feature.dtype)
        kp_source = kp_source.to(feature.dtype)
        compressed = F.relu(self.norm(self.compress(feature)))
        sparse = create_sparse_motions(size, kp_driving, kp_source)
        deformed = create_deformed_feature(compressed, sparse)
        heatmap = create_heatmap_representations(size, kp_driving, kp_source)
        hourglass_input = torch.cat([heatmap, deformed], dim=2).view(bs, -1, d, h, w)
        prediction: Tensor = self.hourglass(hourglass_input)
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = combine_motions(mask, sparse)
        occlusion_map = None
        if self.occlusion is not None:
            occlusion_map = torch.sigmoid(self.occlusion(prediction.reshape(bs, -1, h, w)))
        return DenseMotion(mask=mask, deformation=deformation, occlusion_map=occlusion_map)
