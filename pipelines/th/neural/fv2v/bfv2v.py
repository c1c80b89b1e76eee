"""The BFv2v generator (Daniel-H-99/BFv2v as deployed by MDTH): face-vid2vid warping driven by 68 3-D landmarks.

What it is: face-vid2vid's "New" SPADE generator with the SAME appearance encoder, post-warp convs and SPADE decoder
(identical keys and shapes) and a modified dense-motion network (`bfv2v_motion`): 20 keypoints come from per-region
MLPs over the iBUG-68 landmarks and a per-frame 4x4 matrix U that carries the head pose and camera; there is no
keypoint detector and no expression vector. 414 state_dict keys at full size (386 of face-vid2vid + 28 prior-extractor
keys; hourglass input 106, decoder.conv 138, mask 21, occlusion 2208 channels).

Weights: NO public BFv2v checkpoint exists (MDTH's `bfv2v/v16.7/00002099-checkpoint.pth.tar` was shared privately).
The platform can load a user's private BFv2v checkpoint through this module but ships none; the only public warping
weights are face-vid2vid's (`checkpoint.py`).

Inputs, as MDTH prepares them (`models/BFv2v/export.py`):
- image (B, 3, H, W) RGB in [0, 1], H = W = 2*SCALE (256 for SCALE 128);
- landmarks (B, 68, 3): eos-frontalised 3-D iBUG landmarks (model units, mm) divided by SCALE = 128 (MDTH
  overwrites slots 3 and 4 with the iris centres; no v16 section reads them);
- U (B, 4, 4) per frame, acting on row vectors: [X, Y, Z, 1] (model units) @ U = pixel coordinates of the frame,
  i.e. U = (viewport . projection . view)^T of the eos fit with the frame's head rotation / translation put in.
The keypoint rule is `[prior, 1/SCALE] @ U` then `[:3] - (1, 1, 0)` (see `bfv2v_motion.project_to_grid`).

Choices where the published facts leave a detail open (each checked against MDTH's public source, documented here):
- the all-zero "mesh image" channel is the FIRST hourglass input channel (MDTH: `cat([mesh_img, input])`);
- per motion, the heatmap channel comes before the compress-channel feature (as face-vid2vid);
- section MLP inputs are the section's landmarks in the listed order, flattened point by point (x0, y0, z0, x1...);
- no perspective divide after U (w is ignored); z is U's depth / SCALE, not shifted;
- heatmaps use the projected (grid-space) keypoints, like the sparse motions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pipelines.base import BadInput, MissingWeights
from pipelines.th.neural.fv2v.bfv2v_motion import (
    DEFAULT_LANDMARK_SCALE,
    V16_SECTIONS,
    BFv2vDenseMotionConfig,
    BFv2vDenseMotionNetwork,
    LandmarkSection,
    describe_sections,
    parse_sections,
)
from pipelines.th.neural.fv2v.checkpoint import KeyReport, compare_keys, generator_config_from_state
from pipelines.th.neural.fv2v.dense_motion import DenseMotionConfig
from pipelines.th.neural.fv2v.generators import Fv2vGenerator, GeneratorConfig, SPADEDecoder

StateDict = Mapping[str, Tensor]
PRIOR_PREFIX = "dense_motion_network.prior_extractors."
DEFAULT_WEIGHTS_NAME = "checkpoints/bfv2v.pth.tar"
NO_PUBLIC_WEIGHTS = (
    "no public BFv2v weights exist (MDTH's checkpoint was shared privately); use your own BFv2v checkpoint "
    "or a public face-vid2vid one with the face-vid2vid generator"
)


@dataclass(frozen=True)
class BFv2vConfig(GeneratorConfig):
    """face-vid2vid New generator dims + the BFv2v dense-motion config (with the section layout) + SCALE.

    Shapes give every dim and each section's landmark / keypoint counts; the section indices and `landmark_scale`
    are not in the weights (defaults: the v16 layout and MDTH's 128).
    """

    dense_motion: DenseMotionConfig = field(default_factory=BFv2vDenseMotionConfig)
    landmark_scale: float = DEFAULT_LANDMARK_SCALE

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant != "new":
            raise ValueError("BFv2v uses the SPADE (New) generator; variant must be 'new'")
        if not isinstance(self.dense_motion, BFv2vDenseMotionConfig):
            raise ValueError("a BFv2vConfig needs a BFv2vDenseMotionConfig (it carries the section layout)")
        if self.landmark_scale <= 0:
            raise ValueError(f"landmark_scale must be positive, got {self.landmark_scale}")

    @property
    def motion(self) -> BFv2vDenseMotionConfig:
        assert isinstance(self.dense_motion, BFv2vDenseMotionConfig)  # checked in __post_init__
        return self.dense_motion

    @property
    def sections(self) -> tuple[LandmarkSection, ...]:
        return self.motion.sections

    @property
    def num_kp(self) -> int:
        return self.motion.num_kp


class BFv2vGenerator(Fv2vGenerator):
    """face-vid2vid's generator body with BFv2v's landmark-driven dense motion and the SPADE decoder.

    Per twin: `encode_source(image)` and `keypoints(source_landmarks, source_U)` once; per frame:
    `keypoints(driving_landmarks, driving_U)` and `warp_and_decode(feature, kp_source, kp_driving)` (inherited, so a
    caller drives BFv2v and face-vid2vid the same way once it has grid-space keypoints). `animate` does it all in one
    call and returns MDTH's output dict.
    """

    config: BFv2vConfig

    def __init__(self, config: BFv2vConfig | None = None) -> None:
        config = config or BFv2vConfig()
        super().__init__(config)
        # Replaces the base's face-vid2vid network (same keys plus prior_extractors; same slot, so same key order).
        self.dense_motion_network = BFv2vDenseMotionNetwork(config.motion)
        self.decoder = SPADEDecoder(config.spade)

    @property
    def motion_network(self) -> BFv2vDenseMotionNetwork:
        network = self.dense_motion_network
        assert isinstance(network, BFv2vDenseMotionNetwork)
        return network

    def decode(self, feature_2d: Tensor) -> Tensor:
        out: Tensor = self.decoder(feature_2d)
        return out

    def keypoints(self, landmarks: Tensor, u_matrix: Tensor, scale: float | Tensor | None = None) -> Tensor:
        """Normalised landmarks (B, 68, 3) + U (B, 4, 4) -> grid-space keypoints (B, K, 3)."""
        chosen = self.config.landmark_scale if scale is None else scale
        return self.motion_network.keypoints(landmarks, u_matrix, chosen)

    def animate(
        self,
        source_image: Tensor,
        source_landmarks: Tensor,
        driving_landmarks: Tensor,
        source_u: Tensor,
        driving_u: Tensor,
        scale: float | Tensor | None = None,
    ) -> dict[str, Tensor]:
        """MDTH's generator call: B driving frames from one (batch 1) or B source images.

        Returns 'prediction' (B, 3, H, W) in [0, 1], 'mask' (B, K+1, d, h, w), 'deformation' (B, d, h, w, 3),
        'kp_source' / 'kp_driving' (B, K, 3) in grid space and, when the model has one, 'occlusion_map' (B, 1, h, w).
        """
        kp_source = self.keypoints(source_landmarks, source_u, scale)
        kp_driving = self.keypoints(driving_landmarks, driving_u, scale)
        out = self.warp_and_decode(self.encode_source(source_image), kp_source=kp_source, kp_driving=kp_driving)
        result = {
            "prediction": out.prediction,
            "mask": out.mask,
            "deformation": out.deformation,
            "kp_source": kp_source.expand_as(kp_driving),
            "kp_driving": kp_driving,
        }
        if out.occlusion_map is not None:
            result["occlusion_map"] = out.occlusion_map
        return result


# -------------------------------------------------------------------------------------------- config from shapes


def prior_extractor_sizes(state: StateDict) -> list[tuple[int, int, int]]:
    """(landmarks read, hidden width, keypoints emitted) of each `prior_extractors.{i}`, in order."""
    sizes = []
    i = 0
    while f"{PRIOR_PREFIX}{i}.0.weight" in state:
        hidden, inputs = tuple(state[f"{PRIOR_PREFIX}{i}.0.weight"].shape)
        key_out = f"{PRIOR_PREFIX}{i}.2.weight"
        if key_out not in state:
            raise KeyError(key_out)
        outputs = tuple(state[key_out].shape)[0]
        if inputs % 3 or outputs % 3:
            raise ValueError(f"prior_extractors.{i} maps {inputs} -> {outputs} values, not whole 3-D points")
        sizes.append((inputs // 3, hidden, outputs // 3))
        i += 1
    if not sizes:
        raise KeyError(f"{PRIOR_PREFIX}0.0.weight")
    return sizes


def sections_for_state(
    state: StateDict, sections: Sequence[LandmarkSection] | Sequence[Any] | None = None
) -> tuple[LandmarkSection, ...]:
    """The layout to use: `sections` (checked against the shapes) or, if None, v16 when the shapes fit it."""
    sizes = [(n, k) for n, _, k in prior_extractor_sizes(state)]
    found = ", ".join(f"{n} landmarks -> {k} kp" for n, k in sizes)
    if sections is None:
        if sizes == [(len(s.indices), s.num_kp) for s in V16_SECTIONS]:
            return V16_SECTIONS
        raise ValueError(
            f"its {len(sizes)} prior extractors ({found}) are not the v16 layout ({describe_sections(V16_SECTIONS)}); "
            "pass the model's `common_params.sections` from its YAML config as sections="
        )
    layout = parse_sections(sections)
    wanted = [(len(s.indices), s.num_kp) for s in layout]
    if wanted != sizes:
        raise ValueError(
            f"the sections given ({describe_sections(layout)}) do not fit its {len(sizes)} prior extractors ({found})"
        )
    return layout


def config_from_state_dict(
    state: StateDict,
    *,
    sections: Sequence[LandmarkSection] | Sequence[Any] | None = None,
    landmark_scale: float = DEFAULT_LANDMARK_SCALE,
) -> BFv2vConfig:
    """Every dim from the tensor shapes (the face-vid2vid reader) + the section layout + SCALE.

    Raises KeyError for a missing key and ValueError for shapes that describe no BFv2v generator.
    """
    base = generator_config_from_state(state)
    if base.variant != "new":
        raise ValueError("first.conv.weight is 7x7 (the Beta generator); BFv2v is built on the SPADE (New) generator")
    layout = sections_for_state(state, sections)
    hidden = {h for _, h, _ in prior_extractor_sizes(state)}
    if len(hidden) != 1:
        raise ValueError(f"the prior extractors have different hidden widths {sorted(hidden)}")
    dense = {f.name: getattr(base.dense_motion, f.name) for f in fields(DenseMotionConfig)}
    motion = BFv2vDenseMotionConfig(**dense, sections=layout, prior_hidden=hidden.pop())
    shared = {f.name: getattr(base, f.name) for f in fields(GeneratorConfig) if f.name != "dense_motion"}
    return BFv2vConfig(**shared, dense_motion=motion, landmark_scale=landmark_scale)


def expected_shapes(config: BFv2vConfig) -> dict[str, tuple[int, ...]]:
    """key -> shape of the generator `config` builds (on the meta device: no memory, no time)."""
    with torch.device("meta"):
        generator = BFv2vGenerator(config)
    return {key: tuple(t.shape) for key, t in generator.state_dict().items()}


def is_bfv2v_generator(state: StateDict) -> bool:
    """BFv2v is the only generator layout with prior extractors."""
    return f"{PRIOR_PREFIX}0.0.weight" in state and "dense_motion_network.mask.weight" in state


# --------------------------------------------------------------------------------------------------------- loading


def read_generator_state(path: Path) -> dict[str, Tensor]:
    """The generator state dict of a BFv2v training checkpoint (`{'generator': ...}`) or of a bare state dict."""
    try:
        content: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for an unusable file
        raise BadInput(
            f"{path}: cannot be read as a torch checkpoint ({type(exc).__name__}: {str(exc)[:300]}); "
            "re-export it with torch.save of plain state dicts (the BFv2v training checkpoint dict is fine)"
        ) from exc
    if isinstance(content, Mapping) and isinstance(content.get("generator"), Mapping):
        content = content["generator"]
    if not isinstance(content, Mapping) or not content:
        raise BadInput(f"{path}: holds a {type(content).__name__}, not a BFv2v checkpoint or generator state dict")
    tensors = {str(k): v for k, v in content.items() if isinstance(v, Tensor)}
    if not tensors:
        raise BadInput(
            f"{path}: has no 'generator' entry and no tensors (top-level keys: {sorted(map(str, content))[:10]}); "
            "a BFv2v checkpoint is the dict BFv2v's training saves, or the generator's state_dict"
        )
    return tensors


def meta_generator_for(
    state: StateDict,
    *,
    origin: str = "state dict",
    sections: Sequence[LandmarkSection] | Sequence[Any] | None = None,
    landmark_scale: float = DEFAULT_LANDMARK_SCALE,
) -> BFv2vGenerator:
    """The (meta-device) generator `state`'s shapes imply, after checking every key and shape against it.

    Raises BadInput naming `origin` and the keys that do not fit.
    """
    if not is_bfv2v_generator(state):
        raise BadInput(
            f"{origin}: this is not a BFv2v generator (no {PRIOR_PREFIX}* keys); a face-vid2vid generator loads "
            "with the face-vid2vid loader, and " + NO_PUBLIC_WEIGHTS
        )
    try:
        config = config_from_state_dict(state, sections=sections, landmark_scale=landmark_scale)
    except (KeyError, ValueError, IndexError, ZeroDivisionError) as exc:
        detail = f"key {exc} is missing" if isinstance(exc, KeyError) else str(exc)
        raise BadInput(f"{origin}: not a usable BFv2v generator: {detail}") from exc
    with torch.device("meta"):
        generator = BFv2vGenerator(config)
    expected = {key: tuple(t.shape) for key, t in generator.state_dict().items()}
    report: KeyReport = compare_keys(expected, state)
    if not report.ok:
        raise BadInput(
            f"{origin}: does not match the BFv2v generator layout its shapes imply ({report.describe()}); "
            "the file must hold the generator BFv2v's training saved"
        )
    return generator


def build_from_state(
    state: StateDict,
    *,
    origin: str = "state dict",
    sections: Sequence[LandmarkSection] | Sequence[Any] | None = None,
    landmark_scale: float = DEFAULT_LANDMARK_SCALE,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> BFv2vGenerator:
    """Check, build on the meta device, assign the tensors strictly, move to `device` / `dtype`, eval mode."""
    if state and all(key.startswith("module.") for key in state):  # saved from a DataParallel wrapper
        state = {key[len("module.") :]: value for key, value in state.items()}
    generator = meta_generator_for(state, origin=origin, sections=sections, landmark_scale=landmark_scale)
    generator.load_state_dict(dict(state), strict=True, assign=True)
    generator.to(device=torch.device(device), dtype=dtype or torch.float32)
    generator.eval()
    generator.requires_grad_(False)
    return generator


def load_bfv2v_generator(
    source: Path | str | StateDict,
    *,
    sections: Sequence[LandmarkSection] | Sequence[Any] | None = None,
    landmark_scale: float = DEFAULT_LANDMARK_SCALE,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    weights_name: str = DEFAULT_WEIGHTS_NAME,
) -> BFv2vGenerator:
    """Load a (private) BFv2v checkpoint file or generator state dict strictly, in eval mode.

    `sections`: the model's YAML `common_params.sections` ([[indices], num_kp] entries); default v16 when the
    shapes fit it. `dtype` float16 is meant for CUDA. `weights_name` (relative to the store's common/th/ folder) is
    what MissingWeights reports when the file is absent.
    """
    if isinstance(source, Mapping):
        return build_from_state(source, sections=sections, landmark_scale=landmark_scale, device=device, dtype=dtype)
    path = Path(source)
    if not path.is_file():
        raise MissingWeights(
            f"BFv2v weights {weights_name} are missing (looked for {path}); {NO_PUBLIC_WEIGHTS}",
            names=(weights_name,),
        )
    state = read_generator_state(path)
    return build_from_state(
        state, origin=str(path), sections=sections, landmark_scale=landmark_scale, device=device, dtype=dtype
    )


def _expected_for_layout(state: StateDict) -> dict[str, tuple[int, ...]]:
    return expected_shapes(config_from_state_dict(state))


def _load_for_layout(state: StateDict) -> None:
    build_from_state(state)


# (name, detect, expected key -> shape, build-and-load-strictly) for `pipelines.th.neural.verify.Layout`; the v16
# layout is assumed (a checkpoint with other section sizes reports which sections= it needs).
LAYOUT_SPEC = (
    "BFv2v generator (landmark-driven, v16 sections)",
    is_bfv2v_generator,
    _expected_for_layout,
    _load_for_layout,
)
