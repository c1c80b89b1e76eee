"""Native wav2vec2-base: key layout against the reference list, frame counts, weight norm, the maths of each part."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipelines.th.neural.wav2vec2 import (
    NEW_WEIGHT_G,
    NEW_WEIGHT_V,
    FeatureExtractorLayer,
    PositionalConvEmbedding,
    SelfAttention,
    Wav2Vec2Config,
    Wav2Vec2Model,
    normalize_audio,
    rename_weight_norm_keys,
    wav2vec2_config_from_shapes,
    weight_norm_weight,
)

T = TypeVar("T")
KEYS_FILE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "checkpoint-keys.txt"
TINY = Wav2Vec2Config(
    hidden_size=16,
    num_layers=2,
    num_heads=2,
    intermediate_size=32,
    conv_dims=(8,) * 7,
    pos_conv_kernel=8,
    pos_conv_groups=2,
)


def reference_audio_shapes() -> dict[str, tuple[int, ...]]:
    """`audio_encoder.*` keys (prefix removed) -> shape, from the FaceFormer vocaset section of the reference."""
    if not KEYS_FILE.is_file():
        pytest.skip(f"reference key list absent: {KEYS_FILE}")
    shapes: dict[str, tuple[int, ...]] = {}
    inside = False
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("### "):
            inside = line.startswith("### FaceFormer vocaset")
            continue
        match = re.fullmatch(r"audio_encoder\.(\S+) \(([\d, ]*)\) \w+", line.strip())
        if inside and match:
            shapes[match[1]] = tuple(int(n) for n in match[2].replace(" ", "").split(",") if n)
    assert len(shapes) == 211, "the reference lists 211 audio_encoder keys"
    return shapes


def random_model(config: Wav2Vec2Config = TINY, seed: int = 0) -> Wav2Vec2Model:
    torch.manual_seed(seed)
    model = Wav2Vec2Model(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model


def test_full_size_layout_matches_the_reference_keys_and_shapes() -> None:
    expected = reference_audio_shapes()
    with torch.device("meta"):
        model = Wav2Vec2Model(Wav2Vec2Config())
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected


def key_pattern(key: str) -> str:
    return re.sub(r"^encoder\.layers\.\d+\.", "encoder.layers.N.", key)


def test_tiny_model_has_the_same_key_set_as_the_real_one() -> None:
    """Same names, conv layers included; only the number of encoder layers differs (2 instead of 12)."""
    tiny = {key_pattern(k) for k in Wav2Vec2Model(TINY).state_dict()}
    assert tiny == {key_pattern(k) for k in reference_audio_shapes()}
    assert len(Wav2Vec2Model(TINY).state_dict()) == 211 - 10 * 16


def test_config_is_read_back_from_shapes() -> None:
    assert wav2vec2_config_from_shapes(reference_audio_shapes()) == Wav2Vec2Config()
    tiny_shapes = {k: tuple(v.shape) for k, v in Wav2Vec2Model(TINY).state_dict().items()}
    assert wav2vec2_config_from_shapes(tiny_shapes, num_heads=2) == TINY
    prefixed = {"audio_encoder." + k: v for k, v in rename_new(tiny_shapes).items()}
    assert wav2vec2_config_from_shapes(prefixed, "audio_encoder.", num_heads=2) == TINY
    with pytest.raises(ValueError, match="projection"):
        wav2vec2_config_from_shapes({k: v for k, v in tiny_shapes.items() if "projection.weight" not in k})


def rename_new(state: Mapping[str, T]) -> dict[str, T]:
    """The torch>=2.1 names for the positional conv weights."""
    out = {}
    for key, value in state.items():
        key = key.replace("conv.weight_g", "conv." + NEW_WEIGHT_G).replace("conv.weight_v", "conv." + NEW_WEIGHT_V)
        out[key] = value
    return out


@pytest.mark.parametrize("config", [Wav2Vec2Config(), TINY], ids=["base", "tiny"])
def test_receptive_field_and_stride_are_the_base_ones(config: Wav2Vec2Config) -> None:
    assert (config.receptive_field, config.total_stride) == (400, 320)
    for n in [*range(395, 1500), 16000, 16001, 80000, 80399, 123457]:
        expected = (n - 400) // 320 + 1 if n >= 400 else 0
        assert config.num_frames(n) == expected, n


def test_cnn_gives_50_hz_frames_for_odd_and_even_lengths() -> None:
    model = random_model()
    lengths = [400, 401, 719, 720, 1039, 1040, 16000, 16001, 24321, 48007]
    with torch.inference_mode():
        for n in lengths:
            features = model.extract_features(torch.randn(1, n))
            assert features.shape == (1, (n - 400) // 320 + 1, 8), n
            assert model(torch.randn(1, n)).shape == (1, (n - 400) // 320 + 1, 16)
    with torch.device("meta"):  # the full-size CNN, shapes only
        full = Wav2Vec2Model(Wav2Vec2Config())
        for n in (16000, 16001, 80123):
            assert full.extract_features(torch.empty(1, n)).shape == (1, (n - 400) // 320 + 1, 512)
    with pytest.raises(ValueError, match="shorter than one frame"):
        model.extract_features(torch.randn(1, 399))


def test_weight_norm_is_per_kernel_tap() -> None:
    g = torch.tensor([2.0, -1.0, 0.5]).view(1, 1, 3)
    v = torch.arange(1.0, 4 * 2 * 3 + 1).view(4, 2, 3)
    expected = torch.empty_like(v)
    for tap in range(3):
        expected[:, :, tap] = g[0, 0, tap] * v[:, :, tap] / math.sqrt(float((v[:, :, tap] ** 2).sum()))
    torch.testing.assert_close(weight_norm_weight(g, v), expected)
    conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 4, 3, groups=2), name="weight", dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(g)
        conv.parametrizations.weight.original1.copy_(v)
    torch.testing.assert_close(conv.weight, expected)


@pytest.mark.parametrize("kernel", [8, 7])
def test_positional_conv_matches_torch_weight_norm_conv_with_same_pad(kernel: int) -> None:
    config = Wav2Vec2Config(hidden_size=16, num_heads=2, pos_conv_kernel=kernel, pos_conv_groups=4)
    torch.manual_seed(1)
    reference = nn.Conv1d(16, 16, kernel, padding=kernel // 2, groups=4)
    reference = nn.utils.parametrizations.weight_norm(reference, name="weight", dim=2)
    with torch.no_grad():
        reference.parametrizations.weight.original0.uniform_(0.5, 2.0)
    ours = PositionalConvEmbedding(config)
    ours.conv.load_state_dict(reference.state_dict(), strict=True)  # new names accepted
    x = torch.randn(2, 23, 16)
    expected = reference(x.transpose(1, 2))
    if kernel % 2 == 0:
        expected = expected[:, :, :-1]
    torch.testing.assert_close(ours(x), F.gelu(expected).transpose(1, 2))
    assert ours(x).shape == x.shape


def test_old_and_new_weight_norm_names_give_identical_outputs() -> None:
    old = random_model(seed=3)
    state = old.state_dict()
    new_state = rename_new(dict(state))
    assert "encoder.pos_conv_embed.conv." + NEW_WEIGHT_G in new_state
    assert rename_weight_norm_keys(new_state).keys() == state.keys()
    fresh = Wav2Vec2Model(TINY).eval()
    fresh.load_state_dict(new_state, strict=True)
    values = torch.randn(1, 5000)
    with torch.inference_mode():
        assert torch.equal(old(values), fresh(values))


def test_self_attention_matches_torch_multihead_attention() -> None:
    torch.manual_seed(4)
    ours = SelfAttention(16, 4)
    reference = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        reference.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        reference.out_proj.load_state_dict(ours.out_proj.state_dict())
    x = torch.randn(1, 11, 16)
    torch.testing.assert_close(ours(x), reference(x, x, x, need_weights=False)[0])


def functional_encoder(model: Wav2Vec2Model, features: torch.Tensor) -> torch.Tensor:
    """transformers 4.6.1 semantics written out independently: projection, pos conv, post-LN layers."""
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    cfg = model.config
    x = F.layer_norm(
        features,
        (features.shape[-1],),
        sd["feature_projection.layer_norm.weight"],
        sd["feature_projection.layer_norm.bias"],
        1e-5,
    )
    x = F.linear(x, sd["feature_projection.projection.weight"], sd["feature_projection.projection.bias"])
    v, g = sd["encoder.pos_conv_embed.conv.weight_v"], sd["encoder.pos_conv_embed.conv.weight_g"]
    w = v * (g / v.norm(dim=(0, 1), keepdim=True))
    pos = F.conv1d(
        x.transpose(1, 2),
        w,
        sd["encoder.pos_conv_embed.conv.bias"],
        padding=cfg.pos_conv_kernel // 2,
        groups=cfg.pos_conv_groups,
    )[:, :, :-1]
    x = x + F.gelu(pos).transpose(1, 2)
    x = F.layer_norm(x, (cfg.hidden_size,), sd["encoder.layer_norm.weight"], sd["encoder.layer_norm.bias"], 1e-5)
    heads, size = cfg.num_heads, cfg.hidden_size // cfg.num_heads
    for i in range(cfg.num_layers):
        p = f"encoder.layers.{i}."

        def lin(name: str, t: torch.Tensor, p: str = p) -> torch.Tensor:
            return F.linear(t, sd[p + name + ".weight"], sd[p + name + ".bias"])

        q = lin("attention.q_proj", x) * size**-0.5
        k, v_ = lin("attention.k_proj", x), lin("attention.v_proj", x)
        q, k, v_ = (t.view(1, -1, heads, size).transpose(1, 2) for t in (q, k, v_))
        attn = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v_
        x = x + lin("attention.out_proj", attn.transpose(1, 2).reshape(1, -1, cfg.hidden_size))
        x = F.layer_norm(x, (cfg.hidden_size,), sd[p + "layer_norm.weight"], sd[p + "layer_norm.bias"], 1e-5)
        x = x + lin("feed_forward.output_dense", F.gelu(lin("feed_forward.intermediate_dense", x)))
        x = F.layer_norm(
            x, (cfg.hidden_size,), sd[p + "final_layer_norm.weight"], sd[p + "final_layer_norm.bias"], 1e-5
        )
    return x


def test_encoder_matches_an_independent_functional_version() -> None:
    model = random_model(seed=5)
    features = torch.randn(1, 37, 8)
    with torch.inference_mode():
        torch.testing.assert_close(model.encode(features), functional_encoder(model, features), atol=1e-5, rtol=1e-4)


def test_feature_extractor_layer_zero_is_group_norm_per_channel_then_gelu() -> None:
    model = random_model(seed=6)
    layer = model.feature_extractor.conv_layers[0]
    assert isinstance(layer, FeatureExtractorLayer)
    assert isinstance(layer.layer_norm, nn.GroupNorm) and layer.layer_norm.num_groups == 8
    assert all(
        isinstance(c, FeatureExtractorLayer) and c.conv.bias is None for c in model.feature_extractor.conv_layers
    )
    x = torch.randn(1, 1, 999)
    conv = layer.conv(x)
    normed = (conv - conv.mean(-1, keepdim=True)) / torch.sqrt(conv.var(-1, unbiased=False, keepdim=True) + 1e-5)
    expected = F.gelu(normed * layer.layer_norm.weight[:, None] + layer.layer_norm.bias[:, None])
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)


def test_input_normalisation_is_per_utterance_with_eps_1e5() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=7001) * 0.01 + 0.2).astype(np.float32)
    y = normalize_audio(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, (x64 - x64.mean()) / np.sqrt(x64.var() + 1e-5), rtol=1e-6)
    assert y.dtype == np.float32 and abs(float(y.mean())) < 1e-6
    assert float(y.var()) == pytest.approx(1e-4 / (1e-4 + 1e-5), rel=1e-2)  # eps matters for quiet audio
    silent = normalize_audio(np.full(1000, 0.3, dtype=np.float32))
    assert np.all(silent == 0)
