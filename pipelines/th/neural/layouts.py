"""Every checkpoint layout `platform models verify --model th` recognises, registered with `verify` on import.

Each entry: (name, detect(state), expected(state) -> key -> shape, load(state) strictly). The configuration is
always derived from the part's own tensor shapes, so a file of another size is reported key by key, not refused
as a whole.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.th.neural import faceformer
from pipelines.th.neural.fv2v import bfv2v, checkpoint
from pipelines.th.neural.verify import Layout, StateDict, register
from pipelines.th.neural.wav2vec2 import rename_weight_norm_keys


def _is_faceformer(state: StateDict, dataset: str) -> bool:
    pe = state.get("PPE.pe")
    return "vertice_map.weight" in state and pe is not None and faceformer.detect_dataset(pe) == dataset


def _faceformer_expected(state: StateDict) -> dict[str, tuple[int, ...]]:
    config = faceformer.config_from_state_dict(state)
    expected = faceformer.expected_shapes(config)
    # The newer weight-norm names are accepted as aliases of the old ones: report against the names the file uses.
    if any(".parametrizations." in key for key in state):
        aliases = _aliases(expected)
        return {aliases.get(key, key): shape for key, shape in expected.items()}
    return expected


def _aliases(expected: dict[str, tuple[int, ...]]) -> dict[str, str]:
    """old weight-norm key -> new (parametrizations) key, for the keys of `expected` that have one."""
    aliases = {}
    for key in expected:
        for old, new in (
            (".weight_g", ".parametrizations.weight.original0"),
            (".weight_v", ".parametrizations.weight.original1"),
        ):
            if key.endswith(old):
                aliases[key] = key[: -len(old)] + new
    return aliases


def _faceformer_load(state: StateDict) -> None:
    renamed = rename_weight_norm_keys(state)
    config = faceformer.config_from_state_dict(renamed)
    faceformer.check_positional_table(renamed["PPE.pe"], config)
    model = faceformer.build_faceformer(config, "meta")
    model.load_state_dict(renamed, strict=True, assign=True)


def _faceformer_detector(dataset: str) -> Callable[[StateDict], bool]:
    return lambda state: _is_faceformer(state, dataset)


register(
    Layout(
        "FaceFormer vocaset (FLAME topology, 30 fps)",
        _faceformer_detector("vocaset"),
        _faceformer_expected,
        _faceformer_load,
    )
)
register(Layout("FaceFormer BIWI (25 fps)", _faceformer_detector("biwi"), _faceformer_expected, _faceformer_load))

for _name, _detect, _expected, _load in (*checkpoint.LAYOUT_SPECS, bfv2v.LAYOUT_SPEC):
    register(Layout(_name, _detect, _expected, _load))
