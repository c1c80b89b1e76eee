"""From FaceFormer's vertex sequence to the mouth landmarks of the twin's own frames (MDTH's recipe, section 7.1).

FaceFormer speaks on a template head; what carries over to the twin is how its FLAME landmarks move away from the
template's. Per output frame t built on the twin's frame f:

    mouth_px(t) = neutral_mouth_px(f) + s_f * flip(R_f @ (L(v_t) - L(template)))[mouth]

L = FLAME's 68 landmarks of a mesh (barycentric on the FLAME topology); neutral_mouth_px(f) = the twin's fitted
FLAME head in frame f's head pose and camera, with expression and jaw at zero (mouth closed); R_f and s_f = frame
f's fitted head rotation and pixels per metre; flip = (x, -y) (FLAME is y-up, pixels y-down).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipelines.base import BadInput
from pipelines.th.flame import FlameLandmarks, FlameLayer, compose_pose
from pipelines.th.flame.camera import project
from pipelines.th.flame.rotation import axis_angle_to_matrix

MOUTH = slice(48, 68)


@dataclass(frozen=True, eq=False)
class TwinFlameFit:
    """The twin's fit from preprocess (`flame/params.npz`), video rows only: (F,) frames of the normalised video."""

    shape: np.ndarray  # (n_shape,)
    pose: np.ndarray  # (F, 15)
    camera: np.ndarray  # (F, 3) s px/metre, tx, ty

    @classmethod
    def load(cls, path: Path) -> TwinFlameFit:
        try:
            with np.load(path, allow_pickle=False) as data:
                rows = data["source"] == "video"
                if not rows.any():
                    rows = np.ones(len(data["source"]), dtype=bool)
                return cls(shape=data["shape"], pose=data["pose"][rows], camera=data["camera"][rows])
        except (OSError, KeyError, ValueError) as exc:
            raise BadInput(
                f"flame/params.npz is not a readable FLAME fit ({exc}): run the twin's preprocess again"
            ) from exc


def neutral_template(layer: FlameLayer, fit: TwinFlameFit) -> np.ndarray:
    """The twin's identity mesh (V,3) in metres: fitted shape, zero expression and pose (FaceFormer's template)."""
    with torch.no_grad():
        shape = _shape_tensor(layer, fit)
        zeros = shape.new_zeros
        return np.asarray(layer(shape, zeros(1, layer.n_expression), zeros(1, 15)).vertices[0].numpy(), np.float32)


def mouth_tracks(
    vertices: np.ndarray,
    template: np.ndarray,
    layer: FlameLayer,
    landmarks: FlameLandmarks,
    fit: TwinFlameFit,
    source_frames: np.ndarray,
) -> np.ndarray:
    """(T,20,2) mouth landmarks in the pixels of each output frame's source frame (see the module docstring)."""
    if vertices.shape[1:] != template.shape:
        raise BadInput(
            f"FaceFormer gives meshes of {vertices.shape[1]} vertices but the FLAME model has {template.shape[0]}: "
            "use a FaceFormer checkpoint trained on FLAME topology (vocaset)"
        )
    dtype = layer.v_template.dtype
    with torch.no_grad():
        spoken = landmarks(torch.tensor(vertices, dtype=dtype), torch.zeros(len(vertices), 15, dtype=dtype))
        rest = landmarks(torch.tensor(template, dtype=dtype)[None], torch.zeros(1, 15, dtype=dtype))
        delta = (spoken - rest)[:, MOUTH]  # (T,20,3) metres, template frame
        frames = torch.as_tensor(source_frames, dtype=torch.long).clamp(0, len(fit.pose) - 1)
        pose = torch.tensor(fit.pose, dtype=dtype)[frames]
        camera = torch.tensor(fit.camera, dtype=dtype)[frames]
        rotation = axis_angle_to_matrix(pose[:, :3])  # (T,3,3)
        rotated = delta @ rotation.mT
        flip = rotated.new_tensor([1.0, -1.0])
        neutral = _neutral_mouth_px(layer, landmarks, fit, pose, camera)
        mouth = neutral + camera[:, None, :1] * rotated[..., :2] * flip
    return np.asarray(mouth.numpy(), dtype=np.float32)


def _neutral_mouth_px(
    layer: FlameLayer, landmarks: FlameLandmarks, fit: TwinFlameFit, pose: torch.Tensor, camera: torch.Tensor
) -> torch.Tensor:
    count = pose.shape[0]
    shape = _shape_tensor(layer, fit).expand(count, -1)
    head = compose_pose(pose[:, :3], torch.zeros_like(pose[:, :3]))  # the frame's head turn; jaw closed
    vertices = layer(shape, shape.new_zeros(count, layer.n_expression), head).vertices
    return project(landmarks(vertices, head), camera)[:, MOUTH]


def _shape_tensor(layer: FlameLayer, fit: TwinFlameFit) -> torch.Tensor:
    shape = torch.zeros(1, layer.n_shape, dtype=layer.v_template.dtype)
    count = min(layer.n_shape, len(fit.shape))
    shape[0, :count] = torch.tensor(fit.shape[:count], dtype=shape.dtype)
    return shape
