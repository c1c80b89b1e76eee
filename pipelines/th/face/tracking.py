"""Follow the twin's main face through a video, given every face the landmark backend found in each frame.

Faces are first chained into *tracklets*: a face joins the tracklet whose last box it overlaps, or whose centre is
near its own, within a few frames (short detector drop-outs do not break a tracklet). The main face is then the
tracklet that is largest, most confident and most central over the first second or so of the video, not in one
frame, so a passer-by or one bad detection cannot win. When the main tracklet ends (lost for longer than a short
gap) the main face is re-acquired the same way from the faces seen afterwards; if it reappears somewhere else the
frame is marked as a switch, which the quality report counts (two people taking turns, a cut to another shot).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipelines.th.face.types import NUM_LANDMARKS, FaceDetection, FrameFaces

MAX_GAP_FRAMES = 12
"""A tracklet survives this many frames without its face (~0.5 s at 25 fps: a blink of the detector, a hand)."""

ACQUIRE_FRAMES = 25
"""The main face is chosen over this many frames from the first frame with a face (~1 s at 25 fps)."""

MIN_IOU = 0.3
MAX_CENTRE_SHIFT = 0.5
"""A face continues a tracklet if its box overlaps the last one by MIN_IOU, or its centre moved by at most
MAX_CENTRE_SHIFT times the last box's height per frame elapsed (capped at two box heights), and its height changed
by less than a factor of two."""


@dataclass(eq=False)
class FaceTrack:
    """The main face in every frame of a video (N frames); NaN / 0 where it was not found.

    points       (N, 68, 2) float32  iBUG landmarks, px
    confidence   (N,) float32        the backend's confidence, 0 where no main face
    boxes        (N, 4) float32      x0, y0, x1, y1, px
    faces_count  (N,) int            faces the backend found in the frame (main or not)
    rival_ratio  (N,) float32        area of the largest other face / the main face's area (0 when alone or when
                                     there is no main face)
    switches     (N,) bool           frames where the main face was re-acquired somewhere else than where it was
                                     lost (another person, or the same one after leaving the picture)
    """

    points: np.ndarray
    confidence: np.ndarray
    boxes: np.ndarray
    faces_count: np.ndarray
    rival_ratio: np.ndarray
    switches: np.ndarray

    @property
    def found(self) -> np.ndarray:
        """(N,) bool: frames with a main face."""
        return np.asarray(np.isfinite(self.boxes).all(axis=1))

    @property
    def frames(self) -> int:
        return int(self.boxes.shape[0])


@dataclass(eq=False)
class _Tracklet:
    frames: list[int] = field(default_factory=list)
    faces: list[FaceDetection] = field(default_factory=list)

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    @property
    def last_face(self) -> FaceDetection:
        return self.faces[-1]


def track_main_face(
    faces_per_frame: Sequence[FrameFaces],
    frame_size: tuple[int, int],
    *,
    max_gap_frames: int = MAX_GAP_FRAMES,
    acquire_frames: int = ACQUIRE_FRAMES,
) -> FaceTrack:
    """The main face of each frame. `frame_size` is (width, height) in px; faces with an empty box or non-finite
    points are ignored (but counted in `faces_count`)."""
    count = len(faces_per_frame)
    valid = [[face for face in faces if _is_valid(face)] for faces in faces_per_frame]
    tracklets = _chain(valid, max_gap_frames)
    main = _choose_main(tracklets, valid, frame_size, acquire_frames)

    points = np.full((count, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
    confidence = np.zeros(count, dtype=np.float32)
    boxes = np.full((count, 4), np.nan, dtype=np.float32)
    faces_count = np.array([len(faces) for faces in faces_per_frame], dtype=np.int64)
    rival_ratio = np.zeros(count, dtype=np.float32)
    switches = np.zeros(count, dtype=bool)
    main_face: list[FaceDetection | None] = [None] * count
    for segment_index, (tracklet, first) in enumerate(main):
        for frame, face in zip(tracklet.frames, tracklet.faces, strict=True):
            if frame >= first:
                main_face[frame] = face
        if segment_index > 0:
            previous, _ = main[segment_index - 1]
            start = next(index for index, frame in enumerate(tracklet.frames) if frame >= first)
            if not _same_place(previous.last_face, tracklet.faces[start], 1):
                switches[tracklet.frames[start]] = True

    for frame, main_here in enumerate(main_face):
        if main_here is None:
            continue
        points[frame] = main_here.points
        confidence[frame] = main_here.confidence
        boxes[frame] = main_here.box
        others = [other.area for other in valid[frame] if other is not main_here]
        rival_ratio[frame] = max(others, default=0.0) / max(main_here.area, 1e-6)
    return FaceTrack(points, confidence, boxes, faces_count, rival_ratio, switches)


def _is_valid(face: FaceDetection) -> bool:
    points = np.asarray(face.points)
    return (
        points.shape == (NUM_LANDMARKS, 2)
        and bool(np.isfinite(points).all())
        and all(math.isfinite(v) for v in face.box)
        and face.area > 0
    )


def _chain(faces_per_frame: list[FrameFaces], max_gap_frames: int) -> list[_Tracklet]:
    """Greedy frame-to-frame association of faces into tracklets (best matches first, one face per tracklet)."""
    tracklets: list[_Tracklet] = []
    alive: list[_Tracklet] = []
    for frame, faces in enumerate(faces_per_frame):
        alive = [t for t in alive if frame - t.last_frame <= max_gap_frames + 1]
        pairs = []
        for t_index, tracklet in enumerate(alive):
            elapsed = frame - tracklet.last_frame
            for f_index, face in enumerate(faces):
                if _same_place(tracklet.last_face, face, elapsed):
                    pairs.append((_centre_shift(tracklet.last_face, face), t_index, f_index))
        used_tracklets: set[int] = set()
        used_faces: set[int] = set()
        for _, t_index, f_index in sorted(pairs):
            if t_index in used_tracklets or f_index in used_faces:
                continue
            used_tracklets.add(t_index)
            used_faces.add(f_index)
            alive[t_index].frames.append(frame)
            alive[t_index].faces.append(faces[f_index])
        for f_index, face in enumerate(faces):
            if f_index not in used_faces:
                tracklets.append(_Tracklet([frame], [face]))
                alive.append(tracklets[-1])
    return tracklets


def _choose_main(
    tracklets: list[_Tracklet], faces_per_frame: list[FrameFaces], frame_size: tuple[int, int], acquire_frames: int
) -> list[tuple[_Tracklet, int]]:
    """The main face's tracklets in time order, each with the first frame it is main from."""
    segments: list[tuple[_Tracklet, int]] = []
    start = 0
    while True:
        first = next((frame for frame in range(start, len(faces_per_frame)) if faces_per_frame[frame]), None)
        if first is None:
            return segments
        window = range(first, first + acquire_frames)
        candidates = [t for t in tracklets if t.last_frame >= first]
        best = max(candidates, key=lambda t: _window_score(t, window, frame_size))
        segments.append((best, first))
        start = best.last_frame + 1


