"""face-vid2vid generators: "New" (OcclusionAwareSPADEGenerator) and "Beta" (OcclusionAwareGenerator, "original").

Both are: appearance encoder -> 3-D feature; DenseMotionNetwork -> deformation + occlusion; grid_sample the feature;
flatten depth; `third` + `fourth` 2-D convs; multiply by the occlusion map; decode to an RGB image in [0, 1]
(SPADE decoder for New; 2-D res-blocks + up-blocks + 7x7 conv for Beta).

The checkpoints keep these parts' keys FLAT at the generator's top level (`first.*`, `down_blocks.*`, `second.*`,
`resblocks_3d.*`, `third.*`, `fourth.*`, and for Beta `resblocks_2d.*`, `up_blocks.*`, `final.*`) while the SPADE
decoder is nested (`decoder.*`). So `AppearanceEncoder`, `PostWarp` and `OriginalDecoder` are ordinary modules with
exactly those child names, and a generator *adopts* their children (`adopt_children`): it registers the same child
modules under the same names on itself and keeps the part (unregistered) to call its forward. One set of
parameters, the real flat keys, and parts that BFv2v can reuse the same way.

The source side is split from the per-frame side: `encode_source(image)` runs once per twin, and
`warp_and_decode(feature, kp_source, kp_driving)` runs per frame (the original re-encoded the source every frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.th.neural.fv2v.blocks import (
    ALIGN_CORNERS,
    DownBlock2d,
    ResBlock2d,
    ResBlock3d,
    SameBlock2d,
    SPADEResnetBlock,
    UpBlock2d,
)
from pipelines.th.neural.fv2v.dense_motion import DenseMotion, DenseMotionConfig, DenseMotionNetwork

Variant = Literal["new", "beta"]
FIRST_KERNEL: dict[str, int] = {"new": 3, "beta": 7}


@dataclass(frozen=True)
class SPADEDecoderConfig:
    """SPADEDecoder dims: in_channels 256 (ic), 2*ic inside, out_channels 64 (oc), SPADE hidden 128, 6 middle blocks.

    The original hard-codes these; they are parameters here only so tests can build a tiny decoder with the same keys.
    label_nc (the segmap channels) is always in_channels: the segmap is the decoder's input feature itself.
    """

    in_channels: int = 256
    out_channels: int = 64
    hidden: int = 128
    num_middle_blocks: int = 6
    image_channel: int = 3


@dataclass(frozen=True)
class GeneratorConfig:
    """`generator_params` + `common_params` of vox-256.yaml; `variant` picks the decoder and the first conv kernel."""

    variant: Variant = "new"
    image_channel: int = 3
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)
    spade: SPADEDecoderConfig = field(default_factory=SPADEDecoderConfig)

    def __post_init__(self) -> None:
        if self.variant not in FIRST_KERNEL:
            raise ValueError(f"variant must be 'new' or 'beta', got {self.variant!r}")
        if self.reshape_channel * self.reshape_depth != self.max_features:
            raise ValueError(
                f"reshape_channel*reshape_depth ({self.reshape_channel}*{self.reshape_depth}) must equal "
                f"max_features ({self.max_features})"
            )
        if self.dense_motion.feature_channel != self.reshape_channel:
            raise ValueError("dense_motion.feature_channel must equal reshape_channel")
        if self.variant == "new" and self.spade.in_channels != self.feature_2d_channels:
            raise ValueError(
                f"the SPADE decoder's in_channels ({self.spade.in_channels}) must equal "
                f"block_expansion*2**num_down_blocks ({self.feature_2d_channels})"
            )

    @property
    def first_kernel(self) -> int:
        return FIRST_KERNEL[self.variant]

    @property
    def feature_2d_channels(self) -> int:
        """Channels after `third`/`fourth` (256 at full size): the decoder's input."""
        return int(self.block_expansion * (2**self.num_down_blocks))


def adopt_children(owner: nn.Module, part: nn.Module) -> None:
    """Register `part`'s children on `owner` under the same names (so their keys are flat on `owner`)."""
    for name, child in part.named_children():
        if name in owner._modules:
            raise ValueError(f"{type(owner).__name__} already has a child named {name!r}")
        owner.add_module(name, child)


