"""wav2vec2-base written natively, with the state_dict key names of transformers 4.6.1 (FaceFormer's pin).

Why native: FaceFormer's checkpoints hold the whole encoder, so nothing needs the Hub, and current transformers
releases break the load (weight-norm keys renamed to `parametrizations.weight.original0/1`) and the forward
(`feature_projection` returns a tuple). This module reproduces the inference path only (no dropout, no SpecAugment,
no layer drop), for the base layout: group-norm feature extractor, post-LN encoder ("do_stable_layer_norm" false).

Layout (prefix as in the module's own state_dict):
    masked_spec_embed                                   kept so the key set matches; unused at inference
    feature_extractor.conv_layers.{i}.conv.weight       conv_bias False; layer 0 also has `layer_norm`
                                                        (a GroupNorm with one group per channel, despite the name)
    feature_projection.{layer_norm,projection}
    encoder.pos_conv_embed.conv.{weight_g,weight_v,bias}  weight-normed grouped conv, norm per kernel tap (dim=2)
    encoder.layer_norm, encoder.layers.{i}.{attention.{q,k,v,out}_proj, layer_norm, feed_forward.*, final_layer_norm}

The sizes come from the checkpoint's shapes (`wav2vec2_config_from_shapes`); the head count and conv strides
cannot be read from shapes and are documented defaults (12 heads, strides 5,2,2,2,2,2,2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NORMALISE_EPS = 1e-5  # Wav2Vec2FeatureExtractor in transformers 4.6.1 (newer releases use 1e-7)
NEW_WEIGHT_G = "parametrizations.weight.original0"  # torch >= 2.1 parametrised weight norm
NEW_WEIGHT_V = "parametrizations.weight.original1"
BASE_CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)


@dataclass(frozen=True)
class Wav2Vec2Config:
    """Sizes of a wav2vec2 encoder; the defaults are facebook/wav2vec2-base-960h."""

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12  # not recoverable from shapes; 12 for base (head size 64)
    intermediate_size: int = 3072
    conv_dims: tuple[int, ...] = (512,) * 7
    conv_kernels: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_strides: tuple[int, ...] = BASE_CONV_STRIDES  # not recoverable from shapes
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if not (len(self.conv_dims) == len(self.conv_kernels) == len(self.conv_strides) >= 1):
            raise ValueError(
                f"conv_dims, conv_kernels and conv_strides must have the same length, got "
                f"{len(self.conv_dims)}, {len(self.conv_kernels)}, {len(self.conv_strides)}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden size {self.hidden_size} is not divisible by {self.num_heads} heads")
        if self.hidden_size % self.pos_conv_groups:
            raise ValueError(f"hidden size {self.hidden_size} is not divisible by {self.pos_conv_groups} groups")

    @property
    def receptive_field(self) -> int:
        """Samples seen by one output frame (400 for base)."""
        field, jump = self.conv_kernels[0], self.conv_strides[0]
        for kernel, stride in zip(self.conv_kernels[1:], self.conv_strides[1:], strict=True):
            field += (kernel - 1) * jump
            jump *= stride
        return field

    @property
    def total_stride(self) -> int:
        """Samples between output frames (320 for base: 50 Hz at 16 kHz)."""
        return math.prod(self.conv_strides)

    def num_frames(self, num_samples: int) -> int:
        """Feature-extractor frames for `num_samples` input samples, layer by layer (0 when too short)."""
        length = num_samples
        for kernel, stride in zip(self.conv_kernels, self.conv_strides, strict=True):
            if length < kernel:
                return 0
            length = (length - kernel) // stride + 1
        return length


def wav2vec2_config_from_shapes(
    shapes: Mapping[str, Sequence[int]],
    prefix: str = "",
    *,
    num_heads: int = 12,
    conv_strides: tuple[int, ...] | None = None,
) -> Wav2Vec2Config:
    """Read the sizes from a state_dict's shapes (keys under `prefix`); ValueError names what is missing."""

    def shape(key: str) -> tuple[int, ...]:
        if prefix + key not in shapes:
            raise ValueError(f"key {prefix + key!r} is missing")
        return tuple(int(n) for n in shapes[prefix + key])

    num_conv = _count(shapes, prefix + "feature_extractor.conv_layers.{}.conv.weight")
    num_layers = _count(shapes, prefix + "encoder.layers.{}.attention.q_proj.weight")
    if num_conv == 0:
        raise ValueError(f"no feature-extractor conv layers under {prefix!r}feature_extractor.conv_layers")
    if num_layers == 0:
        raise ValueError(f"no encoder layers under {prefix!r}encoder.layers")
    convs = [shape(f"feature_extractor.conv_layers.{i}.conv.weight") for i in range(num_conv)]
    hidden = shape("feature_projection.projection.weight")[0]
    pos_v = shape(_pos_conv_key("weight_v", shapes, prefix))
    if len(pos_v) != 3 or pos_v[1] == 0:
        raise ValueError(f"positional conv weight has shape {pos_v}, expected (hidden, hidden/groups, kernel)")
    if conv_strides is None:
        if num_conv != len(BASE_CONV_STRIDES):
            raise ValueError(f"{num_conv} conv layers but the default strides are for {len(BASE_CONV_STRIDES)}")
        conv_strides = BASE_CONV_STRIDES
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_size=shape("encoder.layers.0.feed_forward.intermediate_dense.weight")[0],
        conv_dims=tuple(c[0] for c in convs),
        conv_kernels=tuple(c[2] for c in convs),
        conv_strides=conv_strides,
        pos_conv_kernel=pos_v[2],
        pos_conv_groups=hidden // pos_v[1],
    )