def _window_score(tracklet: _Tracklet, window: range, frame_size: tuple[int, int]) -> float:
    """How much a tracklet looks like the main face over `window`: the sum over its frames there of
    size x confidence x centrality, so a face present throughout beats a larger one seen in a single frame."""
    width, height = frame_size
    half_diagonal = max(math.hypot(width, height) / 2.0, 1.0)
    score = 0.0
    for frame, face in zip(tracklet.frames, tracklet.faces, strict=True):
        if frame not in window:
            continue
        cx, cy = _centre(face)
        off_centre = min(1.0, math.hypot(cx - width / 2.0, cy - height / 2.0) / half_diagonal)
        score += face.height / max(height, 1) * max(face.confidence, 0.01) * (1.0 - 0.5 * off_centre)
    return score


def _same_place(before: FaceDetection, after: FaceDetection, elapsed: int) -> bool:
    """Whether `after` can be the face `before` became `elapsed` frames later."""
    size_ratio = after.height / max(before.height, 1e-6)
    if not 0.5 <= size_ratio <= 2.0:
        return False
    if _iou(before.box, after.box) >= MIN_IOU:
        return True
    return _centre_shift(before, after) <= min(MAX_CENTRE_SHIFT * max(elapsed, 1), 2.0)


def _centre_shift(before: FaceDetection, after: FaceDetection) -> float:
    """The distance between the two box centres, in heights of the earlier box."""
    (x0, y0), (x1, y1) = _centre(before), _centre(after)
    return math.hypot(x1 - x0, y1 - y0) / max(before.height, 1e-6)


def _centre(face: FaceDetection) -> tuple[float, float]:
    x0, y0, x1, y1 = face.box
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
