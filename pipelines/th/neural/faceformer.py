"""FaceFormer (EvelynFan/FaceFormer) audio -> mesh, loading the public `vocaset.pth` / `biwi.pth` strictly.

Module layout and key names are those of the public `Faceformer` (237 keys): `audio_encoder.*` (native wav2vec2,
see `wav2vec2.py`), `audio_feature_map`, `vertice_map`, `PPE.pe`, `transformer_decoder.layers.0.*`,
`vertice_map_r`, `obj_vector`. The ALiBi-like `biased_mask` and the memory mask are not in the state_dict.

Behaviour preserved from the public code (model-facts.md section 2.4):
- audio normalised per utterance, wav2vec2 CNN at 50 Hz, then a dataset-specific resampling BEFORE the transformer
  (vocaset: linear interpolation, align_corners, to `int(T50/50*30)` frames; BIWI: drop the last frame if odd);
- autoregressive decoding: step 0 is the speaker style `obj_vector(one_hot)`; each next input is
  `vertice_map(last offset) + style`, plus the periodic positional encoding; the output is template + offsets;
- decoder frame j attends to audio frame j (vocaset) or 2j and 2j+1 (BIWI).

The 600-frame cap of the public code is lifted by REBUILDING, not chunking: the positional table is periodic, so
any length is the saved period tiled (the loader first checks that the saved table equals the regenerated one), and
the biased mask is a closed form of (i - j) built at the length needed. There is therefore no seam at all.

Speed-up: decoding uses a key/value cache. The decoder is causal (a float mask that is -inf above the diagonal) and
has one layer, so re-decoding the whole prefix at every step, as the public code does (O(T^2) decoder passes, plus
`vertice_map_r` over the whole prefix every step), gives for each old frame exactly what it gave before. The cached
path computes each frame once; `decode(..., cached=False)` keeps the public algorithm for tests, which check that
both agree to float precision.

Dataset ("vocaset" | "biwi") fixes the period (30 | 25) and the model's frame rate (30 | 25 fps). It cannot be read
from the weights directly, so the loader detects it from the saved positional table: the table is sin/cos of
`period` positions tiled, so the period is the first row that repeats row 0 (30 -> vocaset, 25 -> biwi). A table
shorter than one period falls back on its length (630 = (600//30+1)*30 -> vocaset, 625 -> biwi). An explicit
`dataset=` overrides the detection and is then checked against the table like any other.

Batch size is 1 (one utterance per call), as in the public code. Long audio: the encoder is not chunked, because
wav2vec2 attends over the whole utterance and its first GroupNorm normalises each channel over the whole utterance
(chunks would change the features); attention uses PyTorch's fused kernel, so memory grows about linearly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipelines.base import BadInput, MissingWeights
from pipelines.th.neural.wav2vec2 import (
    Wav2Vec2Config,
    Wav2Vec2Model,
    normalize_audio,
    rename_weight_norm_keys,
    wav2vec2_config_from_shapes,
)

AUDIO_RATE = 16000
AUDIO_FPS = 50  # wav2vec2 frames per second at 16 kHz
REFERENCE_MAX_SEQ_LEN = 600  # the public code's table length parameter (saved pe length = (600 // period + 1) * period)
PE_TOLERANCE = 1e-5  # sin/cos of at most `period` radians: float32 libraries agree far better than this


@dataclass(frozen=True)
class DatasetSpec:
    period: int  # of the positional encoding and the biased mask
    fps: int  # frames per second of the decoder output
    audio_frames_per_frame: int  # audio frames each decoder frame attends to


DATASETS: dict[str, DatasetSpec] = {
    "vocaset": DatasetSpec(period=30, fps=30, audio_frames_per_frame=1),
    "biwi": DatasetSpec(period=25, fps=25, audio_frames_per_frame=2),
}


def dataset_spec(dataset: str) -> DatasetSpec:
    key = dataset.lower()
    if key not in DATASETS:
        raise ValueError(f"unknown FaceFormer dataset {dataset!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[key]


@dataclass(frozen=True)
class FaceFormerConfig:
    """Sizes of a FaceFormer; everything but the head counts and `dataset` is read from checkpoint shapes."""

    dataset: str  # "vocaset" | "biwi"
    vertice_dim: int  # V * 3
    feature_dim: int
    n_subjects: int  # training speakers (one-hot size)
    pe_len: int  # length of the saved positional table
    ff_dim: int  # decoder feed-forward width (2 * feature_dim in the public models)
    n_head: int = 4  # decoder heads; not recoverable from shapes
    audio: Wav2Vec2Config = field(default_factory=Wav2Vec2Config)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", self.dataset.lower())
        dataset_spec(self.dataset)
        if self.vertice_dim % 3:
            raise ValueError(f"vertice_dim {self.vertice_dim} is not a multiple of 3")
        if self.feature_dim % self.n_head:
            raise ValueError(f"feature_dim {self.feature_dim} is not divisible by {self.n_head} decoder heads")

    @property
    def period(self) -> int:
        return DATASETS[self.dataset].period

    @property
    def fps(self) -> int:
        return DATASETS[self.dataset].fps

    @property
    def num_vertices(self) -> int:
        return self.vertice_dim // 3


def public_config(dataset: str) -> FaceFormerConfig:
    """The full-size architecture of the public `vocaset.pth` / `biwi.pth`."""
    spec = dataset_spec(dataset)
    vertice_dim, feature_dim, n_subjects = (15069, 64, 8) if dataset.lower() == "vocaset" else (70110, 128, 6)
    return FaceFormerConfig(
        dataset=dataset,
        vertice_dim=vertice_dim,
        feature_dim=feature_dim,
        n_subjects=n_subjects,
        pe_len=saved_pe_len(spec.period),
        ff_dim=2 * feature_dim,
    )


def saved_pe_len(period: int, max_seq_len: int = REFERENCE_MAX_SEQ_LEN) -> int:
    return (max_seq_len // period + 1) * period


# ---------------------------------------------------------------------------------------------------------------
# Positional encoding, masks, resampling


def periodic_table(period: int, dim: int, length: int) -> torch.Tensor:
    """(1, length, dim): sin on even, cos on odd channels of positions 0..period-1, tiled to `length`."""
    position = torch.arange(period, dtype=torch.float32)[:, None]
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(period, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)[:, : dim // 2]
    return table[torch.arange(length) % period][None]


class PeriodicPositionalEncoding(nn.Module):
    """Holds the saved table `pe` (1, pe_len, dim) for a strict load; `table(n)` serves any length by tiling."""

    pe: torch.Tensor

    def __init__(self, dim: int, period: int, pe_len: int) -> None:
        super().__init__()
        self.period = period
        self.register_buffer("pe", periodic_table(period, dim, pe_len))

    def table(self, length: int) -> torch.Tensor:
        """(1, length, dim). Tiles the saved first period, so saved positions keep their exact stored values."""
        if length <= self.pe.shape[1]:
            return self.pe[:, :length]
        if self.pe.shape[1] >= self.period:
            index = torch.arange(length, device=self.pe.device) % self.period
            return self.pe[:, index]
        return periodic_table(self.period, self.pe.shape[2], length).to(self.pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table(x.shape[1])


def detect_period(pe: torch.Tensor, atol: float = PE_TOLERANCE) -> int | None:
    """The first p > 0 whose row equals row 0 of a (1, L, dim) table, or None when no row repeats."""
    rows = pe[0].float()
    for p in range(1, rows.shape[0]):
        if torch.allclose(rows[p], rows[0], atol=atol, rtol=0.0):
            return p
    return None


def detect_dataset(pe: torch.Tensor) -> str | None:
    """The dataset ("vocaset" | "biwi") of a saved table, from its period (else its length); None if unknown."""
    period = detect_period(pe)
    for name, spec in DATASETS.items():
        if period == spec.period or (period is None and pe.shape[1] == saved_pe_len(spec.period)):
            return name
    return None


def alibi_slopes(n_head: int) -> list[float]:
    """Per-head slopes of the public `init_biased_mask` ([1/4, 1/16, 1/64, 1/256] for 4 heads)."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_head).is_integer():
        return power_of_two(n_head)
    closest = 2 ** math.floor(math.log2(n_head))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: n_head - closest]