def _count(shapes: Mapping[str, Any], pattern: str) -> int:
    count = 0
    while pattern.format(count) in shapes:
        count += 1
    return count


def _pos_conv_key(which: str, shapes: Mapping[str, Any], prefix: str) -> str:
    """The positional-conv weight key under either naming (old `weight_g/_v` or new parametrizations)."""
    old = f"encoder.pos_conv_embed.conv.{which}"
    new = f"encoder.pos_conv_embed.conv.{NEW_WEIGHT_G if which == 'weight_g' else NEW_WEIGHT_V}"
    return new if prefix + old not in shapes and prefix + new in shapes else old


def rename_weight_norm_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Map the torch>=2.1 weight-norm names (`parametrizations.weight.original0/1`) to `weight_g/weight_v`.

    Other keys pass through, order kept; a verifier calls this before comparing with `expected_shapes`.
    """
    renamed: dict[str, Any] = {}
    for key, value in state_dict.items():
        if key.endswith(NEW_WEIGHT_G):
            key = key[: -len(NEW_WEIGHT_G)] + "weight_g"
        elif key.endswith(NEW_WEIGHT_V):
            key = key[: -len(NEW_WEIGHT_V)] + "weight_v"
        renamed[key] = value
    return renamed


def normalize_audio(samples: np.ndarray) -> np.ndarray:
    """Per-utterance zero mean, unit variance: `(x - mean) / sqrt(var + 1e-5)`, as the 4.6.1 processor does."""
    x = np.asarray(samples, dtype=np.float64)
    normalised: np.ndarray = ((x - x.mean()) / np.sqrt(x.var() + NORMALISE_EPS)).astype(np.float32)
    return normalised


def weight_norm_weight(weight_g: torch.Tensor, weight_v: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """`g * v / ||v||` with the norm over every dim except `dim` (one norm per kernel tap for dim=2)."""
    other = tuple(d for d in range(weight_v.dim()) if d != dim)
    norm = weight_v.pow(2).sum(dim=other, keepdim=True).sqrt()
    return weight_v * (weight_g / norm)


class WeightNormConv1d(nn.Module):
    """Conv1d stored as `weight_g` (1,1,K) and `weight_v` (out, in/groups, K), the old torch weight_norm layout.

    Loading also accepts the new `parametrizations.weight.original0/1` names (renamed before the strict check).
    """

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.padding = kernel_size // 2
        self.bias = nn.Parameter(torch.zeros(channels))  # registered first: the public key order
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel_size * channels)))

    def weight(self) -> torch.Tensor:
        return weight_norm_weight(self.weight_g, self.weight_v, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        for new, old in ((NEW_WEIGHT_G, "weight_g"), (NEW_WEIGHT_V, "weight_v")):
            if prefix + new in state_dict and prefix + old not in state_dict:
                state_dict[prefix + old] = state_dict.pop(prefix + new)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class FeatureExtractorLayer(nn.Module):
    """conv (no bias) [-> GroupNorm(C, C) on layer 0] -> GELU."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, group_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, stride=stride, bias=False)
        self.layer_norm: nn.GroupNorm | None = nn.GroupNorm(out_dim, out_dim, affine=True) if group_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return F.gelu(x)


