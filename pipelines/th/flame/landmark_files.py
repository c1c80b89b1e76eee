"""Read FLAME landmark embeddings (which face, which barycentric weights) from their three public file formats.

    flame_static_embedding.pkl   (RingNet)  pickle dict: lmk_face_idx uint32 (51,), lmk_b_coords f64 (51,3)
    flame_dynamic_embedding.npy  (RingNet)  0-d object array -> dict: lmk_face_idx 79 x 17 ints,
                                            lmk_b_coords list of 79 arrays (17,3)
    landmark_embedding.npy       (DECA)     0-d object array -> dict: static_lmk_faces_idx (51,),
                                            static_lmk_bary_coords (51,3), dynamic_lmk_faces_idx torch (79,17),
                                            dynamic_lmk_bary_coords torch (79,17,3), full_lmk_* (unused here)

The 51 static points are iBUG 17-67 (no jaw contour); the 17 dynamic points are iBUG 0-16, one set per head-yaw
bin. All files are read through the restricted unpickler (DECA's pickled torch tensors included).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput, MissingWeights
from pipelines.th.flame.pickle_compat import UnsafePickle, load_npy_object, load_pickle

NUM_STATIC = 51
NUM_CONTOUR = 17


@dataclass(frozen=True, eq=False)
class LandmarkEmbedding:
    """Where landmarks sit on the mesh. Face indices int64, barycentric weights float32 (each row sums to 1).

    static_faces (51,), static_barycentric (51,3): iBUG 17-67.
    contour_faces (N,17), contour_barycentric (N,17,3): iBUG 0-16 for each of N = 2*max_yaw+1 yaw bins
    (N = 79 in the released files), or None when only the static embedding is available.
    """

    static_faces: np.ndarray
    static_barycentric: np.ndarray
    contour_faces: np.ndarray | None = None
    contour_barycentric: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.static_faces.shape != (NUM_STATIC,) or self.static_barycentric.shape != (NUM_STATIC, 3):
            raise ValueError(
                f"static embedding has shapes {self.static_faces.shape}/{self.static_barycentric.shape}, "
                f"expected ({NUM_STATIC},)/({NUM_STATIC}, 3)"
            )
        if (self.contour_faces is None) != (self.contour_barycentric is None):
            raise ValueError("contour faces and barycentric weights must be given together")
        if self.contour_faces is not None and self.contour_barycentric is not None:
            bins = self.contour_faces.shape[0]
            if self.contour_faces.shape != (bins, NUM_CONTOUR) or self.contour_barycentric.shape != (
                bins,
                NUM_CONTOUR,
                3,
            ):
                raise ValueError(
                    f"contour embedding has shapes {self.contour_faces.shape}/{self.contour_barycentric.shape}, "
                    f"expected (N, {NUM_CONTOUR})/(N, {NUM_CONTOUR}, 3)"
                )
            if bins % 2 != 1:
                raise ValueError(f"contour embedding has {bins} yaw bins; expected an odd number (79 released)")

    @property
    def has_contour(self) -> bool:
        return self.contour_faces is not None


def read_ringnet_embedding(static_path: Path, dynamic_path: Path | None = None) -> LandmarkEmbedding:
    """RingNet's `flame_static_embedding.pkl` and, optionally, `flame_dynamic_embedding.npy`.

    Raises `MissingWeights` (names `flame/<file name>`) for an absent file and `BadInput` for an unreadable one.
    """
    static = _read(static_path, _load_pickle_file)
    faces, barycentric = _pair(static, "lmk_face_idx", "lmk_b_coords", static_path)
    if dynamic_path is None:
        return _embedding(static_path, faces, barycentric)
    dynamic = _read(dynamic_path, load_npy_object)
    contour_faces, contour_barycentric = _pair(dynamic, "lmk_face_idx", "lmk_b_coords", dynamic_path)
    return _embedding(dynamic_path, faces, barycentric, contour_faces, contour_barycentric)


def read_deca_embedding(path: Path) -> LandmarkEmbedding:
    """DECA's `landmark_embedding.npy` (static and contour in one file; its torch tensors become numpy)."""
    content = _read(path, lambda file_path: load_npy_object(file_path, allow_torch_tensors=True))
    faces, barycentric = _pair(content, "static_lmk_faces_idx", "static_lmk_bary_coords", path)
    contour_faces, contour_barycentric = _pair(content, "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords", path)
    return _embedding(path, faces, barycentric, contour_faces, contour_barycentric)


def _load_pickle_file(path: Path) -> Any:
    with path.open("rb") as file:
        return load_pickle(file)


def _read(path: Path, reader: Any) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        name = f"flame/{path.name}"
        raise MissingWeights(f"FLAME landmark embedding {path} is missing; upload it as {name}", names=(name,))
    try:
        content = reader(path)
    except UnsafePickle as exc:
        raise BadInput(f"landmark embedding {path} was refused: {exc}") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise BadInput(f"landmark embedding {path} is corrupt or in an unknown format: {exc}") from exc
    if not isinstance(content, dict):
        raise BadInput(f"landmark embedding {path} holds a {type(content).__name__}, expected a dict")
    return content


def _pair(content: dict[str, Any], faces_key: str, barycentric_key: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        faces = np.asarray(content[faces_key])
        barycentric = np.asarray(content[barycentric_key], dtype=np.float32)
    except KeyError as exc:
        raise BadInput(f"landmark embedding {path} has no {exc.args[0]!r} entry") from exc
    except (TypeError, ValueError) as exc:
        raise BadInput(f"landmark embedding {path}: {faces_key}/{barycentric_key} are not arrays: {exc}") from exc
    if not np.issubdtype(faces.dtype, np.integer):
        raise BadInput(f"landmark embedding {path}: {faces_key} has dtype {faces.dtype}, expected integers")
    return faces.astype(np.int64), barycentric


def _embedding(path: Path, *arrays: np.ndarray) -> LandmarkEmbedding:
    try:
        return LandmarkEmbedding(*arrays)
    except ValueError as exc:
        raise BadInput(f"landmark embedding {path}: {exc}") from exc
