"""FLAME-format files made at test time: fake chumpy/scipy pickles, the three landmark-embedding layouts, and a
tiny synthetic head whose parameters a fit can recover. Nothing here is a real FLAME file (users hold those).
"""

from __future__ import annotations

import math
import pickle
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.th.flame import FlameModelData, LandmarkEmbedding

# The tiny head: a ROWS x COLS grid, NUM_SHAPE identity and NUM_EXPRESSION expression components, 79 yaw bins.
ROWS, COLS, NUM_SHAPE, NUM_EXPRESSION, NUM_BINS = 10, 12, 6, 4, 79


@contextmanager
def fake_modules(**classes: type) -> Iterator[None]:
    """Install throwaway modules (name -> class placed in it) for pickling, then remove them again."""
    saved = {name: sys.modules.get(name) for name in _parents_of(classes)}
    try:
        for module_name in _parents_of(classes):
            sys.modules[module_name] = types.ModuleType(module_name)
        for dotted, cls in classes.items():
            module_name, _, attribute = dotted.rpartition(".")
            cls.__module__ = module_name
            cls.__qualname__ = attribute
            setattr(sys.modules[module_name], attribute, cls)
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _parents_of(classes: dict[str, type]) -> list[str]:
    names: list[str] = []
    for dotted in classes:
        parts = dotted.split(".")[:-1]
        for end in range(1, len(parts) + 1):
            if ".".join(parts[:end]) not in names:
                names.append(".".join(parts[:end]))
    return names


class FakeCh:
    """Pickles like chumpy's `Ch`: its state dict holds the value under `x` (plus chumpy bookkeeping)."""

    def __init__(self, value: np.ndarray) -> None:
        self.x = value
        self._dirty_vars: set[str] = set()
        self.label = None


class FakeCsc:
    """Pickles like scipy's csc_matrix (state: data, indices, indptr, _shape, maxprint)."""

    def __init__(self, dense: np.ndarray) -> None:
        rows, cols = np.nonzero(dense.T)  # column-major order: rows here are columns
        self.data = dense.T[rows, cols]
        self.indices = cols.astype(np.int32)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[1]))]).astype(np.int32)
        self._shape = dense.shape
        self.maxprint = 50


def write_flame_pickle(path: Path, arrays: dict[str, np.ndarray], protocol: int = 2) -> None:
    """A FLAME-format pickle: shapedirs as a fake chumpy Ch, J_regressor as a fake scipy csc matrix."""
    with fake_modules(**{"chumpy.ch.Ch": FakeCh, "scipy.sparse._csc.csc_matrix": FakeCsc}):
        content: dict[str, Any] = dict(arrays)
        content["shapedirs"] = FakeCh(arrays["shapedirs"])
        content["J_regressor"] = FakeCsc(arrays["J_regressor"])
        content["bs_style"] = "lbs"
        content["bs_type"] = "lrotmin"
        path.write_bytes(pickle.dumps(content, protocol=protocol))
    assert "chumpy" not in sys.modules
    assert not isinstance(sys.modules.get("scipy.sparse._csc"), types.ModuleType) or hasattr(
        sys.modules["scipy.sparse._csc"], "__file__"
    ), "the fake scipy module was left behind"


def write_ringnet_files(folder: Path, arrays: dict[str, np.ndarray]) -> tuple[Path, Path]:
    static_path = folder / "flame_static_embedding.pkl"
    static = {
        "lmk_face_idx": arrays["static_faces"].astype(np.uint32),
        "lmk_b_coords": arrays["static_barycentric"].astype(np.float64),
    }
    static_path.write_bytes(pickle.dumps(static, protocol=0))
    dynamic_path = folder / "flame_dynamic_embedding.npy"
    dynamic = {
        "lmk_face_idx": [[int(index) for index in row] for row in arrays["contour_faces"]],
        "lmk_b_coords": [np.asarray(rows, dtype=np.float64) for rows in arrays["contour_barycentric"]],
    }
    np.save(dynamic_path, np.array(dynamic, dtype=object), allow_pickle=True)
    return static_path, dynamic_path


def write_deca_file(path: Path, arrays: dict[str, np.ndarray]) -> None:
    content = {
        "static_lmk_faces_idx": arrays["static_faces"].astype(np.int64),
        "static_lmk_bary_coords": arrays["static_barycentric"].astype(np.float64),
        "dynamic_lmk_faces_idx": torch.tensor(arrays["contour_faces"], dtype=torch.int64),
        "dynamic_lmk_bary_coords": torch.tensor(arrays["contour_barycentric"], dtype=torch.float32),
        "full_lmk_faces_idx": np.zeros((1, 68), dtype=np.int64),
        "full_lmk_bary_coords": np.zeros((1, 68, 3), dtype=np.float32),
    }
    np.save(path, np.array(content, dtype=object), allow_pickle=True)


def _cell(row: int, col: int) -> int:
    return 2 * (row * (COLS - 1) + col)  # first of the two triangles of grid cell (row, col)


