"""BFv2v's dense-motion network: keypoints from 68 3-D face landmarks instead of a learned keypoint detector.

BFv2v (Daniel-H-99/BFv2v, deployed by Daniel-H-99/MDTH) keeps face-vid2vid's dense-motion machinery but derives
the keypoints from landmarks:

1. Sections. One small MLP per face region ("section"): `prior_extractors.{i}` = Linear(3*|sec_i|, 256), ReLU,
   Linear(256, 3*k_i), Tanh. It reads the region's landmarks, in the listed order, flattened as (x0, y0, z0, x1, ...)
   and emits k_i keypoints ("priors") in the landmarks' normalised model space (landmarks / SCALE). The priors of all
   sections are concatenated in section order (v16 layout: 20 keypoints).
2. Projection. A per-frame 4x4 matrix U (eos viewport . projection . view, transposed so it acts on row vectors) maps
   a landmark [X, Y, Z, 1] in model units to pixels of the 2*SCALE-pixel frame. A prior p = X / SCALE is mapped as
   `[p, 1/SCALE] @ U` (= pixels / SCALE, in [0, 2]) and then shifted by -(1, 1, 0) into grid_sample space [-1, 1]
   for x and y; z keeps U's depth / SCALE (no perspective divide; eos fits an affine camera). Head pose lives in U,
   so the same landmarks under another U give keypoints of a turned head.
3. Hourglass input. As in face-vid2vid, per motion (identity + K keypoints) one heatmap channel then the compressed
   warped feature, plus ONE extra channel in FRONT: the "mesh image", all zeros in the deployed code. So
   (K+1)*(compress+1)+1 channels (106 for v16), hence decoder.conv 138 = 32 + 106, mask K+1 = 21 and occlusion
   138*16 = 2208 input channels.

The layout of sections is a training choice kept in the model's YAML, not in the weights (the weights give only the
per-section landmark and keypoint counts), so it comes from configuration with the v16 layout as the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pipelines.base import BadInput
from pipelines.th.neural.fv2v.blocks import Hourglass3d
from pipelines.th.neural.fv2v.dense_motion import DenseMotionConfig, DenseMotionNetwork

NUM_LANDMARKS = 68  # iBUG-68 (MDTH puts the iris centres into slots 3 and 4, which no v16 section reads)
DEFAULT_LANDMARK_SCALE = 128.0  # MDTH: SCALE = frame size // 2 for its 256x256 frames
PRIOR_HIDDEN = 256  # hidden width of every prior extractor (hard-coded in the original)
MESH_IMAGE_CHANNELS = 1  # the all-zero "mesh image" channel in front of the hourglass input
GRID_SHIFT = (1.0, 1.0, 0.0)  # pixels / SCALE in [0, 2] -> grid [-1, 1] for x and y; z is not shifted


@dataclass(frozen=True)
class LandmarkSection:
    """One face region: the iBUG indices its MLP reads (in this order) and how many keypoints it emits."""

    indices: tuple[int, ...]
    num_kp: int

    @property
    def in_features(self) -> int:
        return 3 * len(self.indices)

    @property
    def out_features(self) -> int:
        return 3 * self.num_kp


def _span(first: int, last: int) -> tuple[int, ...]:
    return tuple(range(first, last + 1))


# Daniel-H-99/BFv2v config/vox-256-renderer_v16.yaml, the layout of MDTH's deployed checkpoint: 7 sections, 20 kp.
V16_SECTIONS: tuple[LandmarkSection, ...] = (
    LandmarkSection(_span(36, 41), 3),  # right eye
    LandmarkSection(_span(42, 47), 3),  # left eye
    LandmarkSection(_span(48, 59), 6),  # outer lips
    LandmarkSection(_span(60, 67), 4),  # inner lips
    LandmarkSection(_span(0, 2), 1),  # jaw, right end
    LandmarkSection(_span(14, 16), 1),  # jaw, left end
    LandmarkSection(_span(27, 30), 2),  # nose bridge
)


def total_keypoints(sections: Sequence[LandmarkSection]) -> int:
    return sum(section.num_kp for section in sections)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_sections(raw: Sequence[Any], *, source: str = "the sections setting") -> tuple[LandmarkSection, ...]:
    """Read a layout written as in the BFv2v YAML (`[[indices...], num_kp], ...`); `source` names it in errors."""
    fix = "write it as a list of [list of iBUG indices 0-67, keypoint count >= 1] entries, e.g. [[36, 37, 38], 1]"
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) == 0:
        raise BadInput(f"{source}: expected a non-empty list of sections, got {raw!r}; {fix}")
    sections = []
    for number, entry in enumerate(raw):
        if isinstance(entry, LandmarkSection):
            sections.append(entry)
            continue
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise BadInput(f"{source}: section {number} is {entry!r}, not a pair [indices, keypoint count]; {fix}")
        indices, num_kp = entry
        if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence) or len(indices) == 0:
            raise BadInput(f"{source}: section {number} has no landmark indices ({indices!r}); {fix}")
        if not all(_is_int(i) and 0 <= i < NUM_LANDMARKS for i in indices):
            raise BadInput(f"{source}: section {number} has an index outside 0-{NUM_LANDMARKS - 1}: {indices!r}; {fix}")
        if len(set(indices)) != len(indices):
            raise BadInput(f"{source}: section {number} repeats a landmark index: {indices!r}; {fix}")
        if not _is_int(num_kp) or num_kp < 1:
            raise BadInput(f"{source}: section {number} has keypoint count {num_kp!r}; {fix}")
        sections.append(LandmarkSection(tuple(indices), num_kp))
    return tuple(sections)


def describe_sections(sections: Sequence[LandmarkSection]) -> str:
    """'36-41:3, 42-47:3, ...' for messages."""
    parts = []
    for section in sections:
        idx = section.indices
        contiguous = list(idx) == list(range(idx[0], idx[0] + len(idx)))
        span = f"{idx[0]}-{idx[-1]}" if contiguous and len(idx) > 1 else ",".join(map(str, idx))
        parts.append(f"{span}:{section.num_kp}")
    return ", ".join(parts)


@dataclass(frozen=True)
class BFv2vDenseMotionConfig(DenseMotionConfig):
    """face-vid2vid's dense-motion dims plus the section layout; `num_kp` follows the layout (0 = derive it)."""

    sections: tuple[LandmarkSection, ...] = V16_SECTIONS
    num_kp: int = 0
    prior_hidden: int = PRIOR_HIDDEN

    def __post_init__(self) -> None:
        total = total_keypoints(self.sections)
        if self.num_kp == 0:
            object.__setattr__(self, "num_kp", total)
        elif self.num_kp != total:
            raise ValueError(f"num_kp {self.num_kp} differs from the sections' total of {total} keypoints")

    @property
    def hourglass_in_features(self) -> int:
        return super().hourglass_in_features + MESH_IMAGE_CHANNELS


