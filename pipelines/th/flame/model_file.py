"""Load a FLAME model file (`generic_model.pkl`, `female_model.pkl`, `male_model.pkl`, or an `.npz` conversion).

The `.pkl` files are Python-2 pickles of a dict with keys `f, J_regressor, kintree_table, J, bs_style, weights,
posedirs, v_template, shapedirs, bs_type`; `shapedirs` is a chumpy `Ch` and `J_regressor` a scipy csc matrix.
They are read through `pickle_compat` (no chumpy, no scipy, no code execution). An `.npz` conversion holds the
same keys as plain arrays (`J_regressor` dense) and is read with `allow_pickle=False`.

Shapes for FLAME 2020 generic: V=5023 vertices, J=5 joints (root, neck, jaw, two eyeballs), F=9976 faces,
shapedirs (V,3,400) = 300 identity + 100 expression components, posedirs (V,3,36) = 4 non-root joints x 9.
Units are metres.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput, MissingWeights
from pipelines.th.flame.pickle_compat import UnsafePickle, load_pickle

# NOTE: every released FLAME (2017, 2019, 2020, 2023) has 300 identity + 100 expression components; the file
# itself only records their sum, so any other total must be split by the caller.
RELEASED_TOTAL_COMPONENTS = 400
RELEASED_SHAPE_COMPONENTS = 300

_REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")


@dataclass(frozen=True, eq=False)
class FlameModelData:
    """The arrays of one FLAME model, read-only. float32 unless stated; V vertices, J joints, F faces.

    v_template    (V,3)        rest-pose mean head, metres
    shapedirs     (V,3,S+E)    identity components [0, S) then expression components [S, S+E), metres per unit
    posedirs      (V,3,9(J-1)) pose-corrective offsets per entry of (R_j - I) for the non-root joints
    J_regressor   (J,V)        joint locations as linear combinations of vertices (dense)
    kintree_table (2,J) int64  row 0 = parent of each joint (the root's entry is a sentinel; see `parents`)
    weights       (V,J)        linear-blend-skinning weights, rows sum to 1
    faces         (F,3) int64  triangle vertex indices
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    num_shape_components: int
    posedirs: np.ndarray
    J_regressor: np.ndarray
    kintree_table: np.ndarray
    weights: np.ndarray
    faces: np.ndarray
    source: str = ""

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.J_regressor.shape[0])

    @property
    def num_expression_components(self) -> int:
        return int(self.shapedirs.shape[2]) - self.num_shape_components

    @property
    def shape_dirs(self) -> np.ndarray:
        """Identity blendshapes (V,3,S)."""
        return self.shapedirs[:, :, : self.num_shape_components]

    @property
    def expression_dirs(self) -> np.ndarray:
        """Expression blendshapes (V,3,E)."""
        return self.shapedirs[:, :, self.num_shape_components :]

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent joint of each joint, root = -1 (the file stores a sentinel there, as FLAME_PyTorch notes)."""
        return (-1, *(int(value) for value in self.kintree_table[0, 1:]))


def load_flame_model(
    path: Path, *, num_shape_components: int | None = None, weights_name: str | None = None
) -> FlameModelData:
    """Read and validate a FLAME model file.

    `num_shape_components` splits `shapedirs` into identity and expression parts; when None, a 400-component
    file is split 300/100 as released, and any other total is refused (the file does not record the split).
    `weights_name` is the name reported in `MissingWeights.names` (default `flame/<file name>`).

    Raises `MissingWeights` if the file is absent and `BadInput` (naming the file) if it is unreadable, refers to
    a global outside the allow-list, or its arrays are inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        name = weights_name or f"flame/{path.name}"
        raise MissingWeights(f"FLAME model file {path} is missing; upload it as {name}", names=(name,))
    raw = _read_npz(path) if path.suffix == ".npz" else _read_pickle(path)
    try:
        return _build(raw, path, num_shape_components)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"FLAME model file {path} is not a valid FLAME model: {exc}") from exc


def _read_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            raw = load_pickle(file)
    except UnsafePickle as exc:
        raise BadInput(f"FLAME model file {path} was refused: {exc}") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise BadInput(f"FLAME model file {path} is corrupt or not a pickle: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadInput(f"FLAME model file {path} holds a {type(raw).__name__}, expected a dict of arrays")
    return raw


def _read_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInput(f"FLAME model file {path} is not a readable .npz: {exc}") from exc


def _as_array(raw: dict[str, Any], key: str, dtype: type) -> np.ndarray:
    value = np.asarray(raw[key])
    if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
        raise ValueError(f"{key} has non-numeric dtype {value.dtype}")
    array: np.ndarray = np.ascontiguousarray(value, dtype=dtype)
    array.flags.writeable = False
    return array


def _build(raw: dict[str, Any], path: Path, num_shape_components: int | None) -> FlameModelData:
    missing = [key for key in _REQUIRED_KEYS if key not in raw]
    if missing:
        raise KeyError(f"missing keys {missing}")
    v_template = _as_array(raw, "v_template", np.float32)
    shapedirs = _as_array(raw, "shapedirs", np.float32)
    posedirs = _as_array(raw, "posedirs", np.float32)
    regressor = _as_array(raw, "J_regressor", np.float32)
    kintree = _as_array(raw, "kintree_table", np.int64)
    weights = _as_array(raw, "weights", np.float32)
    faces = _as_array(raw, "f", np.int64)

    if v_template.ndim != 2 or v_template.shape[1] != 3:
        raise ValueError(f"v_template has shape {v_template.shape}, expected (V, 3)")
    num_vertices = v_template.shape[0]
    if regressor.ndim != 2 or regressor.shape[1] != num_vertices:
        raise ValueError(f"J_regressor has shape {regressor.shape}, expected (J, {num_vertices})")
    num_joints = regressor.shape[0]
    expected = {
        "shapedirs": (shapedirs, (num_vertices, 3, None)),
        "posedirs": (posedirs, (num_vertices, 3, 9 * (num_joints - 1))),
        "weights": (weights, (num_vertices, num_joints)),
        "kintree_table": (kintree, (2, num_joints)),
        "f": (faces, (None, 3)),
    }
    shape: tuple[int | None, ...]
    for key, (array, shape) in expected.items():
        if len(array.shape) != len(shape) or any(
            want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
        ):
            raise ValueError(f"{key} has shape {array.shape}, expected {shape} (None = any)")
    if len(faces) and (faces.min() < 0 or faces.max() >= num_vertices):
        raise ValueError(f"f refers to vertices outside [0, {num_vertices})")
    for joint in range(1, num_joints):
        if not 0 <= kintree[0, joint] < joint:
            raise ValueError(f"joint {joint} has parent {kintree[0, joint]}; parents must precede their children")

    total = shapedirs.shape[2]
    if num_shape_components is None:
        if total != RELEASED_TOTAL_COMPONENTS:
            raise ValueError(
                f"shapedirs has {total} components; pass num_shape_components to split identity from expression"
            )
        num_shape_components = RELEASED_SHAPE_COMPONENTS
    if not 0 <= num_shape_components <= total:
        raise ValueError(f"num_shape_components={num_shape_components} is outside [0, {total}]")
    return FlameModelData(
        v_template=v_template,
        shapedirs=shapedirs,
        num_shape_components=num_shape_components,
        posedirs=posedirs,
        J_regressor=regressor,
        kintree_table=kintree,
        weights=weights,
        faces=faces,
        source=path.name,
    )
