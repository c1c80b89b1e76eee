"""Aligned face crops, and the transforms that put a generated crop back into the frame it came from.

Every crop is defined by a similarity transform (rotation, uniform scale, shift) from frame pixels to the *unit
crop*, the square [0, 1]^2 with the crop's top-left corner at (0, 0) and its bottom-right corner at (1, 1). Keeping
the transform in unit coordinates makes it independent of the crop's pixel size: `transform_for_size` turns it
into the pixel transform of a 256, 512 or any other crop, and all of them show the same region of the frame.
Pixel coordinates follow OpenCV (and `types.py`): (0, 0) is the centre of the top-left pixel, so unit u lands on
pixel u * size - 0.5.

The alignment rule (FFHQ's, from the eye centres and mouth corners, with a wider crop):
    e   = right eye centre -> left eye centre (means of the six eye points), the eye-to-eye vector
    m   = mid-eyes -> mid-mouth (midpoint of the corners 48 and 54), the eye-to-mouth vector
    x   = e - rot90(m), the crop's horizontal axis: the eye line and the face's vertical axis, averaged, so
          neither a squint nor an open mouth alone tilts the crop
    side = CROP_SCALE * 2 * max(2 |e|, 1.8 |m|): eye distance sets the size of a frontal face, eye-to-mouth
          distance takes over when the head turns and the eyes get closer in the picture
    centre = mid-eyes + 0.1 m
With CROP_SCALE = 1 this is FFHQ's crop, which cuts through the hair; 1.25 makes the side five eye distances of a
frontal face, which keeps the whole head with a margin and some neck inside, like the VoxCeleb crops that
FOMM / face-vid2vid style warping models are trained on (eyes just above the middle, the face from ear to ear about
40 % of the width).
A rule rather than a least-squares fit of all 68 points: jaw, lips and brows move with speech and expressions,
and a fit to them would make the crop breathe with the mouth.

Over a video the rule's parameters (centre, log side, angle) are smoothed in time with a zero-phase Gaussian
(`SMOOTHING_S`), not the matrix entries (averaging rotation matrices shrinks them); frames without a face take
the parameters of the nearest frame with one.

The transforms file (`save_transforms`, an uncompressed .npz, no pickles, byte-identical for the same values):
    format_version   int64 ()         FORMAT_VERSION
    unit_transforms  float64 (N,2,3)  frame pixels -> unit crop, per frame
    found            bool (N,)        frames whose transform comes from their own face (else from a neighbour)
    frame_size       int64 (2,)       (width, height) of the frames the transforms apply to
    fps              float64 ()       frame rate of the video (0 for a still photo)
    rule             str ()           ALIGNMENT_RULE, the alignment rule and its constants
"""

from __future__ import annotations

import functools
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from pipelines.base import BadInput
from pipelines.th.face import ibug
from pipelines.th.face.types import NUM_LANDMARKS

FORMAT_VERSION = 1
CROP_SCALE = 1.25
ALIGNMENT_RULE = f"ffhq-eyes-mouth scale={CROP_SCALE}"
# Standard deviation of the temporal smoothing. 0.1 s (2.5 frames at 25 fps) cuts the frame-to-frame jitter that
# landmark noise gives the crop by over an order of magnitude, while the crop of a head swaying at a third of a
# hertz trails it by under a pixel; longer windows lag visibly (the landmarks arrive smoothed already).
SMOOTHING_S = 0.1
DEFAULT_FEATHER = 0.08
_MIN_SIDE_PX = 2.0  # a face smaller than this is a degenerate detection, not a face


@dataclass(frozen=True)
class CropParams:
    """The similarity of each frame's crop: `centre` (N,2) frame px, `side` (N,) frame px, `angle` (N,) radians of
    the crop's x axis in the frame (counter-clockwise on screen is negative, as y points down)."""

    centre: np.ndarray
    side: np.ndarray
    angle: np.ndarray


@dataclass(frozen=True, eq=False)
class CropTransforms:
    """A loaded transforms file: `unit` (N,2,3) frame px -> unit crop, and what they were made for."""

    unit: np.ndarray
    found: np.ndarray
    frame_size: tuple[int, int]
    fps: float
    rule: str

    def __len__(self) -> int:
        return int(self.unit.shape[0])

    def for_size(self, size: int) -> np.ndarray:
        """(N,2,3) frame px -> px of a size x size crop."""
        return transform_for_size(self.unit, size)


def crop_params(points: np.ndarray) -> CropParams:
    """The alignment rule (module docstring) applied to (N,68,2) landmarks; rows of NaN points give NaN."""
    points = np.asarray(points, dtype=np.float64)
    right_eye = points[:, list(ibug.RIGHT_EYE)].mean(axis=1)
    left_eye = points[:, list(ibug.LEFT_EYE)].mean(axis=1)
    mid_eyes = (right_eye + left_eye) / 2
    mid_mouth = (points[:, ibug.MOUTH_RIGHT] + points[:, ibug.MOUTH_LEFT]) / 2
    eye_to_eye = left_eye - right_eye
    eye_to_mouth = mid_mouth - mid_eyes
    # rot90(m) = (-m_y, m_x): the eye-to-mouth vector turned a quarter against the eye line's direction, so
    # that subtracting it adds to the eye-to-eye vector
    x_axis = eye_to_eye - np.stack([-eye_to_mouth[:, 1], eye_to_mouth[:, 0]], axis=1)
    side = CROP_SCALE * 2 * np.maximum(2 * np.hypot(*eye_to_eye.T), 1.8 * np.hypot(*eye_to_mouth.T))
    return CropParams(
        centre=mid_eyes + 0.1 * eye_to_mouth,
        side=side,
        angle=np.arctan2(x_axis[:, 1], x_axis[:, 0]),
    )


