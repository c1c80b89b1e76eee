"""Axis-angle rotations for FLAME: Rodrigues' formula that is exact at zero, and the head yaw angle.

Why not the usual `norm(v + 1e-8)` trick: it makes a zero rotation differ from the identity by ~1e-8, so a
zero pose would not reproduce the template exactly. Here the small-angle branch uses the Taylor series.
"""

from __future__ import annotations

import torch

_SMALL_ANGLE_RAD = 1e-4


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3) in radians (angle = vector length).

    R = I + a K + b K^2 with K the cross-product matrix of the (unnormalised) vector, a = sin(t)/t and
    b = (1 - cos t)/t^2 = 2 sin^2(t/2)/t^2 (no cancellation); a zero vector gives exactly the identity.
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle vectors must have 3 components, got shape {tuple(axis_angle.shape)}")
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis_angle.shape[:-1], 3, 3)
    angle_sq = (axis_angle * axis_angle).sum(-1)
    small = angle_sq < _SMALL_ANGLE_RAD**2
    angle = torch.sqrt(torch.where(small, torch.ones_like(angle_sq), angle_sq))
    sin_term = torch.where(small, 1.0 - angle_sq / 6.0, torch.sin(angle) / angle)
    cos_term = torch.where(small, 0.5 - angle_sq / 24.0, 2.0 * torch.sin(angle / 2.0) ** 2 / (angle * angle))
    identity = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(skew)
    return identity + sin_term[..., None, None] * skew + cos_term[..., None, None] * (skew @ skew)


def yaw_degrees(rotation: torch.Tensor) -> torch.Tensor:
    """Rotation about the y axis (degrees) of rotation matrices (..., 3, 3): atan2(-R[2,0], hypot(R[0,0], R[1,0])).

    This is the y angle of an x-y-z Euler decomposition; positive for a right-handed turn about +y.
    """
    return torch.rad2deg(torch.atan2(-rotation[..., 2, 0], torch.hypot(rotation[..., 0, 0], rotation[..., 1, 0])))
