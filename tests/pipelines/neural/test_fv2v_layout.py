"""Every face-vid2vid module's state_dict against the measured key lists of the public checkpoints.

The full-size modules are built on the meta device (no memory, no time), so these run in the fast suite.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from torch import nn

from pipelines.th.neural.fv2v.checkpoint import (
    expected_shapes,
    generator_config_from_state,
    he_estimator_config_from_state,
    kp_detector_config_from_state,
)
from pipelines.th.neural.fv2v.generators import (
    AppearanceEncoder,
    GeneratorConfig,
    OcclusionAwareGenerator,
    OcclusionAwareSPADEGenerator,
    SPADEDecoder,
)
from pipelines.th.neural.fv2v.head_pose import HEEstimator, HEEstimatorConfig
from pipelines.th.neural.fv2v.keypoints import KPDetector, KPDetectorConfig
from tests.support.fv2v_kit import (
    KEYS_FILE,
    SECTION_BETA,
    SECTION_HE,
    SECTION_KP,
    SECTION_NEW,
    reference_section,
    tiny_generator_config,
    tiny_he_config,
    tiny_kp_config,
)

pytestmark = pytest.mark.skipif(not KEYS_FILE.is_file(), reason=f"reference key list {KEYS_FILE} is absent")


def _kp_scale1_reference() -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = reference_section(SECTION_KP)
    del keys["down.weight"]  # "identical to the above except there is NO down.weight buffer"
    return keys


LAYOUTS: dict[str, tuple[Callable[[], dict[str, tuple[int, ...]]], Callable[[], nn.Module]]] = {
    "generator-new": (lambda: reference_section(SECTION_NEW), lambda: OcclusionAwareSPADEGenerator()),
    "generator-beta": (lambda: reference_section(SECTION_BETA), lambda: OcclusionAwareGenerator()),
    "kp_detector-0.25": (lambda: reference_section(SECTION_KP), lambda: KPDetector(KPDetectorConfig())),
    "kp_detector-1": (_kp_scale1_reference, lambda: KPDetector(KPDetectorConfig(scale_factor=1.0))),
    "he_estimator": (lambda: reference_section(SECTION_HE), lambda: HEEstimator()),
}


def _header_counts(title: str) -> tuple[int, int]:
    """(keys, elements) from a section's "###" line, e.g. "386 keys, 101069524 elements"."""
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("###") and title in line:
            match = re.search(r"(\d+) keys, (\d+) elements", line)
            assert match, line
            return int(match.group(1)), int(match.group(2))
    raise AssertionError(title)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_full_size_state_dict_matches_the_public_checkpoint(layout: str) -> None:
    reference_fn, build = LAYOUTS[layout]
    reference = reference_fn()
    with torch.device("meta"):
        module = build()
    ours = {key: tuple(t.shape) for key, t in module.state_dict().items()}
    assert sorted(set(reference) - set(ours)) == [], "missing keys"
    assert sorted(set(ours) - set(reference)) == [], "unexpected keys"
    assert {k: (ours[k], reference[k]) for k in reference if ours[k] != reference[k]} == {}, "mis-shaped keys"
    assert list(ours) == list(reference), "same keys, same order as the original's state_dict"


@pytest.mark.parametrize(
    ("title", "build"),
    [
        (SECTION_NEW, lambda: OcclusionAwareSPADEGenerator()),
        (SECTION_BETA, lambda: OcclusionAwareGenerator()),
        (SECTION_KP, lambda: KPDetector()),
        (SECTION_HE, lambda: HEEstimator()),
    ],
)
def test_key_and_element_counts_match_the_section_headers(title: str, build: Callable[[], nn.Module]) -> None:
    keys, elements = _header_counts(title)
    with torch.device("meta"):
        state = build().state_dict()
    assert len(state) == keys
    assert sum(t.numel() for t in state.values()) == elements


def _meta_state(reference: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape in reference.items()}


def test_configs_derived_from_the_full_shapes_are_the_vox256_configs() -> None:
    new = generator_config_from_state(_meta_state(reference_section(SECTION_NEW)))
    assert new == GeneratorConfig(variant="new")
    beta = generator_config_from_state(_meta_state(reference_section(SECTION_BETA)))
    assert beta == GeneratorConfig(variant="beta")
    assert kp_detector_config_from_state(_meta_state(reference_section(SECTION_KP))) == KPDetectorConfig()
    assert kp_detector_config_from_state(_meta_state(_kp_scale1_reference())) == KPDetectorConfig(scale_factor=1.0)
    assert he_estimator_config_from_state(_meta_state(reference_section(SECTION_HE))) == HEEstimatorConfig()


def test_expected_shapes_lists_the_reference_layouts() -> None:
    assert expected_shapes(GeneratorConfig(variant="new")) == reference_section(SECTION_NEW)
    assert expected_shapes(GeneratorConfig(variant="beta")) == reference_section(SECTION_BETA)
    assert expected_shapes(KPDetectorConfig()) == reference_section(SECTION_KP)
    assert expected_shapes(HEEstimatorConfig()) == reference_section(SECTION_HE)


@pytest.mark.parametrize(
    ("title", "config"),
    [
        (SECTION_NEW, tiny_generator_config("new", num_kp=15)),
        (SECTION_BETA, tiny_generator_config("beta", num_kp=15)),
        (SECTION_KP, tiny_kp_config()),
        (SECTION_HE, tiny_he_config()),
    ],
)
def test_tiny_test_configs_keep_the_real_key_names(title: str, config: object) -> None:
    """The fast tests' tiny models exercise the same keys as the real files (only the sizes differ)."""
    assert isinstance(config, GeneratorConfig | KPDetectorConfig | HEEstimatorConfig)
    assert list(expected_shapes(config)) == list(reference_section(title))


def test_shared_parts_have_the_generator_key_prefixes() -> None:
    """AppearanceEncoder's keys are the generator's flat first/down_blocks/second/resblocks_3d keys and
    SPADEDecoder's are its decoder.* keys (what BFv2v reuses)."""
    reference = reference_section(SECTION_NEW)
    with torch.device("meta"):
        encoder = {k: tuple(t.shape) for k, t in AppearanceEncoder().state_dict().items()}
        decoder = {f"decoder.{k}": tuple(t.shape) for k, t in SPADEDecoder().state_dict().items()}
    expected_encoder = {
        k: v for k, v in reference.items() if k.split(".")[0] in {"first", "down_blocks", "second", "resblocks_3d"}
    }
    assert encoder == expected_encoder
    assert decoder == {k: v for k, v in reference.items() if k.startswith("decoder.")}