class AppearanceEncoder(nn.Module):
    """Source image (B, 3, H, W) in [0, 1] -> 3-D appearance feature (B, reshape_channel, reshape_depth, H/4, W/4).

    Keys: first.*, down_blocks.{i}.*, second.*, resblocks_3d.3dr{i}.*.
    """

    def __init__(
        self,
        image_channel: int = 3,
        block_expansion: int = 64,
        max_features: int = 512,
        num_down_blocks: int = 2,
        reshape_channel: int = 32,
        reshape_depth: int = 16,
        num_resblocks: int = 6,
        first_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.first = SameBlock2d(image_channel, block_expansion, kernel_size=first_kernel)
        blocks = []
        out_features = block_expansion
        for i in range(num_down_blocks):
            in_features = min(max_features, block_expansion * (2**i))
            out_features = min(max_features, block_expansion * (2 ** (i + 1)))
            blocks.append(DownBlock2d(in_features, out_features))
        self.down_blocks = nn.ModuleList(blocks)
        self.second = nn.Conv2d(out_features, max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> AppearanceEncoder:
        return cls(
            image_channel=config.image_channel,
            block_expansion=config.block_expansion,
            max_features=config.max_features,
            num_down_blocks=config.num_down_blocks,
            reshape_channel=config.reshape_channel,
            reshape_depth=config.reshape_depth,
            num_resblocks=config.num_resblocks,
            first_kernel=config.first_kernel,
        )

    def forward(self, image: Tensor) -> Tensor:
        out: Tensor = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        bs, _, h, w = out.shape
        feature = out.view(bs, self.reshape_channel, self.reshape_depth, h, w)
        result: Tensor = self.resblocks_3d(feature)
        return result


def warp_feature(feature: Tensor, deformation: Tensor) -> Tensor:
    """grid_sample the 3-D feature by the deformation (resized trilinearly first if its size differs)."""
    _, d_old, h_old, w_old, _ = deformation.shape
    _, _, d, h, w = feature.shape
    if (d_old, h_old, w_old) != (d, h, w):
        deformation = deformation.permute(0, 4, 1, 2, 3)
        deformation = F.interpolate(deformation, size=(d, h, w), mode="trilinear", align_corners=ALIGN_CORNERS)
        deformation = deformation.permute(0, 2, 3, 4, 1)
    return F.grid_sample(feature, deformation, mode="bilinear", padding_mode="zeros", align_corners=ALIGN_CORNERS)


class PostWarp(nn.Module):
    """Warped 3-D feature -> 2-D feature: flatten depth, `third` (3x3 + BN + LeakyReLU), `fourth` (1x1), x occlusion.

    Keys: third.*, fourth.*.
    """

    def __init__(self, max_features: int = 512, out_features: int = 256) -> None:
        super().__init__()
        self.third = SameBlock2d(max_features, out_features, kernel_size=3, lrelu=True)
        self.fourth = nn.Conv2d(out_features, out_features, kernel_size=1)

    def forward(self, warped: Tensor, occlusion_map: Tensor | None) -> Tensor:
        bs, c, d, h, w = warped.shape
        out: Tensor = self.fourth(self.third(warped.reshape(bs, c * d, h, w)))
        if occlusion_map is not None:
            if occlusion_map.shape[2:] != out.shape[2:]:
                occlusion_map = F.interpolate(
                    occlusion_map, size=out.shape[2:], mode="bilinear", align_corners=ALIGN_CORNERS
                )
            out = out * occlusion_map
        return out


class SPADEDecoder(nn.Module):
    """2-D feature (B, 256, 64, 64) -> image (B, 3, 256, 256) in [0, 1]; the feature is also every block's segmap.

    fc (3x3, ic -> 2ic), G_middle_0..5 at 64^2, x2 nearest, up_0 (2ic -> ic) at 128^2, x2, up_1 (ic -> oc) at 256^2,
    conv_img(leaky_relu(x, 0.2)), sigmoid. Keys: fc.*, G_middle_{i}.*, up_0.*, up_1.*, conv_img.* (nested under
    `decoder.` in the generator).
    """

    def __init__(self, config: SPADEDecoderConfig | None = None) -> None:
        super().__init__()
        cfg = config or SPADEDecoderConfig()
        ic, oc = cfg.in_channels, cfg.out_channels
        self.num_middle_blocks = cfg.num_middle_blocks
        self.fc = nn.Conv2d(ic, 2 * ic, kernel_size=3, padding=1)
        for i in range(cfg.num_middle_blocks):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * ic, 2 * ic, ic, cfg.hidden))
        self.up_0 = SPADEResnetBlock(2 * ic, ic, ic, cfg.hidden)
        self.up_1 = SPADEResnetBlock(ic, oc, ic, cfg.hidden)
        self.conv_img = nn.Conv2d(oc, cfg.image_channel, kernel_size=3, padding=1)

    def forward(self, feature: Tensor) -> Tensor:
        seg = feature
        x: Tensor = self.fc(feature)
        for i in range(self.num_middle_blocks):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        x = self.up_1(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


class OriginalDecoder(nn.Module):
    """Beta's decoder: resblocks_2d.2dr{i} (ResBlock2d), up_blocks.{i} (UpBlock2d), final (7x7) -> sigmoid.

    Keys are flat on the generator (adopted), like the appearance encoder's.
    """

    def __init__(
        self, block_expansion: int = 64, num_down_blocks: int = 2, num_resblocks: int = 6, image_channel: int = 3
    ) -> None:
        super().__init__()
        width = block_expansion * (2**num_down_blocks)
        self.resblocks_2d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_2d.add_module(f"2dr{i}", ResBlock2d(width))
        blocks = []
        for i in range(num_down_blocks):
            cin = max(block_expansion, block_expansion * (2 ** (num_down_blocks - i)))
            cout = max(block_expansion, block_expansion * (2 ** (num_down_blocks - i - 1)))
            blocks.append(UpBlock2d(cin, cout))
        self.up_blocks = nn.ModuleList(blocks)
        self.final = nn.Conv2d(block_expansion, image_channel, kernel_size=7, padding=3)

    def forward(self, feature: Tensor) -> Tensor:
        out: Tensor = self.resblocks_2d(feature)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))


