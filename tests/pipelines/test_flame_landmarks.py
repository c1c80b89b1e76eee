"""FLAME landmarks: the three embedding file formats, barycentric interpolation, 68 iBUG points, yaw contour."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipelines.base import BadInput, MissingWeights
from pipelines.th.flame import (
    FlameLandmarks,
    LandmarkEmbedding,
    contour_bins,
    read_deca_embedding,
    read_ringnet_embedding,
    vertices_to_landmarks,
)
from tests.support.flame_files import write_deca_file, write_ringnet_files

NUM_VERTICES, NUM_BINS = 40, 79
FACES = np.array([[i, (i + 1) % NUM_VERTICES, (i + 2) % NUM_VERTICES] for i in range(NUM_VERTICES)], dtype=np.int64)
CORNER_0 = np.tile(np.array([1.0, 0.0, 0.0]), (1, 1))


def vertex_aligned_arrays() -> dict[str, np.ndarray]:
    """Static point i sits on vertex (i % V); contour point k of bin b sits on vertex (b + k) % V."""
    static_faces = np.arange(51) % NUM_VERTICES
    contour_faces = (np.arange(NUM_BINS)[:, None] + np.arange(17)[None, :]) % NUM_VERTICES
    return {
        "static_faces": static_faces,
        "static_barycentric": np.tile([1.0, 0.0, 0.0], (51, 1)),
        "contour_faces": contour_faces,
        "contour_barycentric": np.tile([1.0, 0.0, 0.0], (NUM_BINS, 17, 1)),
    }


def random_vertices(batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, NUM_VERTICES, 3, generator=torch.Generator().manual_seed(0))


def yaw_pose(global_yaw_deg: float, neck_yaw_deg: float = 0.0) -> torch.Tensor:
    pose = torch.zeros(1, 15)
    pose[0, 1] = math.radians(global_yaw_deg)
    pose[0, 4] = math.radians(neck_yaw_deg)
    return pose


def assert_embedding_equals(embedding: LandmarkEmbedding, arrays: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(embedding.static_faces, arrays["static_faces"])
    np.testing.assert_array_equal(embedding.static_barycentric, arrays["static_barycentric"].astype(np.float32))
    assert embedding.contour_faces is not None and embedding.contour_barycentric is not None
    np.testing.assert_array_equal(embedding.contour_faces, arrays["contour_faces"])
    np.testing.assert_array_equal(embedding.contour_barycentric, arrays["contour_barycentric"].astype(np.float32))
    assert embedding.static_faces.dtype == np.int64 and embedding.contour_barycentric.dtype == np.float32


def test_ringnet_files_round_trip(tmp_path: Path) -> None:
    arrays = vertex_aligned_arrays()
    static_path, dynamic_path = write_ringnet_files(tmp_path, arrays)
    assert_embedding_equals(read_ringnet_embedding(static_path, dynamic_path), arrays)
    static_only = read_ringnet_embedding(static_path)
    assert not static_only.has_contour


def test_deca_file_with_torch_tensors_round_trips(tmp_path: Path) -> None:
    arrays = vertex_aligned_arrays()
    path = tmp_path / "landmark_embedding.npy"
    write_deca_file(path, arrays)
    assert_embedding_equals(read_deca_embedding(path), arrays)


def test_missing_embedding_names_the_weights_key(tmp_path: Path) -> None:
    with pytest.raises(MissingWeights) as caught:
        read_ringnet_embedding(tmp_path / "flame_static_embedding.pkl")
    assert caught.value.names == ("flame/flame_static_embedding.pkl",)


class Payload:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.target),))


def test_npy_with_an_unexpected_global_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "created-by-pickle"
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, np.array({"static_lmk_faces_idx": Payload(target)}, dtype=object), allow_pickle=True)
    with pytest.raises(BadInput, match="refusing to load global"):
        read_deca_embedding(path)
    assert not target.exists()


def test_wrong_embedding_shape_is_bad_input(tmp_path: Path) -> None:
    arrays = vertex_aligned_arrays()
    arrays["static_faces"] = arrays["static_faces"][:50]
    static_path, _ = write_ringnet_files(tmp_path, arrays)
    with pytest.raises(BadInput, match="static embedding has shapes"):
        read_ringnet_embedding(static_path)


def test_vertex_aligned_embedding_returns_those_vertices() -> None:
    vertices = random_vertices(batch=2)
    face_indices = torch.tensor([3, 7, 39])
    points = vertices_to_landmarks(vertices, torch.from_numpy(FACES), face_indices, torch.tensor(CORNER_0).expand(3, 3))
    assert torch.equal(points, vertices[:, [3, 7, 39]])


def test_barycentric_weights_mix_the_three_corners() -> None:
    vertices = random_vertices()
    weights = torch.tensor([[0.2, 0.3, 0.5]])
    points = vertices_to_landmarks(vertices, torch.from_numpy(FACES), torch.tensor([5]), weights)
    expected = 0.2 * vertices[0, 5] + 0.3 * vertices[0, 6] + 0.5 * vertices[0, 7]
    torch.testing.assert_close(points[0, 0], expected)


@pytest.mark.parametrize(
    ("global_yaw", "neck_yaw", "expected_bin"),
    [
        (0.0, 0.0, 0),
        (10.0, 0.0, 10),
        (-10.0, 0.0, 49),
        (10.0, 5.0, 15),
        (-1.0, 0.0, 40),
        (60.0, 0.0, 39),
        (-60.0, 0.0, 78),
    ],
)
def test_contour_bin_follows_yaw_of_root_and_neck(global_yaw: float, neck_yaw: float, expected_bin: int) -> None:
    assert contour_bins(yaw_pose(global_yaw, neck_yaw), NUM_BINS).tolist() == [expected_bin]


def test_68_landmarks_in_ibug_order_with_contour_switching_on_yaw_sign() -> None:
    arrays = vertex_aligned_arrays()
    embedding = LandmarkEmbedding(
        arrays["static_faces"],
        arrays["static_barycentric"].astype(np.float32),
        arrays["contour_faces"],
        arrays["contour_barycentric"].astype(np.float32),
    )
    landmarks = FlameLandmarks(embedding, FACES)
    vertices = random_vertices()
    static_vertices = vertices[0, np.arange(51) % NUM_VERTICES]

    for yaw, expected_bin in ((10.0, 10), (-10.0, 49)):
        points = landmarks(vertices, yaw_pose(yaw))
        assert points.shape == (1, 68, 3)
        contour_vertices = vertices[0, (expected_bin + np.arange(17)) % NUM_VERTICES]
        assert torch.equal(points[0, :17], contour_vertices)  # iBUG 0-16: jaw contour
        assert torch.equal(points[0, 17:], static_vertices)  # iBUG 17-67: static inner face
    left, right = landmarks(vertices, yaw_pose(10.0)), landmarks(vertices, yaw_pose(-10.0))
    assert not torch.equal(left[0, :17], right[0, :17])


def test_static_only_embedding_gives_51_points_and_contour_needs_a_pose() -> None:
    arrays = vertex_aligned_arrays()
    static_only = LandmarkEmbedding(arrays["static_faces"], arrays["static_barycentric"].astype(np.float32))
    assert FlameLandmarks(static_only, FACES)(random_vertices()).shape == (1, 51, 3)
    full = LandmarkEmbedding(
        arrays["static_faces"],
        arrays["static_barycentric"].astype(np.float32),
        arrays["contour_faces"],
        arrays["contour_barycentric"].astype(np.float32),
    )
    with pytest.raises(ValueError, match="pass the"):
        FlameLandmarks(full, FACES)(random_vertices())
    with pytest.raises(BadInput, match="outside the model's 3 faces"):
        FlameLandmarks(full, FACES[:3])
