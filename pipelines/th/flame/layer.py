"""The FLAME layer: identity/expression coefficients and a 15-number pose -> posed vertices and joints.

Linear blend skinning over the model's J joints (5 in FLAME: root, neck, jaw, two eyeballs):

1. v_shaped = v_template + shapedirs[:, :, :n_shape] . shape + shapedirs[:, :, S:S+n_expression] . expression
   (the unused components act as zeros, as in FLAME_PyTorch's `cat[shape, zeros, expr, zeros]`);
2. joints J = J_regressor @ v_shaped;
3. v_posed = v_shaped + posedirs . flatten(R_j - I for the non-root joints)  (pose correctives);
4. global rotations G_j = G_parent(j) R_j and translations chosen so joint j's rest position maps to its posed
   one; each vertex moves by sum_j w_vj ((G_j - I) v + t_j).

Step 4 is standard LBS written as a displacement, which equals sum_j w_vj (G_j v + t_j) because the skinning
weights sum to 1, and is exact at zero pose (the template comes back bit for bit).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from pipelines.th.flame.model_file import FlameModelData
from pipelines.th.flame.rotation import axis_angle_to_matrix

POSE_SIZE = 15  # [global(3), neck(3), jaw(3), eyes(6)] axis-angle, radians


class FlameOutput(NamedTuple):
    vertices: torch.Tensor  # (B, V, 3) metres
    joints: torch.Tensor  # (B, J, 3) metres, posed joint positions


def compose_pose(
    global_rotation: torch.Tensor,
    jaw: torch.Tensor,
    neck: torch.Tensor | None = None,
    eyes: torch.Tensor | None = None,
) -> torch.Tensor:
    """The full (B,15) pose `[global(3), neck(3), jaw(3), eyes(6)]` from its parts (absent parts are zero).

    FLAME_PyTorch's `pose_params` (B,6) is `[global, jaw]`; pass its two halves here.
    """
    batch = global_rotation.shape[0]
    zeros = global_rotation.new_zeros
    neck = zeros(batch, 3) if neck is None else neck
    eyes = zeros(batch, 6) if eyes is None else eyes
    return torch.cat([global_rotation, neck, jaw, eyes], dim=1)


class FlameLayer(nn.Module):
    """FLAME as a torch module; the model arrays become non-persistent float32 buffers (moved by `.to()`)."""

    v_template: torch.Tensor  # (V, 3)
    shape_dirs: torch.Tensor  # (V, 3, n_shape)
    expression_dirs: torch.Tensor  # (V, 3, n_expression)
    posedirs: torch.Tensor  # (V, 3, 9(J-1))
    J_regressor: torch.Tensor  # (J, V)
    lbs_weights: torch.Tensor  # (V, J)
    faces: torch.Tensor  # (F, 3) int64

    def __init__(self, data: FlameModelData, n_shape: int = 100, n_expression: int = 50) -> None:
        super().__init__()
        if not 0 <= n_shape <= data.num_shape_components:
            raise ValueError(f"n_shape={n_shape} but {data.source} has {data.num_shape_components} shape components")
        if not 0 <= n_expression <= data.num_expression_components:
            raise ValueError(
                f"n_expression={n_expression} but {data.source} has {data.num_expression_components} expression "
                "components"
            )
        if data.num_joints * 3 != POSE_SIZE:
            raise ValueError(f"{data.source} has {data.num_joints} joints; the 15-number pose needs 5")
        self.n_shape = n_shape
        self.n_expression = n_expression
        self.parents = data.parents

        def buffer(name: str, array: object, dtype: torch.dtype = torch.float32) -> None:
            self.register_buffer(name, torch.tensor(array, dtype=dtype), persistent=False)

        buffer("v_template", data.v_template)
        buffer("shape_dirs", data.shape_dirs[:, :, :n_shape])
        buffer("expression_dirs", data.expression_dirs[:, :, :n_expression])
        buffer("posedirs", data.posedirs)
        buffer("J_regressor", data.J_regressor)
        buffer("lbs_weights", data.weights)
        buffer("faces", data.faces, torch.int64)

    def forward(
        self,
        shape: torch.Tensor,
        expression: torch.Tensor,
        pose: torch.Tensor,
        translation: torch.Tensor | None = None,
    ) -> FlameOutput:
        """Pose the model.

        shape (B, n_shape), expression (B, n_expression): blendshape coefficients (unitless);
        pose (B, 15): axis-angle radians `[global, neck, jaw, eyes]` (see `compose_pose`);
        translation (B, 3) metres, added to vertices and joints, or None.
        Returns `FlameOutput(vertices (B,V,3), joints (B,J,3))`.
        """
        batch = pose.shape[0]
        expected = {
            "shape": (shape, (batch, self.n_shape)),
            "expression": (expression, (batch, self.n_expression)),
            "pose": (pose, (batch, POSE_SIZE)),
        }
        if translation is not None:
            expected["translation"] = (translation, (batch, 3))
        for name, (tensor, want) in expected.items():
            if tuple(tensor.shape) != want:
                raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {want}")

        v_shaped = (
            self.v_template
            + torch.einsum("bk,vck->bvc", shape, self.shape_dirs)
            + torch.einsum("bk,vck->bvc", expression, self.expression_dirs)
        )
        rest_joints = torch.einsum("jv,bvc->bjc", self.J_regressor, v_shaped)

        local = axis_angle_to_matrix(pose.reshape(batch, -1, 3))  # (B, J, 3, 3)
        identity = torch.eye(3, dtype=local.dtype, device=local.device)
        pose_feature = (local[:, 1:] - identity).reshape(batch, -1)  # (B, 9(J-1)), row-major per joint
        v_posed = v_shaped + torch.einsum("bp,vcp->bvc", pose_feature, self.posedirs)

        rotations, translations = self._chain(local, rest_joints)
        blended_rotation = torch.einsum("vj,bjrc->bvrc", self.lbs_weights, rotations - identity)
        blended_translation = torch.einsum("vj,bjc->bvc", self.lbs_weights, translations)
        vertices = v_posed + torch.einsum("bvrc,bvc->bvr", blended_rotation, v_posed) + blended_translation
        joints = torch.einsum("bjrc,bjc->bjr", rotations, rest_joints) + translations
        if translation is not None:
            vertices = vertices + translation[:, None, :]
            joints = joints + translation[:, None, :]
        return FlameOutput(vertices=vertices, joints=joints)

    def _chain(self, local: torch.Tensor, rest_joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Global rotations G (B,J,3,3) and translations t (B,J,3) with x -> G_j x + t_j for joint j.

        The root turns about its own rest position: t_0 = J_0 - G_0 J_0. A child's rest position moves with its
        parent, so t_j = t_p + (G_p - G_j) J_j; written this way t_j is exactly zero when nothing rotates.
        """
        root_rotation = local[:, 0]
        root_joint = rest_joints[:, 0]
        rotations = [root_rotation]
        translations = [root_joint - torch.einsum("brc,bc->br", root_rotation, root_joint)]
        for joint in range(1, local.shape[1]):
            parent = self.parents[joint]
            rotation = rotations[parent] @ local[:, joint]
            offset = torch.einsum("brc,bc->br", rotations[parent] - rotation, rest_joints[:, joint])
            rotations.append(rotation)
            translations.append(translations[parent] + offset)
        return torch.stack(rotations, dim=1), torch.stack(translations, dim=1)
