"""Loading public face-vid2vid weights: zlh / SadTalker `.pth.tar` dicts and SadTalker `.safetensors`.

Accepted forms:
- `torch.save` dict with `generator`, `kp_detector`, `he_estimator` (zlh `Logger.save_cpk`, SadTalker
  `facevid2vid_00189-model.pth.tar`); `discriminator`, `optimizer_*` and `epoch` are ignored;
- one flat safetensors file whose keys start with `generator.`, `kp_extractor.`, `he_estimator.` (SadTalker
  `SadTalker_V0.0.2_256.safetensors`; its other nets are ignored).
Every part's configuration is derived from its own tensor shapes (so a tiny random checkpoint in the real key layout
loads through the same code), New vs Beta comes from the kernel of `first.conv.weight` (3 -> New, 7 -> Beta), and
the keys are compared with what that configuration expects BEFORE the strict load, so a wrong file fails with an
error that names the file, the part and the keys that do not fit. Modules are built on the meta device and the
file's tensors assigned, so loading does not first allocate random weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from pipelines.base import BadInput, MissingWeights
from pipelines.th.neural.fv2v.blocks import scale_from_kernel_size
from pipelines.th.neural.fv2v.dense_motion import DenseMotionConfig
from pipelines.th.neural.fv2v.generators import (
    FIRST_KERNEL,
    Fv2vGenerator,
    GeneratorConfig,
    SPADEDecoderConfig,
    Variant,
    build_generator,
)
from pipelines.th.neural.fv2v.head_pose import HEEstimator, HEEstimatorConfig, RotationConvention
from pipelines.th.neural.fv2v.keypoints import KPDetector, KPDetectorConfig

StateDict = Mapping[str, Tensor]
PARTS = ("generator", "kp_detector", "he_estimator")
SAFETENSORS_PREFIXES = {"generator.": "generator", "kp_extractor.": "kp_detector", "he_estimator.": "he_estimator"}
ModuleT = TypeVar("ModuleT", bound=nn.Module)


class Fv2vCheckpointError(BadInput):
    """The weights file is unreadable or does not have a face-vid2vid part's layout."""


# --------------------------------------------------------------------------------------------- configs from shapes


def _shape(state: StateDict, key: str) -> tuple[int, ...]:
    if key not in state:
        raise KeyError(key)
    return tuple(state[key].shape)


def _count(state: StateDict, pattern: str) -> int:
    regex = re.compile(pattern)
    indices = {m.group(1) for key in state if (m := regex.fullmatch(key))}
    return len(indices)


def detect_generator_variant(state: StateDict) -> Variant:
    """New (SPADE) if `first.conv.weight` is 3x3, Beta (original) if 7x7; the decoder keys must agree."""
    kernel = _shape(state, "first.conv.weight")[-1]
    variant: Variant
    if kernel == FIRST_KERNEL["new"]:
        variant = "new"
    elif kernel == FIRST_KERNEL["beta"]:
        variant = "beta"
    else:
        raise ValueError(f"first.conv.weight has a {kernel}x{kernel} kernel; face-vid2vid uses 3x3 (New) or 7x7 (Beta)")
    has_spade = "decoder.fc.weight" in state
    has_original = "final.weight" in state
    if variant == "new" and not has_spade:
        raise ValueError("first.conv.weight is 3x3 (New) but there is no SPADE decoder (decoder.fc.weight)")
    if variant == "beta" and not has_original:
        raise ValueError("first.conv.weight is 7x7 (Beta) but there is no original decoder (final.weight)")
    return variant


