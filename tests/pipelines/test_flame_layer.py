"""FlameLayer on a tiny random FLAME: numerical checks that catch wrong wiring of LBS."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipelines.th.flame import FlameLayer, FlameModelData, compose_pose
from pipelines.th.flame.rotation import axis_angle_to_matrix

NUM_VERTICES, NUM_JOINTS, NUM_SHAPE, NUM_EXPRESSION = 40, 5, 6, 4


def tiny_model(seed: int = 0, root_only_weights: bool = False) -> FlameModelData:
    rng = np.random.default_rng(seed)
    weights = rng.random((NUM_VERTICES, NUM_JOINTS))
    if root_only_weights:
        weights = np.zeros_like(weights)
        weights[:, 0] = 1.0
    regressor = rng.random((NUM_JOINTS, NUM_VERTICES))

    def frozen(array: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        array = np.ascontiguousarray(array, dtype=dtype)
        array.flags.writeable = False
        return array

    return FlameModelData(
        v_template=frozen(rng.normal(size=(NUM_VERTICES, 3)) * 0.1),
        shapedirs=frozen(rng.normal(size=(NUM_VERTICES, 3, NUM_SHAPE + NUM_EXPRESSION)) * 0.01),
        num_shape_components=NUM_SHAPE,
        posedirs=frozen(rng.normal(size=(NUM_VERTICES, 3, 9 * (NUM_JOINTS - 1))) * 0.01),
        J_regressor=frozen(regressor / regressor.sum(axis=1, keepdims=True)),
        kintree_table=frozen(np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]), np.int64),
        weights=frozen(weights / weights.sum(axis=1, keepdims=True)),
        faces=frozen(np.array([[0, 1, 2], [2, 3, 4]]), np.int64),
        source="tiny",
    )


def zeros(batch: int, layer: FlameLayer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.zeros(batch, layer.n_shape), torch.zeros(batch, layer.n_expression), torch.zeros(batch, 15)


def test_zero_everything_reproduces_the_template_exactly() -> None:
    data = tiny_model()
    layer = FlameLayer(data, n_shape=NUM_SHAPE, n_expression=NUM_EXPRESSION)
    output = layer(*zeros(2, layer))
    assert output.vertices.shape == (2, NUM_VERTICES, 3) and output.joints.shape == (2, NUM_JOINTS, 3)
    template = torch.from_numpy(data.v_template.copy())
    assert torch.equal(output.vertices[0], template) and torch.equal(output.vertices[1], template)
    expected_joints = torch.from_numpy(data.J_regressor.copy()) @ template
    torch.testing.assert_close(output.joints[0], expected_joints)


def test_global_rotation_is_rigid_about_the_root_joint() -> None:
    data = tiny_model()
    layer = FlameLayer(data, n_shape=NUM_SHAPE, n_expression=NUM_EXPRESSION)
    shape, expression, pose = zeros(1, layer)
    axis_angle = torch.tensor([0.3, -0.5, 0.2])
    pose[0, :3] = axis_angle
    vertices = layer(shape, expression, pose).vertices[0].double()

    angle = float(axis_angle.norm())
    axis = (axis_angle / angle).double()
    cross = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]]).double()
    rotation = torch.eye(3).double() + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross  # by hand
    template = torch.from_numpy(data.v_template.copy()).double()
    root = torch.from_numpy(data.J_regressor[0].copy()).double() @ template
    expected = root + (template - root) @ rotation.T
    torch.testing.assert_close(vertices, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.cdist(vertices, vertices), torch.cdist(template, template), atol=1e-6, rtol=0)


@pytest.mark.parametrize("component", [0, 3, NUM_SHAPE - 1])
def test_shape_coefficient_moves_vertices_by_its_blendshape(component: int) -> None:
    data = tiny_model()
    layer = FlameLayer(data, n_shape=NUM_SHAPE, n_expression=NUM_EXPRESSION)
    shape, expression, pose = zeros(1, layer)
    shape[0, component] = 1.0
    vertices = layer(shape, expression, pose).vertices[0]
    expected = torch.from_numpy(data.v_template + data.shapedirs[:, :, component])
    assert torch.equal(vertices, expected)


def test_expression_coefficient_uses_the_columns_after_the_shape_ones() -> None:
    data = tiny_model()
    layer = FlameLayer(data, n_shape=2, n_expression=3)  # fewer than the file has, as FLAME_PyTorch allows
    shape, expression, pose = zeros(1, layer)
    expression[0, 1] = 1.0
    vertices = layer(shape, expression, pose).vertices[0]
    assert torch.equal(vertices, torch.from_numpy(data.v_template + data.shapedirs[:, :, NUM_SHAPE + 1]))


def test_pose_correctives_follow_the_flattened_rotation_minus_identity() -> None:
    data = tiny_model(root_only_weights=True)  # skinning then does nothing for a jaw turn
    layer = FlameLayer(data, n_shape=NUM_SHAPE, n_expression=NUM_EXPRESSION)
    shape, expression, _ = zeros(1, layer)
    jaw = torch.tensor([[0.25, 0.05, -0.1]])
    pose = compose_pose(torch.zeros(1, 3), jaw)
    vertices = layer(shape, expression, pose).vertices[0].double()

    feature = np.zeros(9 * (NUM_JOINTS - 1))
    feature[9:18] = (axis_angle_to_matrix(jaw.double())[0] - torch.eye(3).double()).numpy().ravel()  # jaw = joint 2
    expected = data.v_template.astype(np.float64) + data.posedirs.astype(np.float64) @ feature
    np.testing.assert_allclose(vertices.numpy(), expected, atol=1e-6, rtol=0)


def test_batch_items_are_independent_and_translation_is_added() -> None:
    data = tiny_model()
    layer = FlameLayer(data, n_shape=NUM_SHAPE, n_expression=NUM_EXPRESSION)
    generator = torch.Generator().manual_seed(0)
    shape = torch.randn(3, NUM_SHAPE, generator=generator)
    expression = torch.randn(3, NUM_EXPRESSION, generator=generator)
    pose = torch.randn(3, 15, generator=generator) * 0.3
    translation = torch.randn(3, 3, generator=generator)
    together = layer(shape, expression, pose, translation)
    for item in range(3):
        alone = layer(shape[item : item + 1], expression[item : item + 1], pose[item : item + 1])
        torch.testing.assert_close(together.vertices[item], alone.vertices[0] + translation[item])
        torch.testing.assert_close(together.joints[item], alone.joints[0] + translation[item])


def test_eye_rotation_turns_eye_vertices_about_the_eye_joint() -> None:
    data = tiny_model()
    weights = np.zeros((NUM_VERTICES, NUM_JOINTS), dtype=np.float32)
    weights[:, 0] = 1.0
    weights[:5, 3] = 1.0  # vertices 0-4 belong to the first eyeball only
    weights[:5, 0] = 0.0
    posedirs = np.zeros_like(data.posedirs)
    data = FlameModelData(**{**data.__dict__, "weights": weights, "posedirs": posedirs})
    layer = FlameLayer(data, n_shape=NUM_SHAPE, n_expression=NUM_EXPRESSION)
    shape, expression, _ = zeros(1, layer)
    eyes = torch.tensor([[0.0, 0.4, 0.0, 0.0, 0.0, 0.0]])
    output = layer(shape, expression, compose_pose(torch.zeros(1, 3), torch.zeros(1, 3), eyes=eyes))

    template = torch.from_numpy(data.v_template.copy())
    eye_joint = torch.from_numpy(data.J_regressor[3].copy()) @ template
    rotation = axis_angle_to_matrix(eyes[0, :3])
    torch.testing.assert_close(output.vertices[0, :5], eye_joint + (template[:5] - eye_joint) @ rotation.T)
    assert torch.equal(output.vertices[0, 5:], template[5:])
    torch.testing.assert_close(output.joints[0, 3], eye_joint)


def test_wrong_shapes_are_refused() -> None:
    layer = FlameLayer(tiny_model(), n_shape=NUM_SHAPE, n_expression=NUM_EXPRESSION)
    shape, expression, pose = zeros(2, layer)
    with pytest.raises(ValueError, match="pose has shape"):
        layer(shape, expression, pose[:, :6])
    with pytest.raises(ValueError, match="n_shape=7"):
        FlameLayer(tiny_model(), n_shape=NUM_SHAPE + 1)


def test_rodrigues_is_exact_at_zero_and_orthonormal_elsewhere() -> None:
    vectors = torch.tensor([[0.0, 0.0, 0.0], [1e-6, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, -1.0, 0.5]], dtype=torch.float64)
    matrices = axis_angle_to_matrix(vectors)
    assert torch.equal(matrices[0], torch.eye(3, dtype=torch.float64))
    identity = torch.eye(3, dtype=torch.float64).expand(4, 3, 3)
    torch.testing.assert_close(matrices @ matrices.transpose(1, 2), identity)
    torch.testing.assert_close(matrices[2, 0, 2], torch.tensor(math.sin(2.0), dtype=torch.float64))
