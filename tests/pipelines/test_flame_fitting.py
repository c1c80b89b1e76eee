"""FLAME fitting to 2-D landmarks on a tiny synthetic head: known parameters in, the same parameters back out.

The test head is a smooth 12 x 10 grid on the front of an ellipsoid with a nose bump (V = 120, F = 198), a jaw
hinge near the "ears" that drives the lower face, and smooth (quadratic-polynomial) identity and expression fields.
Identifiability: under weak perspective a blendshape that looks like a scale, shift or rotation of the head trades
off against the camera and head pose, and two blendshapes that overlap trade off against each other. So every
blendshape here is orthogonalised against those 7 similarity motions of the template and against each other; that
makes the identity and expression coefficients first-order identifiable from several views, and the test asserts
them (loosely). With the real FLAME basis the first components do carry head size, which only the prior pins down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.th.flame import FlameLandmarks, FlameLayer, FlameModelData, LandmarkEmbedding, compose_pose
from pipelines.th.flame.camera import project, write_obj
from pipelines.th.flame.fitting import FitConfig, FitResult, fit_flame, reproject
from pipelines.th.flame.rotation import axis_angle_to_matrix
from tests.support.flame_files import NUM_EXPRESSION, NUM_SHAPE, tiny_head

pytestmark = pytest.mark.filterwarnings("error")

TRUE_SHAPE = np.array([1.5, -1.0, 0.8, 0.0, 0.5, -0.7])
TRUE_EXPRESSION = np.array([[0.8, -0.5, 0.0, 0.3], [-0.6, 0.4, 0.7, 0.0], [0.0, 0.9, -0.4, -0.5], [0.5, 0.0, 0.3, 0.8]])
TRUE_ROTATION = np.array([[0.10, 0.25, 0.02], [-0.05, -0.20, 0.0], [0.15, 0.05, -0.05], [0.0, 0.30, 0.05]])  # rad
TRUE_JAW = np.array([0.15, 0.25, 0.05, 0.30])  # jaw opening about x, radians (9-17 degrees)
TRUE_CAMERA = np.array([[1500.0, 256.0, 240.0], [1400.0, 270.0, 250.0], [1600.0, 250.0, 260.0], [1550.0, 240.0, 255.0]])


Head = tuple[FlameModelData, FlameLayer, FlameLandmarks]


@pytest.fixture(scope="module")
def head() -> Head:
    data, embedding = tiny_head()
    return data, FlameLayer(data, NUM_SHAPE, NUM_EXPRESSION), FlameLandmarks(embedding, data.faces)


def render(
    layer: FlameLayer,
    module: FlameLandmarks,
    shape: np.ndarray,
    expression: np.ndarray,
    rotation: np.ndarray,
    jaw: np.ndarray,
    camera: np.ndarray,
) -> np.ndarray:
    """Pixel landmarks (T,68,2) of known parameters (jaw = opening about x), through the fitter's projection."""

    def as_tensor(array: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(array), dtype=torch.float32)

    frames = len(rotation)
    jaw_pose = torch.zeros(frames, 3)
    jaw_pose[:, 0] = as_tensor(jaw)
    pose = compose_pose(as_tensor(rotation), jaw_pose)
    with torch.no_grad():
        vertices = layer(as_tensor(shape)[None].expand(frames, -1), as_tensor(expression), pose).vertices
        pixels = project(module(vertices, pose), as_tensor(camera))
    return np.array(pixels.numpy(), dtype=np.float64)