def generator_config_from_state(state: StateDict) -> GeneratorConfig:
    variant = detect_generator_variant(state)
    block_expansion, image_channel, _, _ = _shape(state, "first.conv.weight")
    max_features = _shape(state, "second.weight")[0]
    reshape_channel = _shape(state, "resblocks_3d.3dr0.conv1.weight")[0]
    dm = "dense_motion_network."
    compress, feature_channel = _shape(state, dm + "compress.weight")[:2]
    mask_out, hourglass_out = _shape(state, dm + "mask.weight")[:2]
    num_blocks = _count(state, re.escape(dm) + r"hourglass\.encoder\.down_blocks\.(\d+)\.conv\.weight")
    occlusion = state.get(dm + "occlusion.weight")
    dense = DenseMotionConfig(
        block_expansion=_shape(state, dm + "hourglass.encoder.down_blocks.0.conv.weight")[0] // 2,
        num_blocks=num_blocks,
        max_features=_shape(state, dm + f"hourglass.encoder.down_blocks.{num_blocks - 1}.conv.weight")[0],
        num_kp=mask_out - 1,
        feature_channel=feature_channel,
        reshape_depth=(occlusion.shape[1] // hourglass_out)
        if occlusion is not None
        else max_features // reshape_channel,
        compress=compress,
        estimate_occlusion_map=occlusion is not None,
    )
    spade = SPADEDecoderConfig()
    if variant == "new":
        spade = SPADEDecoderConfig(
            in_channels=_shape(state, "decoder.fc.weight")[1],
            out_channels=_shape(state, "decoder.conv_img.weight")[1],
            hidden=_shape(state, "decoder.up_0.norm_0.mlp_shared.0.weight")[0],
            num_middle_blocks=_count(state, r"decoder\.G_middle_(\d+)\.conv_0\.bias"),
            image_channel=_shape(state, "decoder.conv_img.weight")[0],
        )
    return GeneratorConfig(
        variant=variant,
        image_channel=image_channel,
        block_expansion=block_expansion,
        max_features=max_features,
        num_down_blocks=_count(state, r"down_blocks\.(\d+)\.conv\.weight"),
        reshape_channel=reshape_channel,
        reshape_depth=max_features // reshape_channel,
        num_resblocks=_count(state, r"resblocks_3d\.3dr(\d+)\.conv1\.weight"),
        dense_motion=dense,
        spade=spade,
    )


def kp_detector_config_from_state(state: StateDict, temperature: float = 0.1) -> KPDetectorConfig:
    """`down.weight` present -> scale from its kernel size (13 -> 0.25); absent -> scale 1 (Beta config)."""
    first_out, image_channel = _shape(state, "predictor.down_blocks.down0.conv.weight")[:2]
    num_blocks = _count(state, r"predictor\.down_blocks\.down(\d+)\.conv\.weight")
    reshape_channel = _shape(state, "predictor.conv.weight")[0]
    up_in = _shape(state, "predictor.up_blocks.up0.conv.weight")[1]
    scale = scale_from_kernel_size(_shape(state, "down.weight")[-1]) if "down.weight" in state else 1.0
    return KPDetectorConfig(
        block_expansion=first_out // 2,
        max_features=_shape(state, f"predictor.down_blocks.down{num_blocks - 1}.conv.weight")[0],
        num_blocks=num_blocks,
        reshape_channel=reshape_channel,
        reshape_depth=reshape_channel // up_in,
        num_kp=_shape(state, "kp.weight")[0],
        image_channel=image_channel,
        temperature=temperature,
        scale_factor=scale,
    )


def he_estimator_config_from_state(state: StateDict) -> HEEstimatorConfig:
    block_expansion, image_channel = _shape(state, "conv1.weight")[:2]
    w2, w3, w4, w5 = (_shape(state, f"conv{i}.weight")[0] for i in range(2, 6))
    b1, b3, b5, b7 = (_count(state, rf"block{i}\.b{i}_(\d+)\.conv1\.weight") for i in (1, 3, 5, 7))
    return HEEstimatorConfig(
        block_expansion=block_expansion,
        image_channel=image_channel,
        widths=(w2, w3, w4, w5),
        blocks=(b1, b3, b5, b7),
        num_bins=_shape(state, "fc_roll.weight")[0],
        num_kp=_shape(state, "fc_exp.weight")[0] // 3,
    )


# ------------------------------------------------------------------------------------------------ expected shapes

AnyConfig = GeneratorConfig | KPDetectorConfig | HEEstimatorConfig


def build_module(config: AnyConfig) -> nn.Module:
    if isinstance(config, GeneratorConfig):
        return build_generator(config)
    if isinstance(config, KPDetectorConfig):
        return KPDetector(config)
    return HEEstimator(config)


def expected_shapes(config: AnyConfig) -> dict[str, tuple[int, ...]]:
    """key -> shape of the module this config builds (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        module = build_module(config)
    return {key: tuple(t.shape) for key, t in module.state_dict().items()}


@dataclass
class KeyReport:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # key, file, expected

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 8) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({', '.join(self.missing[:limit])})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({', '.join(self.unexpected[:limit])})")
        if self.mismatched:
            shown = ", ".join(f"{k}: file {list(f)} vs expected {list(e)}" for k, f, e in self.mismatched[:limit])
            parts.append(f"{len(self.mismatched)} mis-shaped ({shown})")
        return "; ".join(parts) or "all keys match"


def compare_keys(expected: Mapping[str, tuple[int, ...]], state: StateDict) -> KeyReport:
    return KeyReport(
        missing=sorted(set(expected) - set(state)),
        unexpected=sorted(set(state) - set(expected)),
        mismatched=[
            (key, tuple(state[key].shape), expected[key])
            for key in sorted(set(state) & set(expected))
            if tuple(state[key].shape) != expected[key]
        ],
    )


# ------------------------------------------------------------------------------------------------- building parts

CONFIG_READERS: dict[str, Callable[[StateDict], AnyConfig]] = {
    "generator": generator_config_from_state,
    "kp_detector": kp_detector_config_from_state,
    "he_estimator": he_estimator_config_from_state,
}


def _strip_module_prefix(state: StateDict) -> dict[str, Tensor]:
    """DataParallel-saved files prefix every key with `module.`; the public files do not, but accept both."""
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module.") :]: value for key, value in state.items()}
    return dict(state)


def load_part(part: str, state: StateDict, origin: str = "state dict") -> nn.Module:
    """Derive the config from `state`, check every key and shape, build on meta, assign strictly, eval mode.

    Raises Fv2vCheckpointError naming `origin` (the file), the part and the keys that do not fit.
    """
    if part not in CONFIG_READERS:
        raise ValueError(f"unknown face-vid2vid part {part!r}")
    tensors = _strip_module_prefix(state)
    try:
        config = CONFIG_READERS[part](tensors)
    except (KeyError, ValueError, IndexError, ZeroDivisionError) as exc:
        detail = f"key {exc} is missing" if isinstance(exc, KeyError) else str(exc)
        raise Fv2vCheckpointError(
            f"{origin}: the '{part}' entry is not a face-vid2vid {part} ({detail}). "
            "Use a zlh Vox-256-New/Beta .pth.tar or SadTalker's facevid2vid/.safetensors file."
        ) from exc
    expected = expected_shapes(config)
    for key in expected:
        # Files written before torch 0.4.1 lack BN's num_batches_tracked; it is unused at inference.
        if key.endswith(".num_batches_tracked") and key not in tensors:
            tensors[key] = torch.tensor(0, dtype=torch.long)
    report = compare_keys(expected, tensors)
    if not report.ok:
        raise Fv2vCheckpointError(
            f"{origin}: the '{part}' entry does not match the face-vid2vid {part} layout its shapes imply: "
            f"{report.describe()}. Use a zlh Vox-256-New/Beta .pth.tar or SadTalker's facevid2vid/.safetensors file."
        )
    with torch.device("meta"):
        module = build_module(config)
    module.load_state_dict(tensors, strict=True, assign=True)
    module.eval()
    module.requires_grad_(False)
    return module


# --------------------------------------------------------------------------------------------------- reading files


@dataclass
class Fv2vStateDicts:
    """The three inference parts of a file, plus the top-level entries / prefixes that were ignored."""

    path: Path
    parts: dict[str, dict[str, Tensor]]
    ignored: list[str] = field(default_factory=list)


def read_state_dicts(path: Path | str, trusted: bool = False) -> Fv2vStateDicts:
    """Read the generator / kp_detector / he_estimator state dicts from a `.pth.tar` or `.safetensors` file.

    `.pth.tar` files are read with torch's weights-only loader; `trusted=True` falls back to full unpickling (only
    for files whose origin you trust) if the weights-only loader refuses the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeights(f"face-vid2vid weights {path} do not exist", names=(path.name,))
    if path.name.lower().endswith(".safetensors"):
        return _read_safetensors(path)
    try:
        content: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several exception types for a file that is not a checkpoint
        if not trusted or not _is_unpickling_refusal(exc):
            raise Fv2vCheckpointError(
                f"{path}: cannot be read as a torch checkpoint ({type(exc).__name__}: {str(exc)[:300]}). "
                "Re-download the file; if it is a trusted file that needs full unpickling, load it with trusted=True."
            ) from exc
        content = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(content, Mapping):
        raise Fv2vCheckpointError(f"{path}: holds a {type(content).__name__}, not a checkpoint dict")
    found = {name: content[name] for name in PARTS if isinstance(content.get(name), Mapping)}
    if not found:
        raise Fv2vCheckpointError(
            f"{path}: has none of the entries {', '.join(PARTS)} (top-level keys: {sorted(map(str, content))[:10]}). "
            "A face-vid2vid checkpoint is the dict zlh's/SadTalker's training saves."
        )
    parts = {name: {k: v for k, v in state.items() if isinstance(v, Tensor)} for name, state in found.items()}
    ignored = sorted(str(key) for key in content if key not in found)
    return Fv2vStateDicts(path, parts, ignored)