def period_bias(n_head: int, length: int, period: int) -> torch.Tensor:
    """(n_head, length): bias for a key `d` steps back, `-floor(d / period) * slope`."""
    slopes = torch.tensor(alibi_slopes(n_head), dtype=torch.float32)
    steps = torch.div(torch.arange(length), period, rounding_mode="floor").float()
    return slopes[:, None] * -steps[None, :]


def biased_mask(n_head: int, length: int, period: int) -> torch.Tensor:
    """(n_head, length, length) float target mask: period bias on and below the diagonal, -inf above."""
    distance = torch.arange(length)[:, None] - torch.arange(length)[None, :]
    bias = period_bias(n_head, length, period)[:, distance.clamp(min=0)]
    return bias.masked_fill((distance < 0)[None], float("-inf"))


def memory_window(dataset: str, frame: int) -> tuple[int, int]:
    """[start, stop) of the audio frames decoder frame `frame` attends to."""
    per = dataset_spec(dataset).audio_frames_per_frame
    return frame * per, frame * per + per


def memory_mask(dataset: str, frames: int, audio_frames: int) -> torch.Tensor:
    """(frames, audio_frames) bool, True = blocked (the public `enc_dec_mask`)."""
    mask = torch.ones(frames, audio_frames, dtype=torch.bool)
    for j in range(frames):
        start, stop = memory_window(dataset, j)
        mask[j, start:stop] = False
    return mask