def rotation_error_degrees(fitted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Angle of R_fit^T R_true per frame, degrees."""
    fit, true = (axis_angle_to_matrix(torch.tensor(np.asarray(a, np.float64))) for a in (fitted, truth))
    relative = fit.mT @ true
    cosine = ((relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cosine)).numpy()


def truth_landmarks(layer: FlameLayer, module: FlameLandmarks) -> np.ndarray:
    return render(layer, module, TRUE_SHAPE, TRUE_EXPRESSION, TRUE_ROTATION, TRUE_JAW, TRUE_CAMERA)


def test_projection_convention_is_pixels_with_y_down() -> None:
    points = torch.tensor([[[0.0, 0.0, 0.3], [0.01, 0.02, -0.1]]])
    pixels = project(points, torch.tensor([[1000.0, 100.0, 50.0]]))
    torch.testing.assert_close(pixels, torch.tensor([[[100.0, 50.0], [110.0, 30.0]]]))  # +y (up) -> smaller v


def test_noise_free_fit_recovers_landmarks_pose_jaw_camera_and_identity(head: Head) -> None:
    _, layer, module = head
    result = fit_flame(layer, module, truth_landmarks(layer, module), None, FitConfig())
    # Tolerances: exact data, so only the weak priors (1e-4..1e-3 vs a data term of order 1) and float32 limit it.
    assert result.error_px.max() < 0.5
    assert rotation_error_degrees(result.pose[:, :3], TRUE_ROTATION).max() < 2.0
    np.testing.assert_allclose(np.degrees(result.pose[:, 6]), np.degrees(TRUE_JAW), atol=2.0)
    np.testing.assert_allclose(np.degrees(result.pose[:, 7:9]), 0.0, atol=2.0)
    np.testing.assert_allclose(result.camera[:, 0], TRUE_CAMERA[:, 0], rtol=0.01)
    np.testing.assert_allclose(result.camera[:, 1:], TRUE_CAMERA[:, 1:], atol=0.5)
    np.testing.assert_allclose(result.shape, TRUE_SHAPE, atol=0.15)  # identifiable by construction (module doc)
    np.testing.assert_allclose(result.expression, TRUE_EXPRESSION, atol=0.2)
    assert np.all(result.pose[:, 3:6] == 0) and np.all(result.pose[:, 9:] == 0)
    assert result.shape.shape == (NUM_SHAPE,) and result.expression.shape == (4, NUM_EXPRESSION)
    assert result.pose.shape == (4, 15) and result.camera.shape == (4, 3) and result.error_px.shape == (4,)


def test_noisy_landmarks_fit_to_the_noise_level(head: Head) -> None:
    _, layer, module = head
    clean = truth_landmarks(layer, module)
    noisy = clean + np.random.default_rng(3).normal(scale=1.0, size=clean.shape)  # sigma = 1 px per axis
    result = fit_flame(layer, module, noisy, None, FitConfig())
    # The mean distance of 2-D N(0, 1 px) noise is sqrt(pi/2) = 1.25 px; ~14 of 136 numbers per frame are fitted
    # away, so the residual is a little below that; the fitted landmarks sit far closer to the clean ones.
    assert 0.8 < result.error_px.mean() < 1.4
    assert np.linalg.norm(reproject(layer, module, result) - clean, axis=-1).mean() < 0.6
    assert rotation_error_degrees(result.pose[:, :3], TRUE_ROTATION).max() < 2.0
    np.testing.assert_allclose(np.degrees(result.pose[:, 6]), np.degrees(TRUE_JAW), atol=3.0)


def test_rigid_stage_alone_recovers_rotation_and_camera(head: Head) -> None:
    _, layer, module = head
    zeros = np.zeros
    targets = render(layer, module, zeros(NUM_SHAPE), zeros((4, NUM_EXPRESSION)), TRUE_ROTATION, zeros(4), TRUE_CAMERA)
    progress: list[tuple[float, str]] = []
    config = FitConfig(full_iterations=0)
    result = fit_flame(layer, module, targets, None, config, progress=lambda f, m: progress.append((f, m)))
    assert result.error_px.max() < 0.05
    assert rotation_error_degrees(result.pose[:, :3], TRUE_ROTATION).max() < 0.1
    np.testing.assert_allclose(result.camera, TRUE_CAMERA, rtol=1e-3)
    assert np.all(result.shape == 0) and np.all(result.expression == 0) and np.all(result.pose[:, 3:] == 0)
    fractions = [fraction for fraction, _ in progress]
    assert len(progress) == config.chunks + 2 and fractions == sorted(fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0


def test_frames_with_zero_confidence_do_not_affect_the_fit(head: Head) -> None:
    _, layer, module = head
    clean = truth_landmarks(layer, module)
    config = FitConfig(full_iterations=100)
    reference = fit_flame(layer, module, clean, None, config)
    garbage = np.random.default_rng(5).uniform(0, 500, size=(3, 68, 2))
    garbage[1] = np.nan
    mixed = np.concatenate([garbage[:1], clean[:2], garbage[1:], clean[2:]])  # frames: g c c g g c c
    confidence = np.array([0.0, 1, 1, 0, 0, 1, 1])
    result = fit_flame(layer, module, mixed, confidence, config)
    kept = confidence > 0
    np.testing.assert_array_equal(result.shape, reference.shape)
    for name in ("expression", "pose", "camera", "error_px"):
        np.testing.assert_array_equal(getattr(result, name)[kept], getattr(reference, name), err_msg=name)
    assert np.all(np.isnan(result.error_px[~kept]))
    np.testing.assert_array_equal(result.pose[[0, 3, 4]], reference.pose[[0, 1, 2]])  # copied from the nearest


def test_bad_inputs_are_refused(head: Head) -> None:
    _, layer, module = head
    clean = truth_landmarks(layer, module)
    with pytest.raises(ValueError, match="confidence 0"):
        fit_flame(layer, module, clean, np.zeros(4), FitConfig())
    with pytest.raises(ValueError, match="expected"):
        fit_flame(layer, module, clean[:, :51], None, FitConfig())
    with pytest.raises(ValueError, match="finite"):
        fit_flame(layer, module, np.full_like(clean, np.nan), None, FitConfig())


def test_neutral_identity_mesh_is_written_as_obj(head: Head, tmp_path: Path) -> None:
    data, layer, _ = head
    result = FitResult(
        shape=TRUE_SHAPE.astype(np.float32),
        expression=np.ones((1, NUM_EXPRESSION), np.float32),
        pose=np.ones((1, 15), np.float32),
        camera=np.ones((1, 3), np.float32),
        error_px=np.zeros(1, np.float32),
    )
    vertices = result.neutral_vertices(layer)
    expected = data.v_template + data.shape_dirs @ TRUE_SHAPE.astype(np.float32)  # no expression, no pose
    np.testing.assert_allclose(vertices, expected, atol=1e-6)
    path = tmp_path / "identity.obj"
    write_obj(path, vertices, data.faces)
    lines = path.read_text().splitlines()
    vertex_lines = [line.split() for line in lines if line.startswith("v ")]
    face_lines = [line.split() for line in lines if line.startswith("f ")]
    assert len(vertex_lines) == data.num_vertices and len(face_lines) == len(data.faces)
    assert len(lines) == len(vertex_lines) + len(face_lines)
    np.testing.assert_allclose(np.array([line[1:] for line in vertex_lines], float), vertices, atol=1e-6)
    np.testing.assert_array_equal(np.array([line[1:] for line in face_lines], int), data.faces + 1)  # 1-based
    with pytest.raises(ValueError, match="outside"):
        write_obj(path, vertices, data.faces + data.num_vertices)


def test_static_only_embedding_fits_ibug_17_to_67(head: Head) -> None:
    data, layer, _ = head
    _, embedding = tiny_head()
    static_only = FlameLandmarks(LandmarkEmbedding(embedding.static_faces, embedding.static_barycentric), data.faces)
    targets = truth_landmarks(layer, head[2])  # 68 points; the contour (iBUG 0-16) is ignored
    targets[:, :17] = np.nan  # and may be missing
    result = fit_flame(layer, static_only, targets, None, FitConfig())
    assert result.error_px.max() < 0.5
    assert rotation_error_degrees(result.pose[:, :3], TRUE_ROTATION).max() < 2.0
    assert reproject(layer, static_only, result).shape == (4, 51, 2)