def prior_extractor(section: LandmarkSection, hidden: int = PRIOR_HIDDEN) -> nn.Sequential:
    """Keys 0.weight (hidden, 3n), 0.bias, 2.weight (3k, hidden), 2.bias; Tanh: priors in [-1, 1] = +-SCALE units."""
    return nn.Sequential(
        nn.Linear(section.in_features, hidden), nn.ReLU(), nn.Linear(hidden, section.out_features), nn.Tanh()
    )


def _as_scale(scale: float | Tensor, batch: int, like: Tensor) -> Tensor:
    value = torch.as_tensor(scale, dtype=like.dtype, device=like.device)
    return value.reshape(-1, 1, 1).expand(batch, 1, 1) if value.dim() else value.expand(batch, 1, 1)


def project_to_grid(priors: Tensor, u_matrix: Tensor, scale: float | Tensor = DEFAULT_LANDMARK_SCALE) -> Tensor:
    """Priors (B, K, 3) in landmarks/SCALE units -> keypoints (B, K, 3) in grid_sample space via U (B, 4, 4).

    `[p, 1/scale] @ U` gives pixels / scale of a 2*scale-pixel frame; minus (1, 1, 0) puts x and y in [-1, 1].
    `scale` is a number or one per frame (B,).
    """
    bs, num_kp, _ = priors.shape
    if u_matrix.shape != (bs, 4, 4):
        raise ValueError(f"U must be (B, 4, 4) = ({bs}, 4, 4) per frame, got {tuple(u_matrix.shape)}")
    # U holds pixel-sized numbers: multiply in at least float32 even for a half-precision model
    work = torch.promote_types(priors.dtype, torch.float32)
    points = priors.to(work)
    homogeneous_w = (1.0 / _as_scale(scale, bs, points)).expand(bs, num_kp, 1)
    projected = torch.cat([points, homogeneous_w], dim=2) @ u_matrix.to(work)
    return (projected[:, :, :3] - projected.new_tensor(GRID_SHIFT)).to(priors.dtype)