def transforms_from_params(params: CropParams) -> np.ndarray:
    """(N,2,3) frame px -> unit crop transforms: p -> R(-angle) (p - centre) / side + 0.5."""
    cos, sin = np.cos(params.angle) / params.side, np.sin(params.angle) / params.side
    linear = np.stack([np.stack([cos, sin], axis=-1), np.stack([-sin, cos], axis=-1)], axis=-2)
    shift = 0.5 - np.einsum("nij,nj->ni", linear, params.centre)
    return np.concatenate([linear, shift[:, :, None]], axis=2)


def estimate_transforms(
    points: np.ndarray,
    found: np.ndarray,
    fps: float,
    *,
    smooth: bool = True,
    smoothing_s: float = SMOOTHING_S,
    source: str = "the video",
) -> np.ndarray:
    """(N,2,3) float64 frame px -> unit crop transforms from (N,68,2) landmarks, one per frame.

    Only frames where `found` is True (and whose points are finite and not collapsed) are measured; the others
    take the nearest measured frame's parameters. With `smooth`, the parameters are smoothed over time with a
    Gaussian of `smoothing_s` seconds at `fps`. BadInput (naming `source`) when no frame has a face.
    """
    points = np.asarray(points, dtype=np.float64)
    found = np.asarray(found, dtype=bool)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2) or found.shape != points.shape[:1]:
        raise ValueError(f"expected points (N,{NUM_LANDMARKS},2) and found (N,), not {points.shape} and {found.shape}")
    if smooth and not fps > 0:
        raise ValueError(f"smoothing over time needs the frame rate, got fps={fps}")
    params = crop_params(np.where(found[:, None, None], points, np.nan))
    measured = np.flatnonzero(
        found & np.isfinite(params.centre).all(axis=1) & np.isfinite(params.angle) & (params.side >= _MIN_SIDE_PX)
    )
    if measured.size == 0:
        raise BadInput(
            f"no face was found in any of the {len(found)} frames of {source}; upload a video (or photo) in which "
            "the person faces the camera, well lit and unobstructed"
        )
    nearest = _nearest(measured, len(found))
    centre = params.centre[nearest]
    log_side = np.log(params.side[nearest])
    angle = np.unwrap(params.angle[nearest])  # a face turning through +-180 degrees must not jump a full turn
    if smooth and len(found) > 1:
        sigma = smoothing_s * fps
        centre = gaussian_filter1d(centre, sigma, axis=0, mode="nearest")
        log_side = gaussian_filter1d(log_side, sigma, mode="nearest")
        angle = gaussian_filter1d(angle, sigma, mode="nearest")
    return transforms_from_params(CropParams(centre=centre, side=np.exp(log_side), angle=angle))


def transform_for_size(unit: np.ndarray, size: int) -> np.ndarray:
    """The unit transform(s) (2,3) or (N,2,3) as frame px -> px of a size x size crop (same shape)."""
    pixel = np.array(unit, dtype=np.float64) * size
    pixel[..., :, 2] -= 0.5
    return pixel


def invert(transform: np.ndarray) -> np.ndarray:
    """The inverse of affine transform(s) (2,3) or (...,2,3)."""
    transform = np.asarray(transform, dtype=np.float64)
    linear = np.linalg.inv(transform[..., :, :2])
    shift = -np.einsum("...ij,...j->...i", linear, transform[..., :, 2])
    return np.concatenate([linear, shift[..., None]], axis=-1)


