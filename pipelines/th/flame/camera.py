"""Weak-perspective camera for FLAME fitting, and a plain-text OBJ writer for the fitted identity mesh.

Convention. FLAME coordinates are metres, x to the viewer's right (the subject's left), y up, z towards the camera.
Image landmarks are pixels, x right, y down, origin at the top-left corner. The camera is (s, tx, ty): s pixels per
metre, (tx, ty) the pixel where the FLAME origin (after posing) lands. Depth is dropped (orthographic):

    u = s * X + tx          v = -s * Y + ty        (the minus turns y-up into y-down)

This is DECA's `batch_orth_proj` followed by its image mapping (`y = -y`, then `(p + 1) * size / 2`), with the
translation expressed in pixels after scaling: s = size/2 * s_deca, tx = size/2 * (1 + s_deca * tx_deca),
ty = size/2 * (1 - s_deca * ty_deca).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def project(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Pixels (B,L,2) of points (B,L,3) in metres under cameras (B,3) = (s, tx, ty), as in the module docstring."""
    scale, offset = camera[:, None, :1], camera[:, None, 1:]
    flip = points.new_tensor([1.0, -1.0])
    return scale * points[..., :2] * flip + offset


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a Wavefront OBJ: one `v x y z` line per vertex (V,3), then one `f a b c` line per face (F,3).

    Face indices in the file are 1-based (OBJ's convention); `faces` holds 0-based vertex indices.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices have shape {vertices.shape}, expected (V, 3)")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces have shape {faces.shape} and dtype {faces.dtype}, expected (F, 3) integers")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces refer to vertices outside [0, {len(vertices)})")
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.astype(np.int64).tolist()]
    Path(path).write_text("\n".join(lines) + "\n", encoding="ascii")