@dataclass(frozen=True)
class GeneratorOutput:
    """prediction (B, 3, H, W) in [0, 1]; mask (B, K+1, d, h, w); occlusion_map (B, 1, h, w) or None;
    deformation (B, d, h, w, 3)."""

    prediction: Tensor
    mask: Tensor
    occlusion_map: Tensor | None
    deformation: Tensor


def match_batch(feature: Tensor, batch: int) -> Tensor:
    """Broadcast a cached source feature of batch 1 to `batch` driving frames (a view, no copy)."""
    if feature.shape[0] == batch:
        return feature
    if feature.shape[0] != 1:
        raise ValueError(f"the source feature has batch {feature.shape[0]} but the keypoints have batch {batch}")
    return feature.expand(batch, *feature.shape[1:])


class Fv2vGenerator(nn.Module):
    """Common body of both generators; subclasses supply the decoder."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.dense_motion_network = DenseMotionNetwork(config.dense_motion)
        encoder = AppearanceEncoder.from_config(config)
        post_warp = PostWarp(config.max_features, config.feature_2d_channels)
        adopt_children(self, encoder)
        adopt_children(self, post_warp)
        # Unregistered handles on the parts whose children were adopted above (same modules, same parameters).
        self._parts: tuple[AppearanceEncoder, PostWarp] = (encoder, post_warp)

    @property
    def appearance_encoder(self) -> AppearanceEncoder:
        return self._parts[0]

    @property
    def post_warp(self) -> PostWarp:
        return self._parts[1]

    def _param_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def encode_source(self, image: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> cached 3-D feature; run once per source image."""
        feature: Tensor = self.appearance_encoder(image.to(self._param_dtype()))
        return feature

    def decode(self, feature_2d: Tensor) -> Tensor:
        raise NotImplementedError

    def warp_and_decode(self, feature: Tensor, kp_source: Tensor, kp_driving: Tensor) -> GeneratorOutput:
        """Per-frame part. feature from `encode_source` (batch 1 or B); keypoints (B, K, 3) -> B frames."""
        feature = match_batch(feature, kp_driving.shape[0])
        if kp_source.shape[0] != kp_driving.shape[0]:
            kp_source = kp_source.expand(kp_driving.shape[0], *kp_source.shape[1:])
        motion: DenseMotion = self.dense_motion_network(feature, kp_driving=kp_driving, kp_source=kp_source)
        warped = warp_feature(feature, motion.deformation)
        feature_2d = self.post_warp(warped, motion.occlusion_map)
        return GeneratorOutput(
            prediction=self.decode(feature_2d),
            mask=motion.mask,
            occlusion_map=motion.occlusion_map,
            deformation=motion.deformation,
        )

    def forward(self, source_image: Tensor, kp_driving: Tensor, kp_source: Tensor) -> GeneratorOutput:
        """The original's signature (source, kp_driving, kp_source): encode + warp + decode in one call."""
        return self.warp_and_decode(self.encode_source(source_image), kp_source=kp_source, kp_driving=kp_driving)


class OcclusionAwareSPADEGenerator(Fv2vGenerator):
    """face-vid2vid "New" (vox-256.yaml, --gen spade): 386 keys at full size."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        config = config or GeneratorConfig(variant="new")
        if config.variant != "new":
            raise ValueError("OcclusionAwareSPADEGenerator needs a config with variant='new'")
        super().__init__(config)
        self.decoder = SPADEDecoder(config.spade)

    def decode(self, feature_2d: Tensor) -> Tensor:
        out: Tensor = self.decoder(feature_2d)
        return out


class OcclusionAwareGenerator(Fv2vGenerator):
    """face-vid2vid "Beta" (vox-256-beta, --gen original): 304 keys at full size."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        config = config or GeneratorConfig(variant="beta")
        if config.variant != "beta":
            raise ValueError("OcclusionAwareGenerator needs a config with variant='beta'")
        super().__init__(config)
        decoder = OriginalDecoder(
            block_expansion=config.block_expansion,
            num_down_blocks=config.num_down_blocks,
            num_resblocks=config.num_resblocks,
            image_channel=config.image_channel,
        )
        adopt_children(self, decoder)
        self._original_decoder: tuple[OriginalDecoder] = (decoder,)

    def decode(self, feature_2d: Tensor) -> Tensor:
        out: Tensor = self._original_decoder[0](feature_2d)
        return out


def build_generator(config: GeneratorConfig) -> Fv2vGenerator:
    """The generator class the config's variant names."""
    if config.variant == "new":
        return OcclusionAwareSPADEGenerator(config)
    return OcclusionAwareGenerator(config)