def crop(frame: np.ndarray, unit_transform: np.ndarray, size: int) -> np.ndarray:
    """The size x size crop of `frame` (H,W,C) uint8 under `unit_transform` (2,3): bilinear, edges replicated.

    When the crop shrinks the face by more than half, the frame is first halved with a Gaussian pyramid (as many
    times as needed): bilinear sampling alone would alias fine detail (hair, teeth) into shimmering patterns.
    """
    pixel = transform_for_size(unit_transform, size)
    source = frame
    while _scale(pixel) < 0.5 and min(source.shape[:2]) >= 4:
        source = cv2.pyrDown(source)  # pixel i of the result is centred on pixel 2i of its source
        pixel[:, :2] *= 2
    return cv2.warpAffine(source, pixel, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def paste_back(
    frame: np.ndarray, crop_image: np.ndarray, unit_transform: np.ndarray, *, feather: float = DEFAULT_FEATHER
) -> np.ndarray:
    """A copy of `frame` (H,W,C) uint8 with `crop_image` (S,S,C) uint8 blended back where `unit_transform` took it.

    The crop is weighted by a mask that is 1 inside and falls smoothly to 0 over the outer `feather` share of the
    crop's side (0: a hard edge), so a generated crop shows no seam. Pixels outside the crop's footprint (and, with
    a feather, on its outermost ring) are left bit-identical.
    """
    size = crop_image.shape[0]
    if crop_image.shape[1] != size or crop_image.shape[2:] != frame.shape[2:]:
        raise ValueError(f"expected a square crop with the frame's channels {frame.shape[2:]}, not {crop_image.shape}")
    out: np.ndarray = np.array(frame, copy=True)
    height, width = frame.shape[:2]
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    to_frame = invert(unit_transform)
    footprint = corners @ to_frame[:, :2].T + to_frame[:, 2]
    x0, y0 = np.floor(footprint.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(footprint.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height)
    if x0 >= x1 or y0 >= y1:
        return out  # the crop lies wholly outside the frame
    region_to_crop = transform_for_size(unit_transform, size)
    region_to_crop[:, 2] += region_to_crop[:, :2] @ np.array([x0, y0], dtype=np.float64)
    region_size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(crop_image, region_to_crop, region_size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(
        _feather_mask(size, feather), region_to_crop, region_size, flags=flags, borderMode=cv2.BORDER_CONSTANT
    )  # outside the crop the mask reads 0: the frame shows through unchanged
    if warped.ndim == 2:
        warped = warped[:, :, None]
    region = out[y0:y1, x0:x1].reshape(warped.shape).astype(np.float32)
    blended = region + mask[:, :, None] * (warped.astype(np.float32) - region)
    out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(frame.dtype).reshape(out[y0:y1, x0:x1].shape)
    return out


def save_transforms(
    path: Path, transforms: np.ndarray, found: np.ndarray, frame_size: tuple[int, int], fps: float
) -> None:
    """Write the transforms file (module docstring) atomically; the same values always give the same bytes."""
    path = Path(path)
    transforms = np.asarray(transforms, dtype=np.float64)
    found = np.asarray(found, dtype=bool)
    if transforms.ndim != 3 or transforms.shape[1:] != (2, 3) or found.shape != transforms.shape[:1]:
        raise ValueError(f"expected transforms (N,2,3) and found (N,), not {transforms.shape} and {found.shape}")
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "unit_transforms": transforms,
        "found": found,
        "frame_size": np.array(frame_size, dtype=np.int64),
        "fps": np.array(fps, dtype=np.float64),
        "rule": np.array(ALIGNMENT_RULE),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)  # entries dated 1980-01-01: no time stamp in the bytes
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_transforms(path: Path) -> CropTransforms:
    """Read a transforms file; BadInput naming it when it is missing, unreadable or of another format version."""
    path = Path(path)
    fix = "run the twin's preprocess again"
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise BadInput(
                    f"{path.name} has crop transforms format {version}, this platform reads {FORMAT_VERSION}: {fix}"
                )
            unit = np.asarray(data["unit_transforms"], dtype=np.float64)
            found = np.asarray(data["found"], dtype=bool)
            width, height = (int(v) for v in data["frame_size"])
            fps, rule = float(data["fps"]), str(data["rule"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{path.name} is not a readable crop transforms file ({exc}): {fix}") from exc
    if unit.ndim != 3 or unit.shape[1:] != (2, 3) or found.shape != unit.shape[:1]:
        raise BadInput(f"{path.name} holds transforms of shape {unit.shape} for {found.shape} frames: {fix}")
    return CropTransforms(unit=unit, found=found, frame_size=(width, height), fps=fps, rule=rule)


def _nearest(measured: np.ndarray, count: int) -> np.ndarray:
    """For each of `count` frames, the index of the nearest frame in the sorted `measured` (ties: the earlier)."""
    frames = np.arange(count)
    after = np.clip(np.searchsorted(measured, frames), 0, len(measured) - 1)
    before = np.clip(after - 1, 0, len(measured) - 1)
    use_before = np.abs(frames - measured[before]) <= np.abs(measured[after] - frames)
    return np.where(use_before, measured[before], measured[after])


def _scale(pixel_transform: np.ndarray) -> float:
    """How much a similarity transform enlarges lengths (crop px per frame px)."""
    return math.sqrt(abs(float(np.linalg.det(pixel_transform[:, :2]))))


@functools.lru_cache(maxsize=16)
def _feather_mask(size: int, feather: float) -> np.ndarray:
    """(size, size) float32 blending weights: 1 inside, a smoothstep to 0 over `feather * size` px at the edges,
    exactly 0 on the outermost pixels (so that bilinear warping leaves the footprint's outside untouched)."""
    if feather <= 0:
        mask = np.ones((size, size), dtype=np.float32)
    else:
        distance = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float64)
        ramp = np.clip(distance / (feather * size), 0.0, 1.0)
        ramp = ramp * ramp * (3 - 2 * ramp)
        mask = np.outer(ramp, ramp).astype(np.float32)
    mask.setflags(write=False)
    return mask