def tiny_head() -> tuple[FlameModelData, LandmarkEmbedding]:
    rng = np.random.default_rng(7)
    azimuth, elevation = np.meshgrid(np.linspace(-1.2, 1.2, COLS), np.linspace(-0.9, 0.9, ROWS))
    template = np.stack(
        [
            0.075 * np.sin(azimuth) * np.cos(elevation),
            0.10 * np.sin(elevation),
            0.09 * np.cos(azimuth) * np.cos(elevation) + 0.02 * np.exp(-(azimuth**2 + elevation**2) / 0.1),
        ],
        axis=-1,
    ).reshape(-1, 3)
    index = np.arange(ROWS * COLS).reshape(ROWS, COLS)
    faces = []
    for row in range(ROWS - 1):
        for col in range(COLS - 1):
            a, b, c, d = index[row, col], index[row, col + 1], index[row + 1, col], index[row + 1, col + 1]
            faces += [[a, b, c], [b, d, c]]
    num_vertices = len(template)

    # Blendshapes: quadratic fields, orthogonalised against similarity motions of the template and each other.
    x, y, z = (template / 0.1).T
    features = np.stack([np.ones_like(x), x, y, z, x * x, y * y, z * z, x * y, y * z, x * z], axis=1)
    centred = template - template.mean(0)
    motions = [np.tile(np.eye(3)[axis], (num_vertices, 1)) for axis in range(3)] + [centred]
    motions += [np.cross(np.eye(3)[axis], centred) for axis in range(3)]
    motions += [np.outer(centred[:, col], np.eye(3)[row]) for row in range(3) for col in range(3) if row != col]
    motions += [np.outer(centred[:, axis], np.eye(3)[axis]) for axis in range(2)]
    fields = [features @ rng.normal(size=(10, 3)) for _ in range(NUM_SHAPE + NUM_EXPRESSION)]
    basis, _ = np.linalg.qr(np.stack([m.reshape(-1) for m in motions + fields], axis=1))
    shapedirs = basis[:, len(motions) :].reshape(num_vertices, 3, -1) * 0.004 * math.sqrt(num_vertices)

    # Joints: root = mean vertex, neck = bottom row, jaw hinge = mean of the two outer columns low down, eyes.
    regressor = np.zeros((5, num_vertices))
    regressor[0] = 1.0
    regressor[1, index[0]] = 1.0
    regressor[2, index[2:5, [0, -1]].reshape(-1)] = 1.0
    regressor[3, index[6, 3:5]] = 1.0
    regressor[4, index[6, 7:9]] = 1.0
    jaw = 1 / (1 + np.exp((template[:, 1] + 0.03) / 0.01)) * (np.abs(azimuth.reshape(-1)) < 0.9)
    weights = np.stack([1 - jaw, 0 * jaw, jaw, 0 * jaw, 0 * jaw], axis=1)

    def frozen(array: object, dtype: type = np.float32) -> np.ndarray:
        result: np.ndarray = np.ascontiguousarray(array, dtype=dtype)
        result.flags.writeable = False
        return result

    data = FlameModelData(
        v_template=frozen(template),
        shapedirs=frozen(shapedirs),
        num_shape_components=NUM_SHAPE,
        posedirs=frozen(rng.normal(size=(num_vertices, 3, 36)) * 1e-4),
        J_regressor=frozen(regressor / regressor.sum(1, keepdims=True)),
        kintree_table=frozen([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        weights=frozen(weights),
        faces=frozen(faces, np.int64),
        source="tiny-head",
    )
    # Landmarks: eyebrows/eyes/nose (iBUG 17-47) on the upper face, mouth (iBUG 48-67) on the jaw-driven lower
    # face, jaw contour (iBUG 0-16) along a U from the sides to the chin (the same faces in every yaw bin).
    upper = [_cell(row, col) for row in range(4, 9) for col in range(2, 9)]
    lower = [_cell(row, col) + half for row in range(1, 4) for col in range(3, 8) for half in (0, 1)]
    static = np.concatenate([rng.choice(upper, 31, replace=False), rng.choice(lower, 20, replace=False)])
    columns = np.round(np.linspace(0, COLS - 2, 17)).astype(int)
    contour = np.array([_cell(round(5 * abs(col - 5) / 5), col) for col in columns])
    embedding = LandmarkEmbedding(
        static_faces=static.astype(np.int64),
        static_barycentric=rng.dirichlet(np.ones(3), 51).astype(np.float32),
        contour_faces=np.tile(contour, (NUM_BINS, 1)).astype(np.int64),
        contour_barycentric=np.tile(rng.dirichlet(np.ones(3), 17), (NUM_BINS, 1, 1)).astype(np.float32),
    )
    return data, embedding




def write_tiny_flame_store(common_th: Path) -> FlameModelData:
    """Write the tiny head as `flame/generic_model.pkl` (chumpy-style pickle, components padded with zeros to the
    released 300 + 100) and DECA's `flame/landmark_embedding.npy` under `common_th` (a store's common/th/)."""
    data, embedding = tiny_head()
    folder = common_th / "flame"
    folder.mkdir(parents=True, exist_ok=True)
    vertices = data.num_vertices
    shapedirs = np.zeros((vertices, 3, 400))
    shapedirs[:, :, :NUM_SHAPE] = data.shape_dirs
    shapedirs[:, :, 300 : 300 + NUM_EXPRESSION] = data.expression_dirs
    arrays = {
        "v_template": np.asarray(data.v_template, dtype=np.float64),
        "shapedirs": shapedirs,
        "posedirs": np.asarray(data.posedirs, dtype=np.float64),
        "J_regressor": np.asarray(data.J_regressor, dtype=np.float64),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": np.asarray(data.weights, dtype=np.float64),
        "f": np.asarray(data.faces, dtype=np.uint32),
        "J": np.zeros((5, 3)),
    }
    write_flame_pickle(folder / "generic_model.pkl", arrays)
    write_deca_file(
        folder / "landmark_embedding.npy",
        {
            "static_faces": embedding.static_faces,
            "static_barycentric": embedding.static_barycentric,
            "contour_faces": embedding.contour_faces,
            "contour_barycentric": embedding.contour_barycentric,
        },
    )
    return data
