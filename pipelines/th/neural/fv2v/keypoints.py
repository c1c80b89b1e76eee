"""face-vid2vid's KPDetector: an image -> K canonical 3-D keypoints in [-1, 1]^3.

Anti-alias downsample (New: scale 0.25 -> 64x64; Beta: scale 1, none), a 2-D encoder, a 1x1 conv reshaped into a
3-D volume, 3-D upsampling, a 3x3x3 conv to K heatmaps, softmax over the volume with temperature 0.1, and the
expected (x, y, z) grid coordinate under each heatmap. Keys: predictor.*, kp.*, and down.weight iff scale != 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.th.neural.fv2v.blocks import AntiAliasDownsample, KPHourglass, make_coordinate_grid


@dataclass(frozen=True)
class KPDetectorConfig:
    """`kp_detector_params` + `common_params` of vox-256.yaml (Beta: scale_factor 1). temperature is not in the
    weights; 0.1 in every public config."""

    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_channel: int = 16384
    reshape_depth: int = 16
    num_kp: int = 15
    image_channel: int = 3
    temperature: float = 0.1
    scale_factor: float = 0.25


class KPDetector(nn.Module):
    """forward(image (B, 3, H, W) in [0, 1]) -> canonical keypoints (B, K, 3) in (x, y, z) grid_sample order."""

    def __init__(self, config: KPDetectorConfig | None = None) -> None:
        super().__init__()
        cfg = config or KPDetectorConfig()
        self.config = cfg
        self.predictor = KPHourglass(
            block_expansion=cfg.block_expansion,
            in_features=cfg.image_channel,
            reshape_features=cfg.reshape_channel,
            reshape_depth=cfg.reshape_depth,
            num_blocks=cfg.num_blocks,
            max_features=cfg.max_features,
        )
        self.kp = nn.Conv3d(self.predictor.out_filters, cfg.num_kp, kernel_size=3, padding=1)
        self.down: AntiAliasDownsample | None = None
        if cfg.scale_factor != 1:
            self.down = AntiAliasDownsample(cfg.image_channel, cfg.scale_factor)

    def heatmaps(self, image: Tensor) -> Tensor:
        """Softmax heatmaps (B, K, d, h, w) that each sum to 1."""
        x = image.to(self.kp.weight.dtype)
        if self.down is not None:
            x = self.down(x)
        prediction: Tensor = self.kp(self.predictor(x))
        shape = prediction.shape
        flat = F.softmax(prediction.reshape(shape[0], shape[1], -1) / self.config.temperature, dim=2)
        return flat.view(shape)

    def forward(self, image: Tensor) -> Tensor:
        heatmap = self.heatmaps(image)
        d, h, w = heatmap.shape[2:]
        grid = make_coordinate_grid((d, h, w), heatmap.dtype, heatmap.device)
        return (heatmap.unsqueeze(-1) * grid.view(1, 1, *grid.shape)).sum(dim=(2, 3, 4))
