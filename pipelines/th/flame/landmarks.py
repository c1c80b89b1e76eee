"""3-D facial landmarks from FLAME vertices: barycentric interpolation plus the yaw-dependent jaw contour.

The 17 contour points (iBUG 0-16) are not fixed on the mesh: the visible jaw line moves as the head turns, so the
embedding stores one set per yaw bin. The yaw is that of R_global @ R_neck (the root and neck rotations of the
pose), in degrees, rounded and clamped to [-M, M] (M = 39 for the 79 released bins). Bin = yaw for yaw >= 0 and
M - yaw for yaw < 0 (so -1 deg -> bin M+1, -M -> bin 2M), the layout of RingNet's `flame_dynamic_embedding.npy`.
The 68 landmarks are [contour 17 (iBUG 0-16), static 51 (iBUG 17-67)].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipelines.base import BadInput
from pipelines.th.flame.landmark_files import LandmarkEmbedding
from pipelines.th.flame.rotation import axis_angle_to_matrix, yaw_degrees


def vertices_to_landmarks(
    vertices: torch.Tensor, faces: torch.Tensor, face_indices: torch.Tensor, barycentric: torch.Tensor
) -> torch.Tensor:
    """Points (B,L,3) inside triangles: sum_k barycentric[..., k] * vertices[faces[face_indices][..., k]].

    vertices (B,V,3); faces (F,3) int64; face_indices (L,) or (B,L) int64; barycentric (L,3) or (B,L,3).
    """
    batch = vertices.shape[0]
    if face_indices.dim() == 1:
        face_indices = face_indices.expand(batch, -1)
    if barycentric.dim() == 2:
        barycentric = barycentric.expand(batch, -1, -1)
    vertex_ids = faces[face_indices]  # (B, L, 3)
    batch_ids = torch.arange(batch, device=vertices.device)[:, None, None]
    corners = vertices[batch_ids, vertex_ids]  # (B, L, 3 corners, 3 xyz)
    return torch.einsum("blk,blkc->blc", barycentric.to(vertices.dtype), corners)


def contour_bins(pose: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Yaw bin (B,) int64 of each (B,15) pose, as described in the module docstring."""
    max_yaw = (num_bins - 1) // 2
    rotations = axis_angle_to_matrix(pose[:, :6].reshape(-1, 2, 3))  # [global, neck]
    head = rotations[:, 0] @ rotations[:, 1]
    yaw = torch.clamp(torch.round(yaw_degrees(head)), -max_yaw, max_yaw).to(torch.int64)
    return torch.where(yaw >= 0, yaw, max_yaw - yaw)


class FlameLandmarks(nn.Module):
    """Landmarks of posed FLAME meshes: 68 iBUG-ordered points with a contour embedding, else the 51 static ones."""

    faces: torch.Tensor  # (F, 3) int64
    static_faces: torch.Tensor  # (51,) int64
    static_barycentric: torch.Tensor  # (51, 3)
    contour_faces: torch.Tensor  # (N, 17) int64, only with a contour embedding
    contour_barycentric: torch.Tensor  # (N, 17, 3), only with a contour embedding

    def __init__(self, embedding: LandmarkEmbedding, faces: np.ndarray) -> None:
        super().__init__()
        num_faces = int(faces.shape[0])
        used = [embedding.static_faces]
        if embedding.contour_faces is not None:
            used.append(embedding.contour_faces.reshape(-1))
        for indices in used:
            if len(indices) and (indices.min() < 0 or indices.max() >= num_faces):
                raise BadInput(f"the landmark embedding refers to faces outside the model's {num_faces} faces")
        self.has_contour = embedding.has_contour
        self.register_buffer("faces", torch.tensor(faces, dtype=torch.int64), persistent=False)
        self.register_buffer("static_faces", torch.tensor(embedding.static_faces), persistent=False)
        self.register_buffer("static_barycentric", torch.tensor(embedding.static_barycentric), persistent=False)
        if embedding.contour_faces is not None and embedding.contour_barycentric is not None:
            self.register_buffer("contour_faces", torch.tensor(embedding.contour_faces), persistent=False)
            self.register_buffer("contour_barycentric", torch.tensor(embedding.contour_barycentric), persistent=False)

    def forward(self, vertices: torch.Tensor, pose: torch.Tensor | None = None) -> torch.Tensor:
        """Landmarks (B,68,3) from vertices (B,V,3) and the (B,15) pose that posed them (needed for the contour);
        (B,51,3) when the embedding has no contour, in which case `pose` is ignored.
        """
        static = vertices_to_landmarks(vertices, self.faces, self.static_faces, self.static_barycentric)
        if not self.has_contour:
            return static
        if pose is None:
            raise ValueError("the contour landmarks depend on the head pose; pass the (B, 15) pose")
        bins = contour_bins(pose, int(self.contour_faces.shape[0]))
        contour = vertices_to_landmarks(vertices, self.faces, self.contour_faces[bins], self.contour_barycentric[bins])
        return torch.cat([contour, static], dim=1)