class FeatureExtractor(nn.Module):
    """The 7-layer CNN: raw 16 kHz samples (B, N) -> features (B, C, T50)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        dims = (1, *config.conv_dims)
        self.conv_layers = nn.ModuleList(
            FeatureExtractorLayer(dims[i], dims[i + 1], config.conv_kernels[i], config.conv_strides[i], i == 0)
            for i in range(len(config.conv_dims))
        )

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        x = values[:, None, :]
        for layer in self.conv_layers:
            x = layer(x)
        return x


class FeatureProjection(nn.Module):
    """LayerNorm(C) -> Linear(C, hidden); returns only the projection (4.6.1 behaviour, not a tuple)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dims[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dims[-1], config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected: torch.Tensor = self.projection(self.layer_norm(x))
        return projected


class PositionalConvEmbedding(nn.Module):
    """Weight-normed grouped conv, then drop the last step when the kernel is even (SamePad), then GELU."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.conv = WeightNormConv1d(config.hidden_size, config.pos_conv_kernel, config.pos_conv_groups)
        self.remove = 1 if config.pos_conv_kernel % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, H)."""
        y = self.conv(x.transpose(1, 2))
        if self.remove:
            y = y[:, :, : -self.remove]
        return F.gelu(y).transpose(1, 2)


class SelfAttention(nn.Module):
    """Bart-style multi-head self-attention with separate q/k/v/out projections, scaled by 1/sqrt(head size)."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(hidden, hidden)  # k, v, q: the public key order
        self.v_proj = nn.Linear(hidden, hidden)
        self.q_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        projected: torch.Tensor = self.out_proj(out.transpose(1, 2).reshape(batch, length, hidden))
        return projected


class FeedForward(nn.Module):
    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(hidden, intermediate)
        self.output_dense = nn.Linear(intermediate, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.output_dense(F.gelu(self.intermediate_dense(x)))
        return out


class EncoderLayer(nn.Module):
    """Post-LN: `x = LN(x + attn(x)); x = final_LN(x + FF(x))`."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.attention = SelfAttention(config.hidden_size, config.num_heads)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config.hidden_size, config.intermediate_size)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(x + self.attention(x))
        out: torch.Tensor = self.final_layer_norm(x + self.feed_forward(x))
        return out


class Encoder(nn.Module):
    """x + pos_conv(x) -> LayerNorm -> post-LN layers."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.pos_conv_embed = PositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(x + self.pos_conv_embed(x))
        for layer in self.layers:
            x = layer(x)
        return x


class Wav2Vec2Model(nn.Module):
    """wav2vec2 split in two so a caller can resample the 50 Hz features in between (FaceFormer does).

    `extract_features` expects already normalised samples (see `normalize_audio`).
    """

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.config = config
        self.masked_spec_embed = nn.Parameter(torch.rand(config.hidden_size))
        self.feature_extractor = FeatureExtractor(config)
        self.feature_projection = FeatureProjection(config)
        self.encoder = Encoder(config)

    def extract_features(self, values: torch.Tensor) -> torch.Tensor:
        """(B, N) samples -> (B, T50, C) CNN features."""
        if values.dim() != 2:
            raise ValueError(f"expected samples of shape (batch, N), got {tuple(values.shape)}")
        if values.shape[1] < self.config.receptive_field:
            raise ValueError(f"{values.shape[1]} samples is shorter than one frame ({self.config.receptive_field})")
        features: torch.Tensor = self.feature_extractor(values)
        return features.transpose(1, 2)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, C) CNN features -> (B, T, hidden) last hidden state."""
        hidden: torch.Tensor = self.encoder(self.feature_projection(features))
        return hidden

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.encode(self.extract_features(values))
