"""The offline default landmark backend: MediaPipe's face mesh (legacy `FaceMesh` graph of mediapipe 0.10.21,
whose models ship inside the wheel), mapped from its 468 mesh vertices to the 68 iBUG points.

Why the legacy graph, driven through `SolutionBase` rather than `mp.solutions.face_mesh.FaceMesh`: the same graph
also emits the detections of its face detector, and their scores are the only per-face confidence MediaPipe has
(the landmark model's face-presence score stays inside the graph). Two changes to the stock graph: it runs the
refined ("attention") landmark model, which places eyelids and lips better for 0.5 ms more a frame, and by default
the full-range face detector (see `_graph_runner`). Measured on talking_512.mp4 (512x512, 2 cores): 10-11 ms a
frame, decoding apart.

Confidence, per face:
  - the detector's score of the detection this frame that overlaps the face, when there is one. In image mode the
    detector runs on every frame; in video mode it runs whenever fewer than `max_faces` faces are being tracked,
    i.e. on every frame of a one-person video with the default max_faces=2. (The full-range detector is less sure
    of close-ups than the short-range one: 0.63-0.95, median 0.87, over talking_512, against 0.93-0.97.);
  - when the detector did not run (as many faces tracked as `max_faces`), the score of the same face in the
    previous frame (matched by box overlap): the face was found by the detector once and tracked since;
  - when the detector ran and did not see the tracked face (profile, occlusion, blur), at most `min_confidence`:
    only the landmark model, whose presence score passed `min_confidence`, still vouches for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import MissingWeights
from pipelines.th.face.backends.base import DEFAULT_MAX_FACES, ClosingBackend, check_frame
from pipelines.th.face.types import NUM_LANDMARKS, FaceDetection, FrameFaces, box_of

MESH_VERTICES = 468

# For each iBUG point (in iBUG order), a weighted average of face-mesh vertices: ((vertex, weight), ...), weights
# summing to 1. Fitted by benchmarks/landmark_agreement.py --fit against dlib's 68-point predictor (trained on iBUG
# 300-W annotations) on the talking_512 clip, portrait.png, skimage's astronaut, matplotlib's grace_hopper and their
# mirror images: per point, the non-negative blend of at most 3 vertices with the least mean error normalised by the
# inter-ocular distance (weights under 0.05 dropped). Eyelid and lip points may only blend neighbouring vertices of
# the same lid or lip contour, so that blinks and mouth opening are not averaged away; jaw, brow and nose points
# blend any 3 of their 12 nearest vertices. On held-out frames (sun.mp4 and its mirror) the mean error against dlib
# is 1.9 % of the inter-ocular distance (3.8 % for the single-vertex table often used); the benchmark prints the
# numbers per group. The jaw agrees least (2-6 %): its iBUG points follow the visible outline of the face.
MESH_TO_IBUG: tuple[tuple[tuple[int, float], ...], ...] = (
    ((227, 0.514), (139, 0.486)),  # 0 jaw, level with the subject's right ear
    ((137, 0.447), (227, 0.404), (117, 0.148)),  # 1
    ((177, 0.418), (137, 0.304), (187, 0.278)),  # 2
    ((215, 0.795), (207, 0.118), (172, 0.087)),  # 3
    ((172, 0.87), (135, 0.13)),  # 4
    ((136, 0.589), (150, 0.411)),  # 5
    ((149, 1.0),),  # 6
    ((148, 0.61), (176, 0.39)),  # 7
    ((152, 1.0),),  # 8 chin
    ((377, 0.6), (400, 0.4)),  # 9
    ((378, 1.0),),  # 10
    ((365, 0.619), (379, 0.381)),  # 11
    ((397, 1.0),),  # 12
    ((435, 0.877), (367, 0.123)),  # 13
    ((366, 0.533), (433, 0.467)),  # 14
    ((447, 0.744), (376, 0.256)),  # 15
    ((264, 0.908), (447, 0.092)),  # 16 jaw, level with the subject's left ear
    ((70, 0.5), (46, 0.5)),  # 17 right brow, outer end
    ((63, 1.0),),  # 18
    ((105, 0.644), (66, 0.356)),  # 19
    ((66, 0.701), (107, 0.299)),  # 20
    ((107, 0.554), (55, 0.446)),  # 21 right brow, inner end
    ((336, 0.514), (285, 0.486)),  # 22 left brow, inner end
    ((296, 0.693), (336, 0.307)),  # 23
    ((334, 0.639), (296, 0.361)),  # 24
    ((293, 0.758), (300, 0.134), (296, 0.108)),  # 25
    ((300, 1.0),),  # 26 left brow, outer end
    ((168, 0.51), (464, 0.246), (189, 0.244)),  # 27 nose bridge, top
    ((351, 0.59), (174, 0.41)),  # 28
    ((456, 0.477), (134, 0.398), (196, 0.125)),  # 29
    ((4, 0.868), (241, 0.132)),  # 30 nose tip
    ((235, 0.539), (99, 0.461)),  # 31 nostrils, subject's right
    ((20, 0.631), (167, 0.263), (239, 0.106)),  # 32
    ((94, 0.661), (164, 0.339)),  # 33 below the nose tip
    ((326, 0.586), (462, 0.348), (459, 0.066)),  # 34
    ((455, 0.52), (328, 0.48)),  # 35 nostrils, subject's left
    ((7, 0.62), (33, 0.38)),  # 36 right eye, outer corner
    ((159, 0.685), (161, 0.315)),  # 37 upper lid
    ((158, 0.775), (157, 0.225)),  # 38 upper lid
    ((133, 0.517), (154, 0.483)),  # 39 right eye, inner corner
    ((153, 0.753), (145, 0.247)),  # 40 lower lid
    ((144, 1.0),),  # 41 lower lid
    ((382, 0.855), (381, 0.145)),  # 42 left eye, inner corner
    ((384, 0.619), (386, 0.381)),  # 43 upper lid
    ((386, 0.688), (388, 0.312)),  # 44 upper lid
    ((249, 0.738), (263, 0.262)),  # 45 left eye, outer corner
    ((373, 1.0),),  # 46 lower lid
    ((380, 0.712), (374, 0.288)),  # 47 lower lid
    ((61, 1.0),),  # 48 mouth, right corner
    ((40, 0.759), (37, 0.241)),  # 49 upper lip, outer edge
    ((37, 0.366), (0, 0.349), (39, 0.285)),  # 50
    ((0, 1.0),),  # 51 upper lip, middle
    ((267, 0.414), (0, 0.339), (269, 0.247)),  # 52
    ((270, 0.743), (267, 0.257)),  # 53
    ((291, 1.0),),  # 54 mouth, left corner
    ((405, 0.587), (321, 0.413)),  # 55 lower lip, outer edge
    ((314, 0.918), (17, 0.082)),  # 56
    ((17, 1.0),),  # 57 lower lip, middle
    ((84, 1.0),),  # 58
    ((181, 0.552), (91, 0.448)),  # 59
    ((78, 0.708), (95, 0.292)),  # 60 inner lips, right corner
    ((81, 0.577), (13, 0.423)),  # 61 upper lip, inner edge
    ((13, 1.0),),  # 62
    ((311, 0.604), (13, 0.396)),  # 63
    ((308, 0.68), (324, 0.32)),  # 64 inner lips, left corner
    ((317, 0.916), (402, 0.084)),  # 65 lower lip, inner edge
    ((14, 1.0),),  # 66
    ((87, 1.0),),  # 67
)


def mesh_to_ibug_matrix() -> np.ndarray:
    """(68, 468) float32 matrix W with ibug_points = W @ mesh_points."""
    matrix = np.zeros((NUM_LANDMARKS, MESH_VERTICES), dtype=np.float32)
    for row, blend in enumerate(MESH_TO_IBUG):
        for vertex, weight in blend:
            matrix[row, vertex] += weight
    normalised: np.ndarray = matrix / matrix.sum(axis=1, keepdims=True)
    return normalised


_GRAPH = "modules/face_landmark/face_landmark_front_cpu.binarypb"  # relative to the mediapipe package
_DETECTORS = {True: "FaceDetectionFullRangeCpu", False: "FaceDetectionShortRangeCpu"}
_PRESENCE_THRESHOLD = "facelandmarkcpu__ThresholdingCalculator.threshold"
_SAME_FACE_IOU = 0.3  # boxes of one face in consecutive frames, or its mesh box and its detector box, overlap more


def _graph_runner(full_range: bool) -> tuple[Any, Any]:
    """(MediaPipe's SolutionBase class, the face-mesh graph config), or MissingWeights: without the mediapipe wheel
    there is no model either.

    The graph is MediaPipe's own, with its face detector swapped for the full-range one if asked: the stock
    short-range detector resizes the whole frame to 128 px and so misses faces smaller than about a fifth of the
    frame (a second, farther person; two people side by side).
    """
    # Its C++ side prints a few INFO/WARNING lines on stderr when a graph starts; no environment variable quiets
    # them in 0.10.21 (GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL were tried), and redirecting fd 2 would also hide
    # real errors, so they are left alone.
    try:
        import mediapipe
        from mediapipe.framework import calculator_pb2
        from mediapipe.python.solution_base import SolutionBase
    except ImportError as error:
        raise MissingWeights(
            f"the mediapipe landmark backend needs mediapipe 0.10.21, whose wheel carries the face-mesh model, but it "
            f"cannot be imported ({error}); run scripts/setup, or `pip install --no-deps mediapipe==0.10.21`",
            names=(),
        ) from error
    config = calculator_pb2.CalculatorGraphConfig()
    config.ParseFromString((Path(mediapipe.__file__).parent / _GRAPH).read_bytes())
    for node in config.node:
        if node.calculator == _DETECTORS[False]:
            node.calculator = _DETECTORS[full_range]
    return SolutionBase, config


def _detector_threshold(full_range: bool) -> str:
    """The option path of the detector's score threshold inside the expanded graph."""
    kind = "fullrange" if full_range else "shortrange"
    return f"facedetection{kind}cpu__facedetection{kind}__facedetection__TensorsToDetectionsCalculator.min_score_thresh"


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _best_overlap(
    box: tuple[float, float, float, float], candidates: Sequence[tuple[tuple[float, float, float, float], float]]
) -> float | None:
    """The score of the candidate box overlapping `box` most (IoU above _SAME_FACE_IOU), or None."""
    best_iou, best_score = _SAME_FACE_IOU, None
    for other, score in candidates:
        overlap = _iou(box, other)
        if overlap > best_iou:
            best_iou, best_score = overlap, score
    return best_score


class MediapipeBackend(ClosingBackend):
    """Face mesh → 68 iBUG points; see the module docstring for what `confidence` means.

    video=True tracks faces from frame to frame (frames of one video, in order: faster and steadier); video=False
    treats every frame as an unrelated photo. min_confidence is both the detector's and the tracker's threshold.
    full_range=True (default) detects faces of any size (4-5 ms a frame more on 512x512 while the detector runs);
    False keeps MediaPipe's stock short-range detector, for close-ups only.
    """

    name = "mediapipe"

    def __init__(
        self,
        max_faces: int = DEFAULT_MAX_FACES,
        video: bool = True,
        min_confidence: float = 0.5,
        *,
        full_range: bool = True,
    ) -> None:
        if max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in 0..1, got {min_confidence}")
        self.max_faces = max_faces
        self.video = video
        self.min_confidence = min_confidence
        self._to_ibug = mesh_to_ibug_matrix()
        self._previous: FrameFaces = []
        solution_base, graph_config = _graph_runner(full_range)
        self._graph: Any = solution_base(
            graph_config=graph_config,
            side_inputs={"num_faces": max_faces, "with_attention": True, "use_prev_landmarks": video},
            calculator_params={_detector_threshold(full_range): min_confidence, _PRESENCE_THRESHOLD: min_confidence},
            outputs=["multi_face_landmarks", "face_detections"],
        )

    def detect(self, frames: Sequence[np.ndarray]) -> list[FrameFaces]:
        return [[face for face, _ in found] for found in self.detect_with_meshes(frames)]

    def detect_with_meshes(self, frames: Sequence[np.ndarray]) -> list[list[tuple[FaceDetection, np.ndarray]]]:
        """As `detect`, each face paired with its whole mesh: MediaPipe's 468 vertices as (468, 2) float32 frame
        pixels (what MESH_TO_IBUG is calibrated from; also there for anyone who needs more than 68 points)."""
        if self._graph is None:
            raise RuntimeError("this MediapipeBackend is closed")
        results: list[list[tuple[FaceDetection, np.ndarray]]] = []
        for index, frame in enumerate(frames):
            image = check_frame(frame, index)
            # The graph runs its detector when the previous frame had fewer than max_faces faces (always in
            # image mode): known before the call, since it is the same count as ours.
            detector_ran = not self.video or len(self._previous) < self.max_faces
            output = self._graph.process(image)
            found = self._faces(image.shape[1], image.shape[0], output, detector_ran)
            results.append(found)
            self._previous = [face for face, _ in found]
        return results

    def _faces(
        self, width: int, height: int, output: Any, detector_ran: bool
    ) -> list[tuple[FaceDetection, np.ndarray]]:
        detections = [
            (_detection_box(detection, width, height), float(detection.score[0]))
            for detection in output.face_detections or ()
        ]
        found: list[tuple[FaceDetection, np.ndarray]] = []
        for landmarks in output.multi_face_landmarks or ():
            mesh = np.array([(point.x, point.y) for point in landmarks.landmark[:MESH_VERTICES]], dtype=np.float32)
            # MediaPipe's normalised 0..1 spans the image edges; our pixel (0, 0) is the centre of the first pixel.
            mesh = mesh * np.array([width, height], dtype=np.float32) - 0.5
            box = box_of(mesh)
            face = FaceDetection(
                points=(self._to_ibug @ mesh).astype(np.float32),
                confidence=self._confidence(box, detections, detector_ran),
                box=box,
            )
            found.append((face, mesh))
        return found

    def _confidence(
        self,
        box: tuple[float, float, float, float],
        detections: Sequence[tuple[tuple[float, float, float, float], float]],
        detector_ran: bool,
    ) -> float:
        detected = _best_overlap(box, detections)
        if detected is not None:
            return min(max(detected, 0.0), 1.0)
        tracked = _best_overlap(box, [(face.box, face.confidence) for face in self._previous])
        if detector_ran:
            return min(tracked if tracked is not None else self.min_confidence, self.min_confidence)
        return tracked if tracked is not None else self.min_confidence

    def reset(self) -> None:
        self._previous = []
        if self._graph is not None:
            self._graph.reset()

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None


def _detection_box(detection: Any, width: int, height: int) -> tuple[float, float, float, float]:
    relative = detection.location_data.relative_bounding_box
    x0, y0 = relative.xmin * width - 0.5, relative.ymin * height - 0.5
    return (x0, y0, x0 + relative.width * width, y0 + relative.height * height)
