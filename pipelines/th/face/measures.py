"""Per-frame measures of a face from its 68 landmarks and the frame: eye distance, head pose, sharpness.

Head pose conventions (degrees; the camera looks along +z, image x to the right, y down; the frame is assumed
unmirrored, i.e. not a selfie preview):

    yaw    > 0 when the subject turns their head to their own left (the nose moves to the image's right)
    pitch  > 0 when the subject looks up (the nose moves up in the image)
    roll   > 0 when the subject tilts their head towards their own left shoulder (clockwise in the image)

The three compose as R = yaw . pitch . roll (roll applied first, in the face's own frame). `head_pose` measures
them from looking into the lens: a face anywhere in the picture that looks at the camera is (0, 0, 0), because
what makes a frame usable is how much of the face the camera sees, not where the face sits in the picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from pipelines.th.face import ibug

BLUR_FACE_HEIGHT_PX = 128
"""The face crop is resized to this height before its sharpness is measured (see `blur_score`)."""

BLUR_FINE_SIGMA_PX = 1.0
BLUR_COARSE_SIGMA_PX = 2.5
"""The two scales (Gaussian sigma, px at BLUR_FACE_HEIGHT_PX) whose Laplacian energies `blur_score` compares."""

# A generic head, mm, in the camera's axes for a frontal face (x to the subject's left, y down, z away from the
# camera), origin between the inner eye corners, 90 mm between the outer ones. Measured, not drawn: the mean of
# MediaPipe's 3-D face meshes of five people (portrait.png, skimage's astronaut, matplotlib's grace_hopper, frames
# of talking_512.mp4 and sun.mp4) and their mirror images, mapped to iBUG points like the backend does, aligned,
# and turned so that the eye line is x and the plane through the eye and mouth corners faces the camera (that is
# what "frontal" means here). A hand-made model with textbook proportions put the same frontal photo 20 degrees
# off in pitch. Only points that stay put on the skull while the person talks: no brows or eyelids, no lips but
# their corners, no chin (the jaw drops with every syllable) and no jaw contour (detectors slide it along the
# silhouette when the head turns).
GENERIC_FACE_MM: dict[int, tuple[float, float, float]] = {
    27: (0.0, -4.0, -10.5),  # top of the nose bridge
    30: (0.0, 33.7, -38.1),  # nose tip
    31: (-13.1, 41.2, -18.5),  # right end of the nostrils
    35: (13.1, 41.2, -18.5),  # left end of the nostrils
    ibug.RIGHT_EYE_OUTER: (-45.0, -1.5, 4.5),
    ibug.RIGHT_EYE_INNER: (-19.8, 0.0, 0.0),
    ibug.LEFT_EYE_INNER: (19.8, 0.0, 0.0),
    ibug.LEFT_EYE_OUTER: (45.0, -1.5, 4.5),
    ibug.MOUTH_RIGHT: (-27.7, 62.5, 2.3),
    ibug.MOUTH_LEFT: (27.7, 62.5, 2.3),
}
POSE_LANDMARKS = tuple(GENERIC_FACE_MM)
_MODEL = np.array([GENERIC_FACE_MM[index] for index in POSE_LANDMARKS], dtype=np.float64)


def inter_ocular(points68: np.ndarray) -> float:
    """The distance between the outer eye corners (iBUG 36 and 45), px; NaN if either is missing."""
    points = np.asarray(points68, dtype=np.float64)
    return float(np.hypot(*(points[ibug.LEFT_EYE_OUTER] - points[ibug.RIGHT_EYE_OUTER])))


def head_pose(points68: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of the head whose landmarks are `points68` in a (width, height) frame.

    Solves the perspective-n-point problem between `GENERIC_FACE_MM` and the matching landmarks, with a pinhole
    camera of focal length = frame width (a ~53 degree horizontal field of view, typical of phones and webcams)
    centred on the frame, then takes out the direction from the camera to the face (see the module docstring).
    NaN for all three if the points are missing or the solver fails.

    Absolute angles carry the generic model's error, mostly in pitch, since faces differ in depth. On the five
    people the model was measured on (MediaPipe landmarks, all roughly facing the camera), yaw read within 10
    degrees of frontal and pitch -5 to +8, but +6 to +21 for the one who nods as she talks. Changes from frame to
    frame are reliable (synthetic: within 1 degree for 95 % of poses up to 45 degrees, with 0.5 px of landmark
    noise on a face 95 px between the outer eye corners).
    """
    points = np.asarray(points68, dtype=np.float64)[list(POSE_LANDMARKS)]
    if not np.isfinite(points).all():
        return (math.nan, math.nan, math.nan)
    width, height = frame_size
    camera = np.array([[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]])
    no_distortion = np.zeros(4)
    ok, rvec, tvec = cv2.solvePnP(_MODEL, points, camera, no_distortion, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return (math.nan, math.nan, math.nan)
    rvec, tvec = cv2.solvePnPRefineLM(_MODEL, points, camera, no_distortion, rvec, tvec)
    rotation, _ = cv2.Rodrigues(rvec)
    return rotation_to_angles(line_of_sight(tvec.ravel()).T @ rotation)


def line_of_sight(position: np.ndarray) -> np.ndarray:
    """The rotation of a head at `position` (camera coordinates) that looks straight into the lens (roll 0)."""
    x, y, z = (float(v) for v in position)
    yaw = math.degrees(math.atan2(-x, z))
    pitch = math.degrees(math.atan2(y, math.hypot(x, z)))
    return angles_to_rotation(yaw, pitch, 0.0)


def rotation_to_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head-to-camera rotation matrix; the inverse of `angles_to_rotation`."""
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # where the nose points
    yaw = math.atan2(forward[0], -forward[2])
    pitch = math.atan2(-forward[1], math.hypot(forward[0], forward[2]))
    rest = (_rotation_y(-yaw) @ _rotation_x(-pitch)).T @ rotation  # what is left is the roll about z
    roll = math.atan2(rest[1, 0], rest[0, 0])
    return (math.degrees(yaw), math.degrees(pitch), math.degrees(roll))


def angles_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The (3, 3) head-to-camera rotation of a head at (yaw, pitch, roll) degrees (conventions: module docstring)."""
    y, p, r = (math.radians(angle) for angle in (yaw, pitch, roll))
    return np.asarray(_rotation_y(-y) @ _rotation_x(-p) @ _rotation_z(r))


def blur_score(gray_frame: np.ndarray, box: Sequence[float]) -> float:
    """Sharpness of the face in `box` (x0, y0, x1, y1 px): how much of its detail is fine rather than coarse
    (larger is sharper; NaN when the box has no pixels in the frame).

    The face is resized to BLUR_FACE_HEIGHT_PX tall, then the variance of its Laplacian after a Gaussian of
    BLUR_FINE_SIGMA_PX is divided by the same after BLUR_COARSE_SIGMA_PX. Why not the plain variance of the
    Laplacian: that grows with the square of the contrast (a dim or flat-lit face reads as blurred) and varies
    several-fold between sharp faces (a smooth-skinned photo scored 17 where a textured video scored 84). Blur
    removes fine detail first, so the ratio falls with it whatever the exposure. Resizing first makes the score a
    property of the face rather than of its size in the frame (the same face scores alike from 100 to 1080 px tall).

    Measured on real faces (a photo and 150 frames of two talking-head videos, faces 136-313 px tall): sharp
    7.6-14.9; after a Gaussian blur of sigma 1 px at 128 px tall 4.8-7.6, of 1.5 px 3.4-5.0, of 2 px 2.6-3.7, of
    3 px 1.8-2.7; the same at 40 % brightness.
    """
    gray = np.asarray(gray_frame)
    if gray.ndim != 2:
        raise ValueError(f"blur_score needs a single-channel image, got shape {gray.shape}")
    height, width = gray.shape
    left, top, right, bottom = (float(value) for value in box)
    if not all(math.isfinite(value) for value in (left, top, right, bottom)):
        return math.nan
    x0, y0 = max(0, math.floor(left)), max(0, math.floor(top))
    x1, y1 = min(width, math.ceil(right)), min(height, math.ceil(bottom))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return math.nan
    scale = BLUR_FACE_HEIGHT_PX / (y1 - y0)
    size = (max(2, round((x1 - x0) * scale)), BLUR_FACE_HEIGHT_PX)
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    face = cv2.resize(gray[y0:y1, x0:x1].astype(np.float32), size, interpolation=interpolation)
    fine = _laplacian_energy(face, BLUR_FINE_SIGMA_PX)
    coarse = _laplacian_energy(face, BLUR_COARSE_SIGMA_PX)
    # NOTE: a flat crop (one grey level) has no detail at all; call it blurred rather than divide by zero.
    return fine / coarse if coarse > 1e-6 else 0.0


def _laplacian_energy(image: np.ndarray, sigma_px: float) -> float:
    return float(cv2.Laplacian(cv2.GaussianBlur(image, (0, 0), sigma_px), cv2.CV_32F).var())


def _rotation_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