def resample_audio_features(features: torch.Tensor, dataset: str) -> torch.Tensor:
    """(B, T50, C) CNN features -> the decoder's audio rate: vocaset 30 Hz (linear), BIWI 50 Hz with even length."""
    t50 = features.shape[1]
    if dataset_spec(dataset).audio_frames_per_frame == 2:
        return features[:, : t50 - t50 % 2]
    frames = int(t50 / float(AUDIO_FPS) * 30)  # the public expression, float rounding included
    if frames < 1:
        raise ValueError(f"{t50} audio frames is too short for one vocaset frame")
    out = F.interpolate(features.transpose(1, 2), size=frames, mode="linear", align_corners=True)
    return out.transpose(1, 2)


def decoder_frames(dataset: str, audio_frames: int) -> int:
    """Mesh frames for `audio_frames` resampled audio frames."""
    return audio_frames // dataset_spec(dataset).audio_frames_per_frame


def resample_frames(frames: np.ndarray, src_fps: float, dst_fps: float, count: int | None = None) -> np.ndarray:
    """Linear interpolation in time of (T, ...) frames to `count` frames (default round(T * dst/src)).

    Output frame m is taken at time m / dst_fps; times past the last input frame hold it (never extrapolate).
    """
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {src_fps} and {dst_fps}")
    total = frames.shape[0]
    if count is None:
        count = max(1, round(total * dst_fps / src_fps))
    if src_fps == dst_fps and count == total:
        return frames
    times = np.minimum(np.arange(count) * (src_fps / dst_fps), total - 1)
    lower = np.floor(times).astype(np.int64)
    upper = np.minimum(lower + 1, total - 1)
    weight = (times - lower).astype(frames.dtype).reshape(-1, *([1] * (frames.ndim - 1)))
    resampled: np.ndarray = (1 - weight) * frames[lower] + weight * frames[upper]
    return resampled


# ---------------------------------------------------------------------------------------------------------------
# The model


