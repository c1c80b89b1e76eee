"""How well the mediapipe backend's 68 iBUG points agree with a real 68-point iBUG predictor (dlib's), and how
`MESH_TO_IBUG` was fitted.

dlib is NOT a project dependency (its 68-point model was trained on iBUG 300-W, whose terms exclude commercial use):
it is only a measuring stick, run from a throwaway venv:

    python3 -m venv /tmp/dlibvenv
    /tmp/dlibvenv/bin/pip install dlib-bin face-recognition-models numpy scipy pillow av scikit-image matplotlib \\
        opencv-python-headless "protobuf>=4.25.3,<5" absl-py attrs flatbuffers
    /tmp/dlibvenv/bin/pip install --no-deps mediapipe==0.10.21
    /tmp/dlibvenv/bin/python benchmarks/landmark_agreement.py [--media ../shared/media] [--fit]

Without dlib it says so and exits 0. Needs the real recordings in ../shared/media (talking_512.mp4, sun.mp4,
portrait.png) and the photos that ship in skimage and matplotlib.

Error: the distance between the backend's point and dlib's, divided by dlib's inter-ocular distance (outer eye
corners, as in 300-W), in %, averaged per iBUG group; each subject's frames weigh the same in total. Every photo and
sampled frame is also used mirrored. Calibration subjects: talking_512, portrait, astronaut, grace_hopper;
held out: sun.mp4. `--fit` refits the table on the calibration subjects, prints it in MESH_TO_IBUG's format,
and checks the method by leaving each subject out in turn.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from pipelines.th.face.backends.mediapipe_mesh import (  # noqa: E402
    MESH_TO_IBUG,
    MESH_VERTICES,
    MediapipeBackend,
    mesh_to_ibug_matrix,
)

GROUPS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "outer lips": range(48, 60),
    "inner lips": range(60, 68),
}
CALIBRATION = ("talking_512", "portrait", "astronaut", "grace_hopper")
HELD_OUT = ("sun",)

# The single-vertex table often used to turn the face mesh into 68 points, for comparison.
SINGLE_VERTEX = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389, 71, 63, 105, 66, 107, 336,
    296, 334, 293, 301, 168, 197, 5, 4, 75, 97, 2, 326, 305, 33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373,
    380, 61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip

# Mesh contours, each from one corner to the other: eyelid and lip points may only blend neighbours on these.
EYE_R_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_R_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_L_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
EYE_L_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
LIP_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIP_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
BROW_R = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
BROW_L = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)


@dataclass
class Samples:
    """Matched faces of one subject: dlib's points (N, 68, 2) and the mesh (N, 468, 2) in the same frames."""

    dlib: np.ndarray
    mesh: np.ndarray


def dlib_predictor() -> tuple[object, object] | None:
    """(HOG face detector, 68-point predictor), or None when dlib or its model is not installed."""
    if importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None:
        return None
    import dlib

    # face_recognition_models is not imported: with setuptools >= 81 its import fails (pkg_resources)
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.origin is not None
    model = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


def video_frames(path: Path, step: int) -> Iterator[tuple[int, np.ndarray]]:
    import av

    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            yield index, frame.to_ndarray(format="rgb24") if index % step == 0 else np.empty(0)


def subjects(media: Path) -> dict[str, list[np.ndarray]]:
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    def still(path: Path | str) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    return {
        "talking_512": [frame for _, frame in video_frames(media / "talking_512.mp4", 5) if frame.size],
        "portrait": [still(media / "portrait.png")],
        "astronaut": [np.asarray(data.astronaut())],  # type: ignore[no-untyped-call]
        "grace_hopper": [still(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))],
        "sun": [frame for _, frame in video_frames(media / "sun.mp4", 10) if frame.size],
    }


def dlib_points(predictor: tuple[object, object], image: np.ndarray) -> np.ndarray | None:
    detector, shape = predictor
    rects = detector(image, 1)  # type: ignore[operator]
    if not rects:
        return None
    rect = max(rects, key=lambda r: r.area())
    parts = shape(image, rect).parts()  # type: ignore[operator]
    return np.array([(p.x, p.y) for p in parts], dtype=np.float64)


