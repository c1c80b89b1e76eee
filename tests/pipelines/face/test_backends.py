"""The landmark backends, offline.

MediaPipe runs its real model (in the wheel) on real photos that ship in wheels: skimage's astronaut and
matplotlib's Grace Hopper. FAN runs face_alignment's real loading and inference code on random-init networks saved
under the real file names (the real weights are not obtainable offline): its points mean nothing, so those tests
check the plumbing a user relies on (no download, no cache written, clear errors naming the file to fix).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipelines.base import MissingWeights
from pipelines.th.face import ibug
from pipelines.th.face.backends import BACKENDS, open_backend
from pipelines.th.face.backends.fan import DETECTOR_FILES, FAN_FILE, FanBackend
from pipelines.th.face.backends.mediapipe_mesh import MESH_TO_IBUG, MediapipeBackend, mesh_to_ibug_matrix
from pipelines.th.face.types import FaceDetection

SFD_FILE = DETECTOR_FILES["sfd"][0]

# iBUG index of the same landmark on the mirrored face (the subject's right <-> left).
MIRROR = np.array(
    [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip


# --- photos --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())


@pytest.fixture(scope="module")
def grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def photo_backend() -> Iterator[MediapipeBackend]:
    with MediapipeBackend(video=False) as backend:
        yield backend


def only_face(faces: list[FaceDetection]) -> FaceDetection:
    assert len(faces) == 1, f"expected exactly one face, found {len(faces)}"
    return faces[0]


def mean_y(points: np.ndarray, group: range) -> float:
    return float(points[list(group), 1].mean())


def inter_ocular(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[ibug.RIGHT_EYE_OUTER] - points[ibug.LEFT_EYE_OUTER]))


def assert_anatomically_sane(face: FaceDetection) -> None:
    points = face.points
    assert points.shape == (68, 2) and points.dtype == np.float32
    eyes = (mean_y(points, ibug.RIGHT_EYE) + mean_y(points, ibug.LEFT_EYE)) / 2
    brows = (mean_y(points, ibug.RIGHT_BROW) + mean_y(points, ibug.LEFT_BROW)) / 2
    assert brows < eyes < points[ibug.NOSE_TIP, 1] < mean_y(points, ibug.OUTER_LIPS) < points[ibug.CHIN, 1]
    # the subject's right eye, brow, mouth corner and jaw end appear on the image's left (unmirrored photo)
    assert points[list(ibug.RIGHT_EYE), 0].mean() < points[list(ibug.LEFT_EYE), 0].mean()
    assert points[list(ibug.RIGHT_BROW), 0].mean() < points[list(ibug.LEFT_BROW), 0].mean()
    assert points[ibug.MOUTH_RIGHT, 0] < points[ibug.MOUTH_LEFT, 0]
    assert points[0, 0] < points[ibug.CHIN, 0] < points[16, 0]
    # eye contours start at the outer corner: outer corners lie outside the inner ones
    assert points[ibug.RIGHT_EYE_OUTER, 0] < points[ibug.RIGHT_EYE_INNER, 0]
    assert points[ibug.LEFT_EYE_INNER, 0] < points[ibug.LEFT_EYE_OUTER, 0]
    # and go clockwise in the image: over the upper lid (37, 38) first, back along the lower lid (40, 41)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        assert points[upper, 1] < points[lower, 1]
    x0, y0, x1, y1 = face.box
    slack = 0.02 * (x1 - x0)
    assert np.all(points[:, 0] >= x0 - slack) and np.all(points[:, 0] <= x1 + slack)
    assert np.all(points[:, 1] >= y0 - slack) and np.all(points[:, 1] <= y1 + slack)
    assert 0.45 < inter_ocular(points) / (x1 - x0) < 0.8  # the outer eye corners span about 60 % of the face
    assert 0.7 < face.confidence <= 1.0


# --- mediapipe -----------------------------------------------------------------------------------------------------


def test_table_is_68_convex_blends_of_mesh_vertices() -> None:
    assert len(MESH_TO_IBUG) == 68
    for blend in MESH_TO_IBUG:
        assert 1 <= len(blend) <= 3
        assert all(0 <= vertex < 468 and weight > 0 for vertex, weight in blend)
        assert sum(weight for _, weight in blend) == pytest.approx(1.0, abs=2e-3)
    matrix = mesh_to_ibug_matrix()
    assert matrix.shape == (68, 468)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)


def test_astronaut_has_one_sane_face(photo_backend: MediapipeBackend, astronaut: np.ndarray) -> None:
    face = only_face(photo_backend.detect([astronaut])[0])
    assert_anatomically_sane(face)
    # her face is about 90 px wide in the 512 px photo, her eyes at about y=100, left of centre
    assert 48 < inter_ocular(face.points) < 72
    assert 150 < face.points[ibug.NOSE_TIP, 0] < 260 and 85 < face.points[list(ibug.RIGHT_EYE), 1].mean() < 120


def test_points_are_the_table_applied_to_the_mesh(photo_backend: MediapipeBackend, astronaut: np.ndarray) -> None:
    [(face, mesh)] = photo_backend.detect_with_meshes([astronaut])[0]
    assert mesh.shape == (468, 2)
    np.testing.assert_allclose(face.points, mesh_to_ibug_matrix() @ mesh, atol=1e-3)
    np.testing.assert_allclose(face.points[ibug.CHIN], mesh[152], atol=1e-3)  # the chin is vertex 152 alone
    assert face.box == pytest.approx((*mesh.min(axis=0), *mesh.max(axis=0)))


def test_grace_hopper_has_one_sane_face(photo_backend: MediapipeBackend, grace_hopper: np.ndarray) -> None:
    face = only_face(photo_backend.detect([grace_hopper])[0])
    assert_anatomically_sane(face)
    assert 95 < inter_ocular(face.points) < 140  # a larger face: about 190 px wide in a 512x600 portrait


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_mirrored_photo_gives_the_mirrored_landmarks(
    photo_backend: MediapipeBackend, photo: str, request: pytest.FixtureRequest
) -> None:
    """Checks the table's left/right and order: each iBUG point must land on its mirror twin's place (measured:
    1.4-1.7 % of the inter-ocular distance on average, at most 4.2 %; an upper lid point taken from the lower lid
    would be off by the eye's opening, about 10 %)."""
    image = request.getfixturevalue(photo)
    direct, mirrored = photo_backend.detect([image, np.ascontiguousarray(image[:, ::-1])])
    points = only_face(direct).points
    back = only_face(mirrored).points[MIRROR]
    back[:, 0] = image.shape[1] - 1 - back[:, 0]
    errors = np.linalg.norm(back - points, axis=1) / inter_ocular(points)
    assert errors.mean() < 0.03 and errors.max() < 0.07, errors.round(3)


def test_blank_and_noise_frames_have_no_face(photo_backend: MediapipeBackend) -> None:
    noise = np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert photo_backend.detect([np.full((480, 640, 3), 128, np.uint8), noise]) == [[], []]


def test_two_people_side_by_side_give_two_faces(
    photo_backend: MediapipeBackend, astronaut: np.ndarray, grace_hopper: np.ndarray
) -> None:
    grace = np.asarray(Image.fromarray(grace_hopper).resize((437, 512)))
    pair = np.ascontiguousarray(np.hstack([astronaut, grace]))
    faces = photo_backend.detect([pair])[0]
    assert len(faces) == 2
    left, right = sorted(faces, key=lambda face: face.points[:, 0].mean())
    assert left.points[:, 0].max() < 512 < right.points[:, 0].min()  # one face in each photo
    for face in faces:
        assert_anatomically_sane(face)


def test_a_batch_gives_one_result_per_frame_in_order(photo_backend: MediapipeBackend, astronaut: np.ndarray) -> None:
    blank = np.zeros_like(astronaut)
    batch = photo_backend.detect([astronaut, blank, astronaut])
    assert [len(faces) for faces in batch] == [1, 0, 1]
    np.testing.assert_allclose(batch[0][0].points, batch[2][0].points, atol=0.5)


def test_video_mode_tracks_a_moving_face(astronaut: np.ndarray) -> None:
    step = 6
    frames = [np.ascontiguousarray(np.roll(astronaut, shift * step, axis=1)) for shift in range(6)]
    with MediapipeBackend(video=True) as backend:
        first = backend.detect(frames[:3])
        rest = backend.detect(frames[3:])  # the next batch continues the same video
        track = first + rest
        assert [len(faces) for faces in track] == [1] * 6
        noses = np.array([faces[0].points[ibug.NOSE_TIP] for faces in track])
        np.testing.assert_allclose(np.diff(noses[:, 0]), step, atol=1.5)
        np.testing.assert_allclose(np.diff(noses[:, 1]), 0, atol=1.5)
        assert all(faces[0].confidence > 0.7 for faces in track)
        backend.reset()  # a new video starts: found afresh, not from the last position
        [again] = backend.detect([frames[0]])
        np.testing.assert_allclose(again[0].points, track[0][0].points, atol=2.0)


def test_tracked_face_keeps_its_detection_score(astronaut: np.ndarray) -> None:
    """With as many faces tracked as max_faces, MediaPipe stops running its detector: the score found on the first
    frame carries over to the frames where the face is only tracked."""
    frames = [np.ascontiguousarray(np.roll(astronaut, shift * 5, axis=1)) for shift in range(4)]
    with MediapipeBackend(max_faces=1, video=True) as backend:
        track = backend.detect(frames)
    assert [len(faces) for faces in track] == [1] * 4
    assert track[0][0].confidence > 0.7
    assert {faces[0].confidence for faces in track} == {track[0][0].confidence}


def test_wrong_frames_are_refused(photo_backend: MediapipeBackend, astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="frame 1 must be an RGB uint8"):
        photo_backend.detect([astronaut, astronaut.astype(np.float32)])
    with pytest.raises(ValueError, match="frame 0"):
        photo_backend.detect([astronaut[:, :, 0]])


def test_closed_backend_refuses_frames(astronaut: np.ndarray) -> None:
    backend = MediapipeBackend(video=False)
    backend.close()
    backend.close()  # harmless twice
    with pytest.raises(RuntimeError, match="closed"):
        backend.detect([astronaut])


def test_mediapipe_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` now raises ImportError
    with pytest.raises(MissingWeights, match=r"scripts/setup.*mediapipe==0\.10\.21") as caught:
        MediapipeBackend()
    assert caught.value.names == ()


# --- open_backend --------------------------------------------------------------------------------------------------


def test_open_backend_names(astronaut: np.ndarray) -> None:
    assert BACKENDS == ("mediapipe", "face_alignment")
    with open_backend("mediapipe", video=False) as backend:
        assert backend.name == "mediapipe"
        assert len(backend.detect([astronaut])[0]) == 1
    with pytest.raises(ValueError, match="mediapipe, face_alignment"):
        open_backend("dlib")
    with pytest.raises(MissingWeights) as caught:
        open_backend("face_alignment")
    assert caught.value.names == (f"face_alignment/{FAN_FILE}", f"face_alignment/{SFD_FILE}")


# --- FAN (face_alignment) with random-init weights -----------------------------------------------------------------


def sfd_state(face_level: str | None) -> dict[str, Any]:
    """An S3FD whose box regressors output nothing and whose classifiers call every anchor of `face_level` a face
    (and nothing else): a detector with a known answer, since the real weights are not available offline."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd

    torch.manual_seed(1)
    network = s3fd()
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if "mbox" in name:
                parameter.zero_()
        if face_level is not None:
            getattr(network, f"{face_level}_mbox_conf").bias[-1] = 6.0
    return dict(network.state_dict())


@pytest.fixture(scope="module")
def fan_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-init weight files under face_alignment's names: a FAN, an S3FD that finds several faces, one that
    finds none, and two broken files."""
    import torch
    from face_alignment.models import FAN

    folder = tmp_path_factory.mktemp("fan_files")
    torch.manual_seed(0)
    files = {"fan": folder / FAN_FILE, "sfd_faces": folder / "sfd_faces.pth", "sfd_none": folder / "sfd_none.pth"}
    torch.save(FAN(4).state_dict(), files["fan"])
    torch.save(sfd_state("conv5_3_norm"), files["sfd_faces"])  # 64 px anchors every 16 px: several faces survive NMS
    torch.save(sfd_state(None), files["sfd_none"])
    files["garbage"] = folder / "garbage.bin"
    files["garbage"].write_bytes(b"<html>404 Not Found</html>" * 40)
    return files


def weights_folder(root: Path, fan: Path, sfd: Path) -> Path:
    """A weights_dir holding `fan` and `sfd` under face_alignment's names (links: the files are 90 MB each)."""
    root.mkdir()
    (root / FAN_FILE).symlink_to(fan)
    (root / SFD_FILE).symlink_to(sfd)
    return root


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every backend must work offline: opening a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a backend tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def offline_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """TORCH_HOME points into tmp (it must stay untouched), and face_alignment's heatmap decoder runs as plain
    Python: numba would spend ~10 s compiling it on the first frame, for loops over 68 points."""
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    import face_alignment.utils

    for name in ("_get_preds_fromhm", "transform_np"):
        compiled = getattr(face_alignment.utils, name)
        monkeypatch.setattr(face_alignment.utils, name, getattr(compiled, "py_func", compiled))
    return torch_home


@pytest.fixture(scope="module")
def random_frame() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)


def test_fan_runs_offline_from_weights_dir(
    fan_files: dict[str, Path], tmp_path: Path, offline_torch: Path, random_frame: np.ndarray
) -> None:
    import torch.hub

    hub_before = torch.hub.get_dir()
    weights = weights_folder(tmp_path / "weights", fan_files["fan"], fan_files["sfd_faces"])
    with FanBackend(weights, flip_input=False) as backend:
        assert torch.hub.get_dir() == hub_before  # the private hub folder was only set while loading
        [faces] = backend.detect([random_frame])
        assert backend.name == "face_alignment"
    assert len(faces) == 2  # the detector finds several; max_faces=2 keeps two
    for face in faces:
        assert face.points.shape == (68, 2) and face.points.dtype == np.float32
        assert np.all(np.isfinite(face.points))
        assert 0.0 <= face.confidence <= 1.0
        x0, y0, x1, y1 = face.box
        assert x1 - x0 == pytest.approx(64, abs=1) and y1 - y0 == pytest.approx(64, abs=1)  # S3FD's anchor
    assert not offline_torch.exists(), "the user's torch cache (TORCH_HOME) was written"
    assert torch.hub.get_dir() == hub_before


@pytest.mark.usefixtures("offline_torch")
def test_fan_frame_without_faces_gives_none(
    fan_files: dict[str, Path], tmp_path: Path, random_frame: np.ndarray
) -> None:
    weights = weights_folder(tmp_path / "weights", fan_files["fan"], fan_files["sfd_none"])
    with FanBackend(weights, flip_input=False, max_faces=1) as backend:
        assert backend.detect([random_frame, random_frame]) == [[], []]


@pytest.mark.usefixtures("offline_torch")
def test_fan_with_blazeface_builds_offline(
    fan_files: dict[str, Path], tmp_path: Path, random_frame: np.ndarray
) -> None:
    import torch
    from face_alignment.detection.blazeface.net_blazeface import BlazeFace

    detector = BlazeFace()
    with torch.no_grad():  # a BlazeFace that sees no face (random weights would flood its weighted NMS)
        for name, parameter in detector.named_parameters():
            if name.startswith("classifier"):
                parameter.fill_(0.0 if name.endswith("weight") else -20.0)
    (tmp_path / FAN_FILE).symlink_to(fan_files["fan"])
    torch.save(detector.state_dict(), tmp_path / "blazeface.pth")
    np.save(tmp_path / "anchors.npy", np.random.default_rng(0).random((896, 4)).astype(np.float32))
    with FanBackend(tmp_path, detector="blazeface", flip_input=False) as backend:
        assert backend.detect([random_frame]) == [[]]


def test_fan_bad_anchors_are_named(fan_files: dict[str, Path], tmp_path: Path) -> None:
    import torch
    from face_alignment.detection.blazeface.net_blazeface import BlazeFace

    (tmp_path / FAN_FILE).symlink_to(fan_files["fan"])
    torch.save(BlazeFace().state_dict(), tmp_path / "blazeface.pth")
    np.save(tmp_path / "anchors.npy", np.zeros((10, 3), np.float32))
    with pytest.raises(MissingWeights, match=r"anchors\.npy .* shape \(10, 3\)") as caught:
        FanBackend(tmp_path, detector="blazeface")
    assert caught.value.names == ("face_alignment/anchors.npy",)


def test_fan_missing_files_are_named(tmp_path: Path, fan_files: dict[str, Path]) -> None:
    with pytest.raises(MissingWeights, match="common/th/face_alignment/") as caught:
        FanBackend(tmp_path)
    assert caught.value.names == (f"face_alignment/{FAN_FILE}", f"face_alignment/{SFD_FILE}")
    (tmp_path / FAN_FILE).symlink_to(fan_files["fan"])
    with pytest.raises(MissingWeights) as caught:
        FanBackend(tmp_path, detector="blazeface")
    assert caught.value.names == ("face_alignment/blazeface.pth", "face_alignment/anchors.npy")
    with pytest.raises(ValueError, match="sfd, blazeface"):
        FanBackend(tmp_path, detector="yolo")


@pytest.mark.usefixtures("offline_torch")
def test_fan_garbage_file_is_named(fan_files: dict[str, Path], tmp_path: Path) -> None:
    weights = weights_folder(tmp_path / "weights", fan_files["fan"], fan_files["garbage"])
    with pytest.raises(MissingWeights, match=rf"{SFD_FILE} in .* is not a readable PyTorch weights file") as caught:
        FanBackend(weights)
    assert caught.value.names == (f"face_alignment/{SFD_FILE}",)


@pytest.mark.usefixtures("offline_torch")
def test_fan_wrong_file_is_named(fan_files: dict[str, Path], tmp_path: Path) -> None:
    # the detector's weights uploaded under FAN's name
    weights = weights_folder(tmp_path / "weights", fan_files["sfd_none"], fan_files["sfd_none"])
    with pytest.raises(MissingWeights, match=rf"{FAN_FILE} .* does not hold the weights") as caught:
        FanBackend(weights)
    assert caught.value.names == (f"face_alignment/{FAN_FILE}",)