class FaceFormer(nn.Module):
    """Audio -> vertex offsets added to a template. Attribute names are the public checkpoint's."""

    def __init__(self, config: FaceFormerConfig) -> None:
        super().__init__()
        self.config = config
        fd = config.feature_dim
        self.audio_encoder = Wav2Vec2Model(config.audio)
        self.audio_feature_map = nn.Linear(config.audio.hidden_size, fd)
        self.vertice_map = nn.Linear(config.vertice_dim, fd)
        self.PPE = PeriodicPositionalEncoding(fd, config.period, config.pe_len)
        layer = nn.TransformerDecoderLayer(fd, config.n_head, config.ff_dim, dropout=0.1, batch_first=True)
        self.transformer_decoder = nn.TransformerDecoder(layer, num_layers=1)
        self.vertice_map_r = nn.Linear(fd, config.vertice_dim)
        self.obj_vector = nn.Linear(config.n_subjects, fd, bias=False)
        nn.init.zeros_(self.vertice_map_r.weight)  # as the public model: starts at the template
        nn.init.zeros_(self.vertice_map_r.bias)

    # -- stages --------------------------------------------------------------------------------------------------

    def encode_audio(self, values: torch.Tensor) -> torch.Tensor:
        """(1, N) normalised 16 kHz samples -> decoder memory (1, S, feature_dim) at the dataset's audio rate."""
        features = self.audio_encoder.extract_features(values)
        features = resample_audio_features(features, self.config.dataset)
        memory: torch.Tensor = self.audio_feature_map(self.audio_encoder.encode(features))
        return memory

    def style(self, subject_index: int) -> torch.Tensor:
        """(1, feature_dim) speaker-style embedding of training subject `subject_index`."""
        if not 0 <= subject_index < self.config.n_subjects:
            raise ValueError(f"subject index {subject_index} outside 0..{self.config.n_subjects - 1}")
        weight = self.obj_vector.weight
        one_hot = torch.zeros(1, self.config.n_subjects, dtype=weight.dtype, device=weight.device)
        one_hot[0, subject_index] = 1
        style: torch.Tensor = self.obj_vector(one_hot)
        return style

    def decode(self, memory: torch.Tensor, style: torch.Tensor, frames: int, *, cached: bool = True) -> torch.Tensor:
        """Autoregressive decoding of `frames` mesh frames -> offsets (frames, vertice_dim)."""
        needed = frames * DATASETS[self.config.dataset].audio_frames_per_frame
        if memory.shape[0] != 1 or memory.shape[1] < needed:
            raise ValueError(f"memory of shape {tuple(memory.shape)} cannot feed {frames} frames (batch 1)")
        if frames < 1:
            raise ValueError("at least one frame must be decoded")
        if cached:
            return self._decode_cached(memory, style, frames)
        return self._decode_reference(memory, style, frames)

    def _decode_reference(self, memory: torch.Tensor, style: torch.Tensor, frames: int) -> torch.Tensor:
        """The public algorithm: re-decode the whole prefix at every step (O(T^2)); masks rebuilt at length T."""
        tgt_mask = biased_mask(self.config.n_head, frames, self.config.period).to(memory)
        full_memory_mask = memory_mask(self.config.dataset, frames, memory.shape[1]).to(memory.device)
        table = self.PPE.table(frames)
        style = style[:, None, :]
        embeddings = style
        out = style
        for i in range(frames):
            inputs = embeddings + table[:, : i + 1]
            hidden = self.transformer_decoder(
                inputs, memory, tgt_mask=tgt_mask[:, : i + 1, : i + 1], memory_mask=full_memory_mask[: i + 1]
            )
            out = self.vertice_map_r(hidden)
            embeddings = torch.cat([embeddings, self.vertice_map(out[:, -1:, :]) + style], dim=1)
        return out[0]

    def _decode_cached(self, memory: torch.Tensor, style: torch.Tensor, frames: int) -> torch.Tensor:
        """One decoder step per frame with cached self-attention keys/values; same maths as the reference."""
        layer = self.transformer_decoder.layers[0]
        assert isinstance(layer, nn.TransformerDecoderLayer)
        heads, dim = self.config.n_head, self.config.feature_dim
        head_dim = dim // heads
        self_attn, cross_attn = layer.self_attn, layer.multihead_attn

        def split(t: torch.Tensor) -> torch.Tensor:  # (..., L, dim) -> (1, heads, L, head_dim)
            return t.reshape(1, -1, heads, head_dim).transpose(1, 2)

        def merge(t: torch.Tensor) -> torch.Tensor:
            return t.transpose(1, 2).reshape(1, dim)

        w_q, w_k, w_v = cross_attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = cross_attn.in_proj_bias.chunk(3)
        memory_k, memory_v = split(F.linear(memory[0], w_k, b_k)), split(F.linear(memory[0], w_v, b_v))
        keys = memory.new_zeros(1, heads, frames, head_dim)
        values = memory.new_zeros(1, heads, frames, head_dim)
        bias = period_bias(heads, frames, self.config.period).to(memory).flip(-1)  # index -1 - d: d steps back
        table = self.PPE.table(frames)[0]
        offsets = memory.new_empty(frames, self.config.vertice_dim)
        embedding = style
        for i in range(frames):
            x = embedding + table[i]
            q, k, v = F.linear(x, self_attn.in_proj_weight, self_attn.in_proj_bias).chunk(3, dim=-1)
            keys[:, :, i] = k.view(heads, head_dim)
            values[:, :, i] = v.view(heads, head_dim)
            mask = bias[:, frames - 1 - i :][None, :, None, :]
            attended = F.scaled_dot_product_attention(split(q), keys[:, :, : i + 1], values[:, :, : i + 1], mask)
            x = layer.norm1(x + self_attn.out_proj(merge(attended)))
            start, stop = memory_window(self.config.dataset, i)
            attended = F.scaled_dot_product_attention(
                split(F.linear(x, w_q, b_q)), memory_k[:, :, start:stop], memory_v[:, :, start:stop]
            )
            x = layer.norm2(x + cross_attn.out_proj(merge(attended)))
            x = layer.norm3(x + layer.linear2(F.relu(layer.linear1(x))))
            offset = self.vertice_map_r(x)
            offsets[i] = offset[0]
            embedding = self.vertice_map(offset) + style
        return offsets

    # -- public entry point --------------------------------------------------------------------------------------

    def predict(self, audio_16k: np.ndarray, template: np.ndarray, subject_index: int, fps: float = 25.0) -> np.ndarray:
        """Mono 16 kHz samples -> vertices (T, V, 3) in metres at `fps` (linear interpolation in time).

        T = round(audio duration * fps) (see `output_frames`).

        `template` is the neutral mesh (V, 3) (or flat V*3) the offsets are added to; `subject_index` picks the
        training speaker whose style is imitated (the public one-hot order, see model-facts.md 2.4).
        """
        samples = _check_audio(audio_16k, self.config.audio.receptive_field + self.config.audio.total_stride)
        vertices = _check_template(template, self.config.num_vertices)
        parameter = next(self.parameters())
        values = torch.from_numpy(normalize_audio(samples))[None].to(parameter.device, parameter.dtype)
        with torch.inference_mode():
            memory = self.encode_audio(values)
            frames = decoder_frames(self.config.dataset, memory.shape[1])
            offsets = self.decode(memory, self.style(subject_index), frames)
        result = offsets.float().cpu().numpy().reshape(frames, -1, 3) + vertices
        return resample_frames(result, self.config.fps, fps, output_frames(samples.shape[0], fps))


def output_frames(num_samples: int, fps: float) -> int:
    """Frames that cover the audio at `fps`: round(duration * fps), at least 1.

    The model itself yields slightly fewer (vocaset floors T50 * 0.6; BIWI drops an odd 50 Hz frame and halves);
    the last mesh frame is held for the remainder so video and audio have the same length.
    """
    return max(1, round(num_samples / AUDIO_RATE * fps))


def _check_audio(audio: np.ndarray, minimum: int) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
        raise BadInput(
            f"audio for FaceFormer must be mono float samples at 16 kHz, got shape {samples.shape} of "
            f"{samples.dtype}; decode and resample it to mono 16 kHz first"
        )
    if samples.shape[0] < minimum:
        raise BadInput(
            f"audio is {samples.shape[0] / AUDIO_RATE * 1000:.0f} ms long; FaceFormer needs at least "
            f"{minimum / AUDIO_RATE * 1000:.0f} ms of 16 kHz audio for one frame; use a longer clip"
        )
    if not np.all(np.isfinite(samples)):
        raise BadInput("audio contains NaN or infinite samples; re-encode the audio file")
    return samples


def _check_template(template: np.ndarray, num_vertices: int) -> np.ndarray:
    vertices = np.asarray(template, dtype=np.float32)
    if vertices.shape == (num_vertices * 3,):
        vertices = vertices.reshape(num_vertices, 3)
    if vertices.shape != (num_vertices, 3):
        raise BadInput(
            f"template has shape {vertices.shape} but this FaceFormer checkpoint drives meshes of "
            f"{num_vertices} vertices ({num_vertices}, 3); use the template of the checkpoint's topology"
        )
    return vertices


# ---------------------------------------------------------------------------------------------------------------
# Config from a checkpoint, expected layout, loading


def config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    dataset: str | None = None,
    audio_heads: int = 12,
    decoder_heads: int = 4,
) -> FaceFormerConfig:
    """Derive the config from the tensors (shapes, plus the `PPE.pe` table for the dataset); ValueError if unable."""
    state_dict = rename_weight_norm_keys(state_dict)
    shapes = {key: tuple(value.shape) for key, value in state_dict.items()}

    def shape(key: str) -> tuple[int, ...]:
        if key not in shapes:
            raise ValueError(f"key {key!r} is missing")
        return shapes[key]

    pe = state_dict.get("PPE.pe")
    if pe is None or pe.dim() != 3 or pe.shape[0] != 1:
        raise ValueError(f"PPE.pe is {'missing' if pe is None else tuple(pe.shape)}; expected (1, length, dim)")
    if dataset is None:
        dataset = detect_dataset(pe)
        if dataset is None:
            raise ValueError(
                f"cannot tell the dataset from PPE.pe {tuple(pe.shape)} (period neither 30 nor 25); "
                "pass dataset='vocaset' or 'biwi'"
            )
    return FaceFormerConfig(
        dataset=dataset,
        vertice_dim=shape("vertice_map.weight")[1],
        feature_dim=shape("audio_feature_map.weight")[0],
        n_subjects=shape("obj_vector.weight")[1],
        pe_len=pe.shape[1],
        ff_dim=shape("transformer_decoder.layers.0.linear1.weight")[0],
        n_head=decoder_heads,
        audio=wav2vec2_config_from_shapes(shapes, "audio_encoder.", num_heads=audio_heads),
    )


def build_faceformer(config: FaceFormerConfig, device: str | torch.device = "cpu") -> FaceFormer:
    """A FaceFormer with fresh weights (`device="meta"` to get shapes without allocating)."""
    with torch.device(device):
        return FaceFormer(config)


def expected_shapes(config: FaceFormerConfig) -> dict[str, tuple[int, ...]]:
    """Every checkpoint key -> shape for `config` (the old weight-norm names), built on the meta device."""
    return {key: tuple(value.shape) for key, value in build_faceformer(config, "meta").state_dict().items()}


def layout_problems(state_dict: Mapping[str, Any], config: FaceFormerConfig) -> list[str]:
    """Missing, unexpected and mis-shaped keys of a state_dict against `config` (empty when it loads strictly)."""
    have = {key: tuple(value.shape) for key, value in rename_weight_norm_keys(state_dict).items()}
    want = expected_shapes(config)
    problems = [f"missing {key} {shape}" for key, shape in want.items() if key not in have]
    problems += [f"unexpected {key} {shape}" for key, shape in have.items() if key not in want]
    problems += [
        f"{key} has shape {have[key]}, expected {shape}"
        for key, shape in want.items()
        if key in have and have[key] != shape
    ]
    return problems


def check_positional_table(pe: torch.Tensor, config: FaceFormerConfig) -> None:
    """ValueError unless the saved table equals the regenerated sin/cos table of the config's period."""
    expected = periodic_table(config.period, config.feature_dim, pe.shape[1])
    if pe.shape != expected.shape or not torch.allclose(pe.float(), expected, atol=PE_TOLERANCE, rtol=0.0):
        worst = (pe.float() - expected).abs().max().item() if pe.shape == expected.shape else float("nan")
        raise ValueError(
            f"PPE.pe {tuple(pe.shape)} is not the periodic table of period {config.period} "
            f"({config.dataset}); largest difference {worst:.3g}"
        )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """torch.load (weights only) of a plain state_dict; BadInput naming the file otherwise."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unpickling failure means an unusable file)
        raise BadInput(
            f"{path} cannot be read as a PyTorch checkpoint ({type(exc).__name__}: {exc}); "
            "replace it with the public FaceFormer vocaset.pth or biwi.pth"
        ) from exc
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        kind = type(loaded).__name__
        sample = list(loaded)[:5] if isinstance(loaded, Mapping) else []
        raise BadInput(
            f"{path} is a {kind} {sample or ''} rather than a plain state_dict of tensors; "
            "FaceFormer checkpoints are saved with torch.save(model.state_dict()) - use the public file"
        )
    return dict(loaded)


def load_faceformer(
    path: str | Path,
    *,
    dataset: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weights_name: str = "checkpoints/vocaset.pth",
    audio_heads: int = 12,
    decoder_heads: int = 4,
) -> tuple[FaceFormer, FaceFormerConfig]:
    """Load a public FaceFormer checkpoint strictly, in eval mode on `device` in `dtype` (fp16 is for CUDA).

    `weights_name` is the file's name relative to the model's common folder, reported by MissingWeights.
    `dataset` overrides the detection from `PPE.pe`; the head counts are not in the file (defaults 12 and 4).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeights(
            f"FaceFormer weights {weights_name} are missing (looked for {path}); upload the public "
            "vocaset.pth or biwi.pth (EvelynFan/FaceFormer) under that name",
            names=(weights_name,),
        )
    state_dict = rename_weight_norm_keys(read_state_dict(path))
    try:
        config = config_from_state_dict(
            state_dict, dataset=dataset, audio_heads=audio_heads, decoder_heads=decoder_heads
        )
    except ValueError as exc:
        raise BadInput(f"{path} is not a usable FaceFormer checkpoint: {exc}; use the public file") from exc
    problems = layout_problems(state_dict, config)
    if problems:
        listed = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise BadInput(
            f"{path} does not match the FaceFormer layout ({len(problems)} problems: {listed}); "
            "use the public vocaset.pth or biwi.pth"
        )
    try:
        check_positional_table(state_dict["PPE.pe"], config)
    except ValueError as exc:
        raise BadInput(f"{path}: {exc}; pass the right dataset= or use the public file") from exc
    model = build_faceformer(config, "meta")
    model.load_state_dict(state_dict, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype).eval()
    return model, config