def collect(predictor: tuple[object, object], images: Sequence[np.ndarray], backend: MediapipeBackend) -> Samples:
    """dlib and the mesh on every image and its mirror image, the mesh face nearest dlib's nose tip."""
    dlib_all, mesh_all = [], []
    for image in images:
        for variant in (image, image[:, ::-1]):
            variant = np.ascontiguousarray(variant)
            reference = dlib_points(predictor, variant)
            found = backend.detect_with_meshes([variant])[0]
            if reference is None or not found:
                continue
            _, mesh = min(found, key=lambda pair: float(np.linalg.norm(pair[1][4] - reference[30])))
            dlib_all.append(reference)
            mesh_all.append(mesh.astype(np.float64))
    return Samples(np.array(dlib_all), np.array(mesh_all))


def pooled(samples: dict[str, Samples], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dlib, mesh, weight) of the named subjects stacked; weights give each subject the same total."""
    dlib = np.concatenate([samples[name].dlib for name in names])
    mesh = np.concatenate([samples[name].mesh for name in names])
    weight = np.concatenate([np.full(len(samples[name].dlib), 1.0 / len(samples[name].dlib)) for name in names])
    return dlib, mesh, weight / weight.sum()


def table_matrix(table: Sequence[Sequence[tuple[int, float]]]) -> np.ndarray:
    matrix = np.zeros((68, MESH_VERTICES))
    for row, blend in enumerate(table):
        for vertex, weight in blend:
            matrix[row, vertex] += weight
    normalised: np.ndarray = matrix / matrix.sum(axis=1, keepdims=True)
    return normalised


def group_errors(dlib: np.ndarray, points: np.ndarray, weight: np.ndarray) -> dict[str, float]:
    """Weighted mean error per group and overall, in % of the inter-ocular distance."""
    inter_ocular = np.linalg.norm(dlib[:, 36] - dlib[:, 45], axis=1)
    error = np.linalg.norm(points - dlib, axis=2) / inter_ocular[:, None] * 100
    result = {name: float(weight @ error[:, list(group)].mean(axis=1)) for name, group in GROUPS.items()}
    result["all"] = float(weight @ error.mean(axis=1))
    return result


def print_row(label: str, errors: dict[str, float]) -> None:
    print(f"  {label:52s}" + "".join(f"{errors[name]:>11.2f}" for name in [*GROUPS, "all"]))


def print_header(title: str) -> None:
    print(f"\n{title}")
    print(f"  {'':52s}" + "".join(f"{name:>11s}" for name in [*GROUPS, "all"]))


# --- fitting ---------------------------------------------------------------------------------------------------------


def contour_of(point: int) -> tuple[tuple[int, ...], bool] | None:
    """(the mesh contour an iBUG eyelid or lip point must stay on, whether it is closed), or None."""
    closed = {
        36: EYE_R_UPPER + EYE_R_LOWER[-2:0:-1], 39: EYE_R_UPPER + EYE_R_LOWER[-2:0:-1],
        42: EYE_L_UPPER + EYE_L_LOWER[-2:0:-1], 45: EYE_L_UPPER + EYE_L_LOWER[-2:0:-1],
        48: LIP_OUTER_UPPER + LIP_OUTER_LOWER[-2:0:-1], 54: LIP_OUTER_UPPER + LIP_OUTER_LOWER[-2:0:-1],
        60: LIP_INNER_UPPER + LIP_INNER_LOWER[-2:0:-1], 64: LIP_INNER_UPPER + LIP_INNER_LOWER[-2:0:-1],
    }  # fmt: skip
    if point in closed:
        return closed[point], True
    open_contours = {
        (37, 38): EYE_R_UPPER, (40, 41): EYE_R_LOWER, (43, 44): EYE_L_UPPER, (46, 47): EYE_L_LOWER,
        (49, 50, 51, 52, 53): LIP_OUTER_UPPER, (55, 56, 57, 58, 59): LIP_OUTER_LOWER,
        (61, 62, 63): LIP_INNER_UPPER, (65, 66, 67): LIP_INNER_LOWER,
    }  # fmt: skip
    for points, contour in open_contours.items():
        if point in points:
            return contour, False
    return None


def free_pool(point: int) -> np.ndarray:
    """Vertices a brow, jaw or nose point may blend: its brow, or anything off the eye, lip and brow contours."""
    if 17 <= point <= 21:
        return np.array(BROW_R)
    if 22 <= point <= 26:
        return np.array(BROW_L)
    taken = set(EYE_R_UPPER + EYE_R_LOWER + EYE_L_UPPER + EYE_L_LOWER + BROW_R + BROW_L)
    taken |= set(LIP_OUTER_UPPER + LIP_OUTER_LOWER + LIP_INNER_UPPER + LIP_INNER_LOWER)
    return np.array([vertex for vertex in range(MESH_VERTICES) if vertex not in taken])


def best_blend(
    target: np.ndarray, mesh: np.ndarray, weight: np.ndarray, inter_ocular: np.ndarray, candidates: Sequence[int]
) -> tuple[tuple[int, float], ...]:
    """The non-negative blend (weights summing to 1) of at most 3 candidates with the least mean normalised error."""
    from scipy.optimize import nnls

    scale = np.sqrt(weight) / inter_ocular
    best: tuple[float, tuple[tuple[int, float], ...]] = (np.inf, ())
    for size in (1, 2, 3):
        for combo in itertools.combinations(candidates, size):
            blend = mesh[:, list(combo)]  # (N, size, 2)
            rows = np.concatenate([blend[:, :, 0] * scale[:, None], blend[:, :, 1] * scale[:, None]])
            rows = np.concatenate([rows, np.full((1, size), 100.0)])  # a heavy row: weights sum to 1
            rhs = np.concatenate([target[:, 0] * scale, target[:, 1] * scale, [100.0]])
            weights = nnls(rows, rhs)[0]
            weights = weights / weights.sum()
            error = float(weight @ (np.linalg.norm(np.tensordot(blend, weights, axes=([1], [0])) - target, axis=1)
                                    / inter_ocular))  # fmt: skip
            if error < best[0] - 1e-4:
                best = (error, tuple((int(v), float(w)) for v, w in zip(combo, weights, strict=True)))
    kept = [(vertex, w) for vertex, w in best[1] if w >= 0.05]  # drop slivers, renormalise, round
    total = sum(w for _, w in kept)
    return tuple(sorted(((vertex, round(w / total, 3)) for vertex, w in kept), key=lambda pair: -pair[1]))


def fit_table(dlib: np.ndarray, mesh: np.ndarray, weight: np.ndarray) -> tuple[tuple[tuple[int, float], ...], ...]:
    inter_ocular = np.linalg.norm(dlib[:, 36] - dlib[:, 45], axis=1)
    table = []
    for point in range(68):
        target = dlib[:, point]
        contour = contour_of(point)
        pool = np.array(contour[0]) if contour else free_pool(point)
        cost = weight @ (np.linalg.norm(mesh[:, pool] - target[:, None], axis=2) / inter_ocular[:, None])
        if contour:  # the nearest contour vertex and its neighbours on either side
            nearest, size = int(np.argmin(cost)), len(pool)
            steps = [nearest + step for step in (-1, 0, 1)]
            candidates = [int(pool[i % size]) for i in steps if contour[1] or 0 <= i < size]
        else:
            candidates = [int(v) for v in pool[np.argsort(cost)[:12]]]
        table.append(best_blend(target, mesh, weight, inter_ocular, candidates))
    return tuple(table)


# --- main -----------------------------------------------------------------------------------------------------------


def tracked_agreement(predictor: tuple[object, object], path: Path, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The backend in video mode over every frame, dlib on every `step`-th: (dlib, backend points) where both found."""
    dlib_all, ours = [], []
    with MediapipeBackend(video=True) as backend:
        for index, frame in video_frames(path, 1):
            faces = backend.detect([frame])[0]
            if index % step or not faces:
                continue
            reference = dlib_points(predictor, frame)
            if reference is not None:
                face = min(faces, key=lambda f: float(np.linalg.norm(f.points[30] - reference[30])))
                dlib_all.append(reference)
                ours.append(face.points.astype(np.float64))
    return np.array(dlib_all), np.array(ours)


