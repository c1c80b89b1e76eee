"""Extended: the landmarks and crops stages on the real recordings in ../shared/media (skipped where absent).

What a person checks on these clips: the face is found on (nearly) every frame, the points sit on the face (here:
inside the box of MediaPipe's separate face-detection model, and in anatomical order), smoothing lowers the jitter,
and the crops follow the face.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.base import StageContext
from pipelines.media.frames import read_frames
from pipelines.media.normalize import normalize_video
from pipelines.th.crops_stage import CropsStage
from pipelines.th.face.align import load_transforms
from pipelines.th.face.landmarks_file import load_landmarks
from pipelines.th.landmarks_stage import LandmarksStage

pytestmark = pytest.mark.media


def _detector_boxes(video: Path, every: int) -> dict[int, tuple[float, float, float, float]]:
    """Face boxes from MediaPipe's face *detection* model (not the mesh the landmarks come from)."""
    import mediapipe as mp

    boxes: dict[int, tuple[float, float, float, float]] = {}
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as detector:
        index = 0
        for batch in read_frames(video, 32):
            for frame in batch:
                if index % every == 0:
                    found = detector.process(frame).detections
                    if found:
                        box = found[0].location_data.relative_bounding_box
                        h, w = frame.shape[:2]
                        boxes[index] = (
                            box.xmin * w,
                            box.ymin * h,
                            (box.xmin + box.width) * w,
                            (box.ymin + box.height) * h,
                        )
                index += 1
    return boxes


@pytest.mark.parametrize(
    ("clip", "frames", "size"), [("talking_512.mp4", 200, (512, 512)), ("sun.mp4", 550, (576, 768))]
)
def test_landmarks_on_real_clips(
    shared_media: Path, tmp_path: Path, clip: str, frames: int, size: tuple[int, int]
) -> None:
    video = tmp_path / "video/video.mp4"
    video.parent.mkdir()
    normalize_video(shared_media / clip, video, 25)
    out = tmp_path / "out"
    result = LandmarksStage().run(StageContext(inputs={"video": video}, output_dir=out))

    landmarks = load_landmarks(out / "face/video_landmarks.npz")
    assert landmarks.frames == frames and (landmarks.width, landmarks.height) == size
    assert landmarks.found.mean() >= 0.98 and landmarks.usable.mean() >= 0.98
    report = json.loads((out / "face/quality.json").read_text())["video"]
    assert report["failure"] is None and report["summary"]["found_ratio"] >= 0.98
    assert report["jitter"]["smoothed_px"] < report["jitter"]["raw_px"]
    assert result.metrics["video"]["jitter"] == report["jitter"]

    # On the face: eyes, nose and mouth inside the detector's box on every sampled frame, in anatomical order.
    boxes = _detector_boxes(video, every=10)
    assert len(boxes) >= 0.95 * len(range(0, frames, 10))
    for index, (x0, y0, x1, y1) in boxes.items():
        inner = landmarks.points[index, 17:68]
        margin = 0.1 * (x1 - x0)
        assert (inner[:, 0] > x0 - margin).all() and (inner[:, 0] < x1 + margin).all(), index
        assert (inner[:, 1] > y0 - margin).all() and (inner[:, 1] < y1 + margin).all(), index
        points = landmarks.points[index]
        assert points[36:48, 1].mean() < points[30, 1] < points[48:68, 1].mean() < points[8, 1], index
        assert points[36:42, 0].mean() < points[42:48, 0].mean(), index


@pytest.mark.slow
def test_crops_follow_the_face_on_a_real_clip(shared_media: Path, tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    normalize_video(shared_media / "talking_512.mp4", video, 25)
    out = tmp_path / "out"
    LandmarksStage().run(StageContext(inputs={"video": video}, output_dir=out))
    CropsStage().run(
        StageContext(
            inputs={"video": video, "video_landmarks": out / "face/video_landmarks.npz"},
            output_dir=out,
            params={"crop_sizes": [256]},
        )
    )
    landmarks = load_landmarks(out / "face/video_landmarks.npz")
    transforms = load_transforms(out / "face/crops/video_transforms.npz").for_size(256)
    eyes = np.stack(
        [transforms[t] @ np.array([*landmarks.points[t, 36:48].mean(0), 1.0]) for t in range(landmarks.frames)]
    )
    # The eye centre stays put in the crop while the head moves in the frame (within a few pixels of 256).
    frame_motion = np.ptp(landmarks.points[:, 36:48].mean(1), axis=0).max()
    assert np.ptp(eyes, axis=0).max() < max(6.0, 0.25 * frame_motion)
    crops = np.concatenate(list(read_frames(out / "face/crops/video_256.mp4", 64)))
    assert crops.shape == (landmarks.frames, 256, 256, 3)
