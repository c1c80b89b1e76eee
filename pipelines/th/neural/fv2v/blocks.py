"""Building blocks shared by face-vid2vid (zlh "New"/"Beta"), its KPDetector/HEEstimator and BFv2v.

Every block keeps the attribute names of the public checkpoints (`conv`, `norm`, `conv1`, `norm2`, `weight_orig`...)
so that a module built from them has exactly the published state_dict keys. Interpolation and sampling pass
`align_corners=False` explicitly: that is what the original code's defaults meant (it called them without the
argument) and passing it keeps torch from warning.

SyncBatchNorm in the original is a `_BatchNorm` subclass, so plain `nn.BatchNorm2d/3d` read its keys
(weight, bias, running_mean, running_var, num_batches_tracked). The defaults (eps 1e-5, momentum 0.1) match.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "AntiAliasDownsample",
    "DownBlock2d",
    "DownBlock3d",
    "Hourglass3d",
    "HourglassDecoder3d",
    "HourglassEncoder3d",
    "KPHourglass",
    "ResBlock2d",
    "ResBlock3d",
    "ResBottleneck",
    "SPADE",
    "SPADEResnetBlock",
    "SameBlock2d",
    "SpectralNormConv2d",
    "UpBlock2d",
    "UpBlock3d",
    "kp2gaussian",
    "make_coordinate_grid",
    "make_coordinate_grid_2d",
]

ALIGN_CORNERS = False  # the implicit default of the original calls (torch >= 1.3)


def make_coordinate_grid(spatial_size: tuple[int, int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
    """A (d, h, w, 3) grid of (x, y, z) in [-1, 1]: the coordinates `grid_sample` uses for a 5-D input.

    The corner samples are exactly -1 and 1 (linspace over the pixel centres), as in the original.
    """
    d, h, w = spatial_size
    x = 2 * (torch.arange(w, dtype=dtype, device=device) / (w - 1)) - 1
    y = 2 * (torch.arange(h, dtype=dtype, device=device) / (h - 1)) - 1
    z = 2 * (torch.arange(d, dtype=dtype, device=device) / (d - 1)) - 1
    xx = x.view(1, 1, w).expand(d, h, w)
    yy = y.view(1, h, 1).expand(d, h, w)
    zz = z.view(d, 1, 1).expand(d, h, w)
    return torch.stack([xx, yy, zz], dim=3)


def make_coordinate_grid_2d(spatial_size: tuple[int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
    """A (h, w, 2) grid of (x, y) in [-1, 1]."""
    h, w = spatial_size
    x = 2 * (torch.arange(w, dtype=dtype, device=device) / (w - 1)) - 1
    y = 2 * (torch.arange(h, dtype=dtype, device=device) / (h - 1)) - 1
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=2)


def kp2gaussian(kp: Tensor, spatial_size: tuple[int, int, int], kp_variance: float) -> Tensor:
    """Gaussian blobs exp(-0.5 |grid - kp|^2 / variance) for keypoints (..., 3): shape (..., d, h, w)."""
    grid = make_coordinate_grid(spatial_size, kp.dtype, kp.device)
    lead = kp.shape[:-1]
    mean = kp.reshape(*lead, 1, 1, 1, 3)
    grid = grid.view(*((1,) * len(lead)), *grid.shape)
    return torch.exp(-0.5 * ((grid - mean) ** 2).sum(-1) / kp_variance)


class SameBlock2d(nn.Module):
    """conv -> BN -> ReLU (or LeakyReLU(0.01)), same resolution. Keys: conv.*, norm.*."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.ac: nn.Module = nn.LeakyReLU() if lrelu else nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.ac(self.norm(self.conv(x)))
        return out