def speed(path: Path) -> None:
    import av

    start = time.perf_counter()
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    decode = time.perf_counter() - start
    for video in (True, False):
        with MediapipeBackend(video=video) as backend:
            backend.detect(frames[:1])
            start = time.perf_counter()
            for first in range(0, len(frames), 32):
                backend.detect(frames[first : first + 32])
            detect = time.perf_counter() - start
        print(
            f"  {path.name}, video={video}: {detect / len(frames) * 1000:.1f} ms/frame landmarks + "
            f"{decode / len(frames) * 1000:.1f} ms/frame decode ({len(frames)} frames)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=REPO_ROOT.parent / "shared" / "media")
    parser.add_argument("--fit", action="store_true", help="refit MESH_TO_IBUG and print it")
    args = parser.parse_args()
    if not (args.media / "talking_512.mp4").is_file():
        print(f"skipped: the real test media are not in {args.media} (pass --media)")
        return 0
    print("speed (this machine):")
    speed(args.media / "talking_512.mp4")
    predictor = dlib_predictor()
    if predictor is None:
        print(
            "skipped the agreement with dlib: dlib (and face-recognition-models) are not installed here; they are "
            "not project dependencies: see this script's docstring for a throwaway venv that has them"
        )
        return 0

    with MediapipeBackend(video=False) as backend:
        samples = {name: collect(predictor, images, backend) for name, images in subjects(args.media).items()}
    shipped, single = table_matrix(MESH_TO_IBUG), table_matrix([((v, 1.0),) for v in SINGLE_VERTEX])
    assert np.allclose(shipped, mesh_to_ibug_matrix(), atol=1e-6)

    print_header("error against dlib, % of the inter-ocular distance (photos and frames, each also mirrored)")
    for name, sample in samples.items():
        role = "held out" if name in HELD_OUT else "calibration"
        dlib, mesh, weight = pooled(samples, [name])
        label = f"{name} ({len(sample.dlib)} faces, {role}): MESH_TO_IBUG"
        print_row(label, group_errors(dlib, shipped @ mesh, weight))
        print_row("    single-vertex table", group_errors(dlib, single @ mesh, weight))

    print_header("video mode (tracked), unmirrored frames")
    for clip, step in (("talking_512.mp4", 5), ("sun.mp4", 10)):
        dlib, ours = tracked_agreement(predictor, args.media / clip, step)
        print_row(f"{clip} ({len(dlib)} frames)", group_errors(dlib, ours, np.full(len(dlib), 1 / len(dlib))))

    if args.fit:
        table = fit_table(*pooled(samples, CALIBRATION))
        print("\nrefitted on the calibration subjects (MESH_TO_IBUG format):")
        for point, blend in enumerate(table):
            print(f"    ({', '.join(f'({v}, {w})' for v, w in blend)}{',' if len(blend) == 1 else ''}),  # {point}")
        print_header("refitted table, and the method with each subject left out of the fit")
        dlib, mesh, weight = pooled(samples, HELD_OUT)
        print_row("held out: " + ", ".join(HELD_OUT), group_errors(dlib, table_matrix(table) @ mesh, weight))
        for left_out in samples:
            rest = table_matrix(fit_table(*pooled(samples, [name for name in samples if name != left_out])))
            dlib, mesh, weight = pooled(samples, [left_out])
            print_row(f"left out: {left_out}", group_errors(dlib, rest @ mesh, weight))
    return 0


if __name__ == "__main__":
    sys.exit(main())