class MeshImageHourglass3d(Hourglass3d):
    """The hourglass whose FIRST input channel is BFv2v's "mesh image", all zeros in the deployed code (MDTH
    concatenates it in front of the heatmaps and warped features); `in_features` counts it."""

    def forward(self, x: Tensor) -> Tensor:
        mesh_image = x.new_zeros(x.shape[0], MESH_IMAGE_CHANNELS, *x.shape[2:])
        return super().forward(torch.cat([mesh_image, x], dim=1))


class BFv2vDenseMotionNetwork(DenseMotionNetwork):
    """face-vid2vid's network (hourglass, mask, compress, norm, occlusion) + `prior_extractors.{i}` + the mesh channel.

    The keypoints are computed by `keypoints(landmarks, U)` (once per twin for the source) and then passed to the
    inherited `forward(feature, kp_driving, kp_source)` exactly like face-vid2vid's keypoints; the only change in
    the forward pass is the mesh channel, which the hourglass adds itself.
    """

    config: BFv2vDenseMotionConfig

    def __init__(self, config: BFv2vDenseMotionConfig | None = None) -> None:
        config = config or BFv2vDenseMotionConfig()
        super().__init__(config)
        # Same slot as the base's hourglass (so the same key order), now prepending the mesh channel.
        self.hourglass = MeshImageHourglass3d(
            config.block_expansion, config.hourglass_in_features, config.num_blocks, config.max_features
        )
        self.sections = config.sections
        self.prior_extractors = nn.ModuleList(prior_extractor(s, config.prior_hidden) for s in config.sections)

    def section_landmarks(self, landmarks: Tensor, i: int) -> Tensor:
        """(B, 68, 3) -> (B, 3*|sec_i|): section i's landmarks in its listed order, flattened point by point."""
        index = torch.tensor(self.sections[i].indices, dtype=torch.long, device=landmarks.device)
        return landmarks.index_select(1, index).flatten(1)

    def priors(self, landmarks: Tensor) -> Tensor:
        """Normalised landmarks (B, 68, 3) -> priors (B, K, 3), sections concatenated in layout order."""
        if landmarks.dim() != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 3):
            raise ValueError(f"landmarks must be (B, {NUM_LANDMARKS}, 3), got {tuple(landmarks.shape)}")
        landmarks = landmarks.to(self.compress.weight.dtype)
        bs = landmarks.shape[0]
        parts = [
            mlp(self.section_landmarks(landmarks, i)).view(bs, -1, 3) for i, mlp in enumerate(self.prior_extractors)
        ]
        return torch.cat(parts, dim=1)

    def keypoints(self, landmarks: Tensor, u_matrix: Tensor, scale: float | Tensor = DEFAULT_LANDMARK_SCALE) -> Tensor:
        """Normalised landmarks (B, 68, 3) and U (B, 4, 4) -> keypoints (B, K, 3) in grid space."""
        return project_to_grid(self.priors(landmarks), u_matrix, scale)