class DownBlock2d(nn.Module):
    """conv3x3 -> BN -> ReLU -> AvgPool 2x2. Keys: conv.*, norm.*."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.pool(F.relu(self.norm(self.conv(x))))
        return out


class DownBlock3d(nn.Module):
    """conv3x3x3 -> BN3d -> ReLU -> AvgPool3d((1, 2, 2)): halves h and w, keeps depth (model-facts 4.3, as MDTH's
    and zlh's current `util.py`). Keys: conv.*, norm.*."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm3d(out_features, affine=True)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.pool(F.relu(self.norm(self.conv(x))))
        return out


class UpBlock2d(nn.Module):
    """nearest x2 -> conv -> BN -> ReLU. Keys: conv.*, norm.*."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class UpBlock3d(nn.Module):
    """nearest x2 in h and w only -> conv3x3x3 -> BN3d -> ReLU (model-facts 4.3). Keys: conv.*, norm.*."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(bn2(conv1(relu(bn1(x)))))). Keys: conv1/2, norm1/2."""

    def __init__(self, in_features: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=pad)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class ResBlock3d(nn.Module):
    """The 3-D version of `ResBlock2d`. Keys: conv1/2, norm1/2."""

    def __init__(self, in_features: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv3d(in_features, in_features, kernel_size=kernel_size, padding=pad)
        self.conv2 = nn.Conv3d(in_features, in_features, kernel_size=kernel_size, padding=pad)
        self.norm1 = nn.BatchNorm3d(in_features, affine=True)
        self.norm2 = nn.BatchNorm3d(in_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class ResBottleneck(nn.Module):
    """ResNet bottleneck (1x1 C/4 -> 3x3 C/4 stride s -> 1x1 C), post-activation; a 1x1 `skip` + `norm4` when s != 1."""

    def __init__(self, in_features: int, stride: int) -> None:
        super().__init__()
        mid = in_features // 4
        self.conv1 = nn.Conv2d(in_features, mid, kernel_size=1)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(mid, in_features, kernel_size=1)
        self.norm1 = nn.BatchNorm2d(mid, affine=True)
        self.norm2 = nn.BatchNorm2d(mid, affine=True)
        self.norm3 = nn.BatchNorm2d(in_features, affine=True)
        self.stride = stride
        self.skip: nn.Conv2d | None = None
        self.norm4: nn.BatchNorm2d | None = None
        if stride != 1:
            self.skip = nn.Conv2d(in_features, in_features, kernel_size=1, stride=stride)
            self.norm4 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        if self.skip is not None and self.norm4 is not None:
            x = self.norm4(self.skip(x))
        return F.relu(out + x)


def _hourglass_width(block_expansion: int, max_features: int, level: int) -> int:
    return int(min(max_features, block_expansion * (2**level)))


class HourglassEncoder3d(nn.Module):
    """`down_blocks.{i}` DownBlock3d; returns [input, level1, ..., levelN] for the decoder's skips."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            cin = in_features if i == 0 else _hourglass_width(block_expansion, max_features, i)
            blocks.append(DownBlock3d(cin, _hourglass_width(block_expansion, max_features, i + 1)))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder3d(nn.Module):
    """`up_blocks.{i}` UpBlock3d with skip concatenation, then `conv` + `norm` over (block_expansion + in_features)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            factor = 1 if i == num_blocks - 1 else 2
            cin = factor * _hourglass_width(block_expansion, max_features, i + 1)
            blocks.append(UpBlock3d(cin, _hourglass_width(block_expansion, max_features, i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, skips: list[Tensor]) -> Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass3d(nn.Module):
    """U-Net over (c, d, h, w) that halves only h and w. Keys: encoder.down_blocks.*, decoder.{up_blocks,conv,norm}."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = HourglassEncoder3d(block_expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder3d(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.decoder(self.encoder(x))
        return out


class KPHourglass(nn.Module):
    """2-D encoder -> 1x1 conv -> reshape to 3-D -> 3-D upsampling (the KPDetector's predictor).

    Keys: down_blocks.down{i}.*, conv.*, up_blocks.up{i}.*.
    """

    def __init__(
        self,
        block_expansion: int,
        in_features: int,
        reshape_features: int,
        reshape_depth: int,
        num_blocks: int,
        max_features: int,
    ) -> None:
        super().__init__()
        self.down_blocks = nn.Sequential()
        for i in range(num_blocks):
            cin = in_features if i == 0 else _hourglass_width(block_expansion, max_features, i)
            self.down_blocks.add_module(
                f"down{i}", DownBlock2d(cin, _hourglass_width(block_expansion, max_features, i + 1))
            )
        self.conv = nn.Conv2d(
            _hourglass_width(block_expansion, max_features, num_blocks), reshape_features, kernel_size=1
        )
        self.up_blocks = nn.Sequential()
        out_filters = in_features
        for i in range(num_blocks):
            cin = _hourglass_width(block_expansion, max_features, num_blocks - i)
            out_filters = _hourglass_width(block_expansion, max_features, num_blocks - i - 1)
            self.up_blocks.add_module(f"up{i}", UpBlock3d(cin, out_filters))
        self.reshape_depth = reshape_depth
        self.out_filters = out_filters

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(self.down_blocks(x))
        bs, c, h, w = out.shape
        out = out.view(bs, c // self.reshape_depth, self.reshape_depth, h, w)
        result: Tensor = self.up_blocks(out)
        return result


def anti_alias_kernel(channels: int, scale: float) -> Tensor:
    """The depthwise Gaussian (channels, 1, k, k) of `AntiAliasDownsample`.

    sigma = (1/scale - 1)/2 and k = 2*round(4 sigma) + 1, as in the original (13x13, sigma 1.5 for scale 0.25).
    """
    sigma = (1.0 / scale - 1.0) / 2.0
    size = 2 * round(sigma * 4) + 1
    coords = torch.arange(size, dtype=torch.float32)
    mean = (size - 1) / 2
    g = torch.exp(-((coords - mean) ** 2) / (2 * sigma**2))
    kernel = g.view(-1, 1) * g.view(1, -1)
    kernel = kernel / kernel.sum()
    return kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1)


def scale_from_kernel_size(kernel_size: int) -> float:
    """Invert `anti_alias_kernel`'s size rule for the integer down-factors the original supports (13 -> 0.25)."""
    inverse = round((kernel_size - 1) / 4 + 1)
    if inverse < 2 or 2 * round((inverse - 1) / 2 * 4) + 1 != kernel_size:
        raise ValueError(f"an anti-alias kernel of size {kernel_size} matches no integer down-scale factor")
    return 1.0 / inverse


class AntiAliasDownsample(nn.Module):
    """Gaussian blur then keep every (1/scale)-th pixel. Buffer `weight` (C, 1, k, k) is saved in checkpoints.

    Only built when scale != 1 (so `kp_detector.down.weight` exists iff scale_factor != 1).
    """

    weight: Tensor

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        if not 0.0 < scale < 1.0:
            raise ValueError(f"anti-alias downsampling needs 0 < scale < 1, got {scale}")
        kernel = anti_alias_kernel(channels, scale)
        self.register_buffer("weight", kernel)
        size = kernel.shape[-1]
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        self.groups = channels
        self.scale = scale
        self.step = int(1.0 / scale)

    def forward(self, x: Tensor) -> Tensor:
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight.to(out.dtype), groups=self.groups)
        return out[:, :, :: self.step, :: self.step]


class SpectralNormConv2d(nn.Module):
    """A Conv2d stored the way `torch.nn.utils.spectral_norm` (old API) saves it: `weight_orig`, `weight_u`,
    `weight_v` (+ `bias`), evaluated as in eval mode: W = weight_orig / (u . (W_mat v)), no power iteration.

    Inference-only: the stored u and v are the ones the training's last power iteration left, which is exactly what
    the original uses at eval time. Written out (rather than the deprecated torch helper) so the keys, the maths and
    the absence of warnings do not depend on the torch version.
    """

    weight_u: Tensor
    weight_v: Tensor

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = True
    ) -> None:
        super().__init__()
        self.padding = padding
        # bias before weight_orig: the order torch's spectral_norm leaves in the saved state_dict
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight_orig, a=math.sqrt(5))
        # Random weights get u, v from a few power iterations so that sigma is the top singular value (as after
        # training) rather than a random, possibly tiny, number; a checkpoint overwrites all three anyway.
        mat = self.weight_orig.detach().reshape(out_channels, -1)
        u = torch.randn(out_channels)
        v = torch.randn(mat.shape[1])
        if not mat.is_meta:  # on the meta device (shapes only, loading) there is nothing to iterate
            u = F.normalize(u, dim=0, eps=1e-12)
            for _ in range(10):
                v = F.normalize(torch.mv(mat.t(), u), dim=0, eps=1e-12)
                u = F.normalize(torch.mv(mat, v), dim=0, eps=1e-12)
        self.register_buffer("weight_u", u)
        self.register_buffer("weight_v", v)

    def normalized_weight(self) -> Tensor:
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Spatially-adaptive norm: instance-norm (no affine) x (1 + gamma(seg)) + beta(seg), seg resized (nearest).

    Keys: mlp_shared.0.*, mlp_gamma.*, mlp_beta.*.
    """

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        seg = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(seg)
        out: Tensor = normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)
        return out


class SPADEResnetBlock(nn.Module):
    """SPADE residual block with spectral-norm convs: conv_0 (fin -> min(fin, fout)), conv_1 (-> fout), and a learned
    1x1 shortcut conv_s (no bias) with norm_s when fin != fout. Activations are LeakyReLU(0.2)."""

    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int = 128) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = SpectralNormConv2d(fin, fmiddle, kernel_size=3, padding=1)
        self.conv_1 = SpectralNormConv2d(fmiddle, fout, kernel_size=3, padding=1)
        self.conv_s: SpectralNormConv2d | None = None
        self.norm_s: SPADE | None = None
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(fin, fout, kernel_size=1, bias=False)
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, hidden)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        if self.conv_s is not None and self.norm_s is not None:
            x_s: Tensor = self.conv_s(self.norm_s(x, seg))
        else:
            x_s = x
        dx: Tensor = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx
