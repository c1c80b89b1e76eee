"""Tiny random-weight checkpoints in the exact key layouts of the public files, for end-to-end runs.

The widths are small (so CPU tests are quick) but every key name is the real one and the loaders derive the sizes
from the shapes, exactly as they do for the full files. Head counts are not in the files: the tiny FaceFormer keeps
the public defaults (12 audio heads, 4 decoder heads) by using widths divisible by them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipelines.th.neural.faceformer import FaceFormer, FaceFormerConfig
from pipelines.th.neural.fv2v.bfv2v import BFv2vConfig, BFv2vGenerator
from pipelines.th.neural.fv2v.bfv2v_motion import (
    DEFAULT_LANDMARK_SCALE,
    V16_SECTIONS,
    BFv2vDenseMotionConfig,
    LandmarkSection,
)
from pipelines.th.neural.fv2v.generators import SPADEDecoderConfig
from pipelines.th.neural.wav2vec2 import Wav2Vec2Config


def tiny_faceformer_config(vertice_dim: int) -> FaceFormerConfig:
    audio = Wav2Vec2Config(
        hidden_size=24,
        num_layers=2,
        num_heads=12,
        intermediate_size=48,
        conv_dims=(8,) * 7,
        pos_conv_kernel=8,
        pos_conv_groups=2,
    )
    return FaceFormerConfig(
        dataset="vocaset", vertice_dim=vertice_dim, feature_dim=8, n_subjects=8, pe_len=630, ff_dim=16, audio=audio
    )


def write_tiny_faceformer(path: Path, vertice_dim: int, seed: int = 0) -> Path:
    """A vocaset-layout FaceFormer (237 keys) with small random weights: its output moves the template a little."""
    torch.manual_seed(seed)
    model = FaceFormer(tiny_faceformer_config(vertice_dim))
    with torch.no_grad():
        model.vertice_map_r.weight.normal_(0.0, 0.001)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def tiny_bfv2v_config(
    sections: tuple[LandmarkSection, ...] = V16_SECTIONS, landmark_scale: float = DEFAULT_LANDMARK_SCALE
) -> BFv2vConfig:
    """The real key names (6 res-blocks, 5-level hourglass, 6 SPADE blocks, one MLP per section), tiny widths."""
    return BFv2vConfig(
        block_expansion=4,
        max_features=16,
        num_down_blocks=2,
        reshape_channel=8,
        reshape_depth=2,
        num_resblocks=6,
        dense_motion=BFv2vDenseMotionConfig(
            block_expansion=4,
            num_blocks=5,
            max_features=32,
            feature_channel=8,
            reshape_depth=2,
            compress=2,
            sections=sections,
            prior_hidden=16,
        ),
        spade=SPADEDecoderConfig(in_channels=16, out_channels=4, hidden=8, num_middle_blocks=6),
        landmark_scale=landmark_scale,
    )


def write_tiny_bfv2v(path: Path, seed: int = 0) -> Path:
    """A BFv2v checkpoint dict ({"generator": state_dict, "epoch": ...}, as MDTH saves it), v16 sections."""
    torch.manual_seed(seed)
    generator = BFv2vGenerator(tiny_bfv2v_config()).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": generator.state_dict(), "epoch": 2099}, path)
    return path