def _is_unpickling_refusal(exc: Exception) -> bool:
    import pickle

    return isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc)


def _read_safetensors(path: Path) -> Fv2vStateDicts:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        flat = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise Fv2vCheckpointError(f"{path}: cannot be read as safetensors ({exc}). Re-download the file.") from exc
    parts: dict[str, dict[str, Tensor]] = {}
    ignored: set[str] = set()
    for key, tensor in flat.items():
        prefix = next((p for p in SAFETENSORS_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            ignored.add(key.split(".", 1)[0])
            continue
        parts.setdefault(SAFETENSORS_PREFIXES[prefix], {})[key[len(prefix) :]] = tensor
    if not parts:
        raise Fv2vCheckpointError(
            f"{path}: no key starts with {', '.join(SAFETENSORS_PREFIXES)}; it is not a SadTalker face renderer file"
        )
    return Fv2vStateDicts(path, parts, sorted(ignored))


@dataclass
class Fv2vModels:
    """The loaded inference modules; `rotation_convention` follows the generator variant (New/Beta)."""

    generator: Fv2vGenerator
    kp_detector: KPDetector
    he_estimator: HEEstimator
    variant: Variant
    path: Path

    @property
    def rotation_convention(self) -> RotationConvention:
        return self.variant


def load_fv2v(
    path: Path | str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    trusted: bool = False,
) -> Fv2vModels:
    """Load generator + kp_detector + he_estimator from one file, strictly, in eval mode.

    `dtype` (e.g. torch.float16 on CUDA) converts floating-point weights; default float32. Raises MissingWeights if
    the file is absent and Fv2vCheckpointError (a BadInput) if it is not a usable face-vid2vid file.
    """
    read = read_state_dicts(path, trusted=trusted)
    absent = [name for name in PARTS if name not in read.parts]
    if absent:
        raise Fv2vCheckpointError(
            f"{read.path}: lacks the {', '.join(absent)} part(s) needed for inference "
            f"(found: {', '.join(read.parts) or 'none'})"
        )
    generator = _typed(load_part("generator", read.parts["generator"], str(read.path)), Fv2vGenerator)
    kp_detector = _typed(load_part("kp_detector", read.parts["kp_detector"], str(read.path)), KPDetector)
    he_estimator = _typed(load_part("he_estimator", read.parts["he_estimator"], str(read.path)), HEEstimator)
    for module in (generator, kp_detector, he_estimator):
        module.to(device=torch.device(device), dtype=dtype or torch.float32)
    return Fv2vModels(generator, kp_detector, he_estimator, generator.config.variant, read.path)


def _typed(module: nn.Module, cls: type[ModuleT]) -> ModuleT:
    if not isinstance(module, cls):
        raise TypeError(f"expected a {cls.__name__}, built a {type(module).__name__}")
    return module


# ------------------------------------------------------------------------------- layout hooks for the verifier


def is_generator_new(state: StateDict) -> bool:
    return (
        "dense_motion_network.mask.weight" in state
        and not any(key.startswith("dense_motion_network.prior_extractors.") for key in state)
        and _shape(state, "first.conv.weight")[-1] == FIRST_KERNEL["new"]
    )


def is_generator_beta(state: StateDict) -> bool:
    return (
        "dense_motion_network.mask.weight" in state and _shape(state, "first.conv.weight")[-1] == FIRST_KERNEL["beta"]
    )


def is_kp_detector(state: StateDict) -> bool:
    return "predictor.conv.weight" in state and "kp.weight" in state


def is_he_estimator(state: StateDict) -> bool:
    return "conv1.weight" in state and "fc_roll.weight" in state and "block1.b1_0.conv1.weight" in state


def _expected_for(part: str) -> Callable[[StateDict], dict[str, tuple[int, ...]]]:
    return lambda state: expected_shapes(CONFIG_READERS[part](_strip_module_prefix(state)))


def _loader_for(part: str) -> Callable[[StateDict], None]:
    def load(state: StateDict) -> None:
        load_part(part, state)

    return load


# (name, detect, expected key -> shape, build-and-load-strictly) for `pipelines.th.neural.verify.Layout`.
LAYOUT_SPECS: tuple[
    tuple[
        str, Callable[[StateDict], bool], Callable[[StateDict], dict[str, tuple[int, ...]]], Callable[[StateDict], None]
    ],
    ...,
] = (
    ("face-vid2vid generator New (SPADE)", is_generator_new, _expected_for("generator"), _loader_for("generator")),
    ("face-vid2vid generator Beta (original)", is_generator_beta, _expected_for("generator"), _loader_for("generator")),
    ("face-vid2vid KPDetector", is_kp_detector, _expected_for("kp_detector"), _loader_for("kp_detector")),
    ("face-vid2vid HEEstimator", is_he_estimator, _expected_for("he_estimator"), _loader_for("he_estimator")),
)
