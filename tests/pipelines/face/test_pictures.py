"""The preview pictures, checked the way an operator looks at them: colours where the points are, tiles where the
grid puts them, green and red borders, the nearer surface in front, nothing drawn outside the mesh, stable PNG bytes."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipelines.th.face.ibug import JAW
from pipelines.th.face.pictures import (
    LABEL_BAND_PX,
    MESH_AMBIENT,
    REJECTED_COLOR,
    SIDE_GAP_PX,
    SIDE_LABEL_BAND_PX,
    TILE_BORDER_PX,
    USABLE_COLOR,
    SheetTile,
    contact_sheet,
    draw_landmarks,
    mesh_overlay,
    sample_indices,
    save_png,
    sheet_cell_size,
    side_by_side,
)

GREEN = (0, 255, 0)
MESH = (180, 200, 255)


def face_points(center: tuple[float, float], size: float) -> np.ndarray:
    """A cartoon face in iBUG order: U-shaped jaw, arched brows, nose, eye rings, lip rings; `size` px wide."""

    def arc(count: int, x0: float, x1: float, y: float, rise: float) -> np.ndarray:
        t = np.linspace(0.0, 1.0, count)
        return np.column_stack([x0 + (x1 - x0) * t, y - rise * np.sin(np.pi * t)])

    def ring(count: int, x: float, y: float, rx: float, ry: float) -> np.ndarray:
        angle = np.linspace(np.pi, -np.pi, count, endpoint=False)
        return np.column_stack([x + rx * np.cos(angle), y + ry * np.sin(angle)])

    jaw_angle = np.linspace(0.0, np.pi, 17)
    unit = np.concatenate([
        np.column_stack([-0.9 * np.cos(jaw_angle), 0.9 * np.sin(jaw_angle)]),
        arc(5, -0.75, -0.15, -0.55, 0.15),
        arc(5, 0.15, 0.75, -0.55, 0.15),
        np.column_stack([np.zeros(4), np.linspace(-0.35, 0.1, 4)]),
        arc(5, -0.2, 0.2, 0.25, -0.05),
        ring(6, -0.42, -0.3, 0.17, 0.07),
        ring(6, 0.42, -0.3, 0.17, 0.07),
        ring(12, 0.0, 0.55, 0.38, 0.14),
        ring(8, 0.0, 0.55, 0.25, 0.05),
    ])
    points: np.ndarray = (unit * size / 2 + np.asarray(center)).astype(np.float32)
    return points


def black(height: int, width: int) -> np.ndarray:
    return np.zeros((height, width, 3), dtype=np.uint8)


def uniform(height: int, width: int, color: tuple[int, int, int]) -> np.ndarray:
    return np.full((height, width, 3), color, dtype=np.uint8)


# --- draw_landmarks ---------------------------------------------------------------------------------------------


def test_every_landmark_pixel_gets_the_colour_and_the_input_is_left_alone() -> None:
    image = black(200, 200)
    points = np.round(face_points((100, 100), 160))

    drawn = draw_landmarks(image, points, color=GREEN)

    columns, rows = points[:, 0].astype(int), points[:, 1].astype(int)
    assert (drawn[rows, columns] == GREEN).all()
    assert not image.any(), "the caller's image must not be drawn on"
    assert (drawn[:10, :10] == 0).all() and (drawn[-10:, -10:] == 0).all(), "far from the face nothing changes"


def test_sub_pixel_points_colour_their_nearest_pixel() -> None:
    points = face_points((100, 100), 160) + np.float32(0.3)

    drawn = draw_landmarks(black(200, 200), points, color=GREEN)

    nearest = np.floor(points + 0.5).astype(int)
    assert (drawn[nearest[:, 1], nearest[:, 0], 1] >= 200).all()


def test_consecutive_points_of_a_group_are_joined_and_other_pairs_are_not() -> None:
    points = np.full((68, 2), np.nan, dtype=np.float32)
    points[JAW[0]] = (20, 50)
    points[JAW[1]] = (80, 50)  # jaw 0-1: consecutive, a line between them
    points[JAW[3]] = (20, 150)
    points[JAW[5]] = (80, 150)  # jaw 3 and 5: not consecutive, and 4 between them is missing

    drawn = draw_landmarks(black(200, 100), points, color=GREEN)

    assert (drawn[50, 30:71, 1] >= 200).all(), "the line from jaw point 0 to jaw point 1"
    assert (drawn[150, 30:71] == 0).all(), "no line across the missing point"
    assert (drawn[150, 20] == GREEN).all() and (drawn[150, 80] == GREEN).all(), "the points themselves still show"


def test_a_face_with_all_points_missing_or_absurd_draws_nothing() -> None:
    points = np.full((68, 2), np.nan)
    points[:3] = [[np.inf, 10], [10, -np.inf], [1e300, 10]]
    drawn = draw_landmarks(black(50, 50), points)
    assert not drawn.any()


def test_draw_landmarks_refuses_a_wrong_number_of_points() -> None:
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        draw_landmarks(black(50, 50), np.zeros((5, 2)))


# --- sample_indices ---------------------------------------------------------------------------------------------


@given(n_frames=st.integers(2, 2000), count=st.integers(2, 60))
def test_sampled_frames_are_evenly_spread_from_first_to_last(n_frames: int, count: int) -> None:
    indices = sample_indices(n_frames, count)

    assert len(indices) == min(count, n_frames)
    assert indices[0] == 0 and indices[-1] == n_frames - 1
    gaps = np.diff(indices)
    assert (gaps > 0).all()
    assert gaps.max() - gaps.min() <= 1


def test_sample_indices_edge_cases() -> None:
    assert sample_indices(100, 5) == [0, 25, 50, 74, 99]
    assert sample_indices(10, 2) == [0, 9]
    assert sample_indices(3, 10) == [0, 1, 2]
    assert sample_indices(7, 1) == [0]
    assert sample_indices(0, 10) == []
    assert sample_indices(10, 0) == []


# --- contact_sheet ----------------------------------------------------------------------------------------------


def tile_color(position: int) -> tuple[int, int, int]:
    return (20 + 20 * position, 90, 160)


def test_sheet_puts_tiles_row_by_row_with_a_border_coloured_by_the_verdict() -> None:
    tile_size, columns = 64, 3
    tiles = [SheetTile(uniform(80, 80, tile_color(i)), None, f"#{i}", ok=i % 2 == 0) for i in range(7)]

    sheet = contact_sheet(tiles, columns=columns, tile_size=tile_size)

    cell_width, cell_height = sheet_cell_size(tile_size)
    assert (cell_width, cell_height) == (tile_size + 2 * TILE_BORDER_PX, tile_size + LABEL_BAND_PX + 2 * TILE_BORDER_PX)
    assert sheet.shape == (3 * cell_height, columns * cell_width, 3)
    for position, tile in enumerate(tiles):
        row, column = divmod(position, columns)
        top, left = row * cell_height, column * cell_width
        centre = sheet[top + TILE_BORDER_PX + tile_size // 2, left + TILE_BORDER_PX + tile_size // 2]
        assert tuple(centre) == tile_color(position), f"tile {position} is not at row {row}, column {column}"
        border = sheet[top : top + cell_height, left : left + cell_width]
        frame_pixels = np.concatenate([border[0], border[-1], border[:, 0], border[:, -1]])
        expected = USABLE_COLOR if tile.ok else REJECTED_COLOR
        assert (frame_pixels == expected).all()
        red, green = int(frame_pixels[0, 0]), int(frame_pixels[0, 1])
        assert (green > 2 * red) if tile.ok else (red > 2 * green), "usable is green, rejected is red"
    empty = sheet[2 * cell_height :, 1 * cell_width :]
    assert not (empty == USABLE_COLOR).all(axis=2).any() and not (empty == REJECTED_COLOR).all(axis=2).any()


def test_a_wide_frame_is_letterboxed_not_stretched() -> None:
    tile_size = 64
    sheet = contact_sheet([SheetTile(uniform(100, 200, (255, 255, 255)), None, "", True)], tile_size=tile_size)

    picture = sheet[TILE_BORDER_PX : TILE_BORDER_PX + tile_size, TILE_BORDER_PX : TILE_BORDER_PX + tile_size]
    white_rows = np.flatnonzero((picture == 255).all(axis=(1, 2)))
    assert len(white_rows) == tile_size // 2, "a 2:1 frame fills half the square's height"
    assert white_rows[0] == tile_size // 4, "centred, with equal black bars above and below"
    assert (picture[: tile_size // 4] == 0).all() and (picture[-tile_size // 4 :] == 0).all()


@pytest.mark.parametrize("frame_size", [512, 32], ids=["shrunk", "enlarged"])
def test_landmarks_are_drawn_where_the_face_lands_on_the_tile(frame_size: int) -> None:
    tile_size = 128
    factor = tile_size / frame_size
    # choose frame points whose images fall on tile pixel centres; resizing maps x' = (x + 0.5) * factor - 0.5
    on_tile = np.round(face_points((64, 64), 90))
    points = (on_tile + 0.5) / factor - 0.5

    sheet = contact_sheet([SheetTile(black(frame_size, frame_size), points, "#0", True)], tile_size=tile_size)

    rows = on_tile[:, 1].astype(int) + TILE_BORDER_PX
    columns = on_tile[:, 0].astype(int) + TILE_BORDER_PX
    assert (sheet[rows, columns] == GREEN).all()


def test_the_label_is_written_on_a_dark_band_under_the_frame() -> None:
    tile_size = 96
    labelled = contact_sheet([SheetTile(black(96, 96), None, "#12 0.48s too_dark", False)], tile_size=tile_size)
    silent = contact_sheet([SheetTile(black(96, 96), None, "", False)], tile_size=tile_size)

    top = TILE_BORDER_PX + tile_size
    band = labelled[top : top + LABEL_BAND_PX, TILE_BORDER_PX:-TILE_BORDER_PX].astype(int)
    empty_band = silent[top : top + LABEL_BAND_PX, TILE_BORDER_PX:-TILE_BORDER_PX].astype(int)
    assert empty_band.max() < 40, "the band is dark"
    assert (band.min(axis=2) > 180).sum() > 30, "light text on it"


def test_a_title_adds_a_band_on_top_and_long_titles_wrap() -> None:
    tiles = [SheetTile(uniform(64, 64, tile_color(0)), None, "#0", True)]
    plain = contact_sheet(tiles, tile_size=64)
    short = contact_sheet(tiles, tile_size=64, title="video: 9/10 usable")
    long = contact_sheet(tiles, tile_size=64, title="video: 9/10 usable; " * 6)

    assert short.shape[1] == plain.shape[1] == long.shape[1]
    title_height = short.shape[0] - plain.shape[0]
    assert title_height > 0 and long.shape[0] - plain.shape[0] > title_height
    assert (short[title_height:] == plain).all(), "the tiles sit unchanged under the title"
    assert (short[:title_height].min(axis=2) > 180).sum() > 30, "the title is written"


def test_an_empty_sheet_says_so() -> None:
    sheet = contact_sheet([], tile_size=64)
    assert sheet.shape[0] > 0 and sheet.shape[1] == sheet_cell_size(64)[0]
    assert (sheet.min(axis=2) > 180).sum() > 30


# --- mesh_overlay -----------------------------------------------------------------------------------------------
# Triangles are written counter-clockwise as seen on screen (x right, y down): top-left, bottom-left, top-right.


def test_a_triangle_facing_the_camera_gets_the_full_colour_and_nothing_outside_changes() -> None:
    frame = uniform(60, 60, (10, 20, 30))
    vertices = np.array([[10, 10, 0], [10, 50, 0], [50, 10, 0]], dtype=np.float64)

    drawn = mesh_overlay(frame, vertices, np.array([[0, 1, 2]]), color=MESH, alpha=1.0)

    ys, xs = np.mgrid[:60, :60]
    inside = (xs >= 10) & (ys >= 10) & (xs + ys <= 60)
    assert (drawn[inside] == MESH).all()
    assert (drawn[~inside] == frame[~inside]).all()
    assert (frame == (10, 20, 30)).all(), "the caller's frame must not be drawn on"


def test_alpha_blends_the_mesh_over_the_frame() -> None:
    frame = uniform(60, 60, (100, 0, 200))
    vertices = np.array([[10, 10, 0], [10, 50, 0], [50, 10, 0]], dtype=np.float64)

    drawn = mesh_overlay(frame, vertices, np.array([[0, 1, 2]]), color=(0, 200, 0), alpha=0.25)

    assert tuple(drawn[20, 20]) == (75, 50, 150)


def test_back_faces_are_culled() -> None:
    frame = uniform(60, 60, (10, 20, 30))
    vertices = np.array([[10, 10, 0], [10, 50, 0], [50, 10, 0]], dtype=np.float64)

    front = mesh_overlay(frame, vertices, np.array([[0, 1, 2]]), alpha=1.0)
    back = mesh_overlay(frame, vertices, np.array([[0, 2, 1]]), alpha=1.0)

    assert (front != frame).any()
    assert (back == frame).all(), "a triangle turned away from the camera is not drawn"


def two_overlapping_triangles() -> np.ndarray:
    """A far triangle facing the camera (x 5..45) and a nearer one tilted about the vertical axis (x 25..65)."""
    far = [[5, 5, 0], [5, 55, 0], [45, 30, 0]]
    near = [[25, 5, 100 + 0.5 * 25], [25, 55, 100 + 0.5 * 25], [65, 30, 100 + 0.5 * 65]]
    return np.array(far + near, dtype=np.float64)


@pytest.mark.parametrize("faces", [[[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]], ids=["far-first", "near-first"])
def test_the_nearer_triangle_shows_where_two_overlap_whatever_their_order(faces: list[list[int]]) -> None:
    frame = black(60, 70)

    drawn = mesh_overlay(frame, two_overlapping_triangles(), np.array(faces), color=MESH, alpha=1.0)

    far_only, near_only, overlap = drawn[30, 15], drawn[30, 55], drawn[30, 35]
    assert tuple(far_only) == MESH, "facing the camera: full colour"
    # tilted by atan(0.5): Lambert shading with the light at the camera gives cos = 1 / sqrt(1.25)
    brightness = MESH_AMBIENT + (1 - MESH_AMBIENT) / math.sqrt(1.25)
    assert np.abs(near_only.astype(float) - np.array(MESH) * brightness).max() <= 1
    assert tuple(overlap) == tuple(near_only)


@pytest.mark.parametrize("near_first", [False, True], ids=["far-first", "near-first"])
def test_the_nearer_of_two_frame_filling_triangles_shows(near_first: bool) -> None:
    # big enough that the rasteriser tests their pixels in more than one batch
    far = [[-10, -10, 0], [-10, 2000, 0], [2000, -10, 0]]  # facing the camera, covers the whole frame
    near = [[-10, -10, 200 - 5], [-10, 1000, 200 - 5], [1000, -10, 200 + 500]]  # tilted, covers x + y < 990
    vertices = np.array(near + far if near_first else far + near, dtype=np.float64)

    drawn = mesh_overlay(black(500, 500), vertices, np.array([[0, 1, 2], [3, 4, 5]]), color=MESH, alpha=1.0)

    ys, xs = np.mgrid[:500, :500]
    brightness = MESH_AMBIENT + (1 - MESH_AMBIENT) / math.sqrt(1.25)
    assert (np.abs(drawn[xs + ys < 985].astype(float) - np.array(MESH) * brightness) <= 1).all()
    assert (drawn[xs + ys > 995] == MESH).all()


def test_crossing_triangles_are_resolved_per_pixel() -> None:
    # A faces the camera at depth 0; B is tilted through it, nearer right of x = 40 and farther left of it.
    vertices = np.array(
        [[5, 5, 0], [5, 55, 0], [75, 30, 0], [5, 10, -0.8 * 35], [5, 50, -0.8 * 35], [75, 30, 0.8 * 35]],
        dtype=np.float64,
    )
    for faces in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):
        drawn = mesh_overlay(black(60, 80), vertices, np.array(faces), color=MESH, alpha=1.0)
        assert tuple(drawn[30, 20]) == MESH, "left of the crossing the facing triangle is in front"
        assert drawn[30, 60, 2] < MESH[2] - 20, "right of it the tilted (darker) one is in front"


def uv_sphere(rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere in FLAME's frame (y up, z to the viewer) with outward, counter-clockwise faces."""
    theta = np.pi * np.arange(1, rings) / rings
    phi = 2 * np.pi * np.arange(segments) / segments
    ring_points = np.stack(
        [np.outer(np.sin(theta), np.sin(phi)), np.repeat(np.cos(theta), segments).reshape(-1, segments),
         np.outer(np.sin(theta), np.cos(phi))], axis=-1
    ).reshape(-1, 3)
    vertices = np.concatenate([[[0, 1, 0]], ring_points, [[0, -1, 0]]])
    bottom = len(vertices) - 1

    def at(ring: int, segment: int) -> int:
        return 1 + (ring - 1) * segments + segment % segments

    faces = [(0, at(1, j), at(1, j + 1)) for j in range(segments)]
    for i in range(1, rings - 1):
        for j in range(segments):
            faces += [(at(i, j), at(i + 1, j), at(i + 1, j + 1)), (at(i, j), at(i + 1, j + 1), at(i, j + 1))]
    faces += [(at(rings - 1, j), bottom, at(rings - 1, j + 1)) for j in range(segments)]
    return vertices, np.array(faces, dtype=np.int64)


def test_a_closed_mesh_in_flame_convention_renders_as_a_lit_disc() -> None:
    sphere, faces = uv_sphere(24, 32)
    scale, tx, ty = 40.0, 50.0, 50.0  # flame.camera: u = s X + tx, v = -s Y + ty; depth s Z grows to the camera
    pixels = np.column_stack([scale * sphere[:, 0] + tx, -scale * sphere[:, 1] + ty, scale * sphere[:, 2]])
    frame = uniform(100, 100, (7, 7, 7))

    drawn = mesh_overlay(frame, pixels, faces, color=MESH, alpha=1.0)

    ys, xs = np.mgrid[:100, :100]
    radius = np.hypot(xs - tx, ys - ty)
    assert (drawn[radius < 0.95 * scale] != 7).all(axis=1).all(), "the whole front of the sphere is covered"
    assert (drawn[radius > 1.02 * scale] == 7).all(), "nothing outside its outline"
    assert np.abs(drawn[50, 50].astype(int) - MESH).max() <= 3, "facing the camera at the centre: full colour"
    blue = drawn[50, 50:90, 2].astype(int)
    assert blue[0] > blue[20] > blue[38], "darker towards the rim, where the surface turns away"


def test_wireframe_darkens_the_edges_between_triangles_only() -> None:
    # a square of two triangles sharing the diagonal x + y = 60
    vertices = np.array([[10, 10, 0], [10, 50, 0], [50, 10, 0], [50, 50, 0]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [2, 1, 3]])

    plain = mesh_overlay(black(60, 60), vertices, faces, color=MESH, alpha=1.0)
    wired = mesh_overlay(black(60, 60), vertices, faces, color=MESH, alpha=1.0, wireframe=True)

    assert (plain[10:51, 10:51] == MESH).all(), "coplanar triangles shade alike: no seam without the wireframe"
    darker = np.asarray((wired < plain).all(axis=2))
    ys, xs = np.mgrid[:60, :60]
    near_diagonal = np.asarray(np.abs(xs + ys - 60) <= 1)
    interior = (xs >= 12) & (xs <= 48) & (ys >= 12) & (ys <= 48)
    assert all(darker[row, near_diagonal[row]].any() for row in range(15, 46)), "the shared edge is drawn"
    assert not darker[interior & ~near_diagonal].any(), "the triangles' insides are not"


def test_triangles_with_missing_or_absurd_vertices_are_skipped() -> None:
    vertices = np.array(
        [[10, 10, 0], [10, 50, 0], [50, 10, 0], [np.nan, 5, 0], [np.inf, 5, 0], [1e300, 5, 0]], dtype=np.float64
    )
    faces = np.array([[0, 1, 2], [0, 3, 2], [0, 4, 2], [0, 5, 2]])
    drawn = mesh_overlay(black(60, 60), vertices, faces, color=MESH, alpha=1.0)
    assert tuple(drawn[20, 20]) == MESH and not drawn[:10].any()


def test_a_mesh_off_the_frame_leaves_it_unchanged() -> None:
    frame = uniform(40, 40, (1, 2, 3))
    vertices = np.array([[100, 100, 0], [100, 150, 0], [150, 100, 0]], dtype=np.float64)
    assert (mesh_overlay(frame, vertices, np.array([[0, 1, 2]])) == frame).all()


def test_faces_pointing_past_the_vertices_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        mesh_overlay(black(10, 10), np.zeros((3, 3)), np.array([[0, 1, 3]]))


# --- side_by_side and save_png ----------------------------------------------------------------------------------


def test_side_by_side_places_each_image_under_its_label() -> None:
    left, right = uniform(40, 30, (255, 0, 0)), uniform(20, 50, (0, 0, 255))

    panel = side_by_side([left, right], ["frame 12", "FLAME fit, error 1.3 px"])

    assert panel.shape == (SIDE_LABEL_BAND_PX + 40, 30 + SIDE_GAP_PX + 50, 3)
    assert (panel[SIDE_LABEL_BAND_PX:, :30] == left).all()
    right_x = 30 + SIDE_GAP_PX
    assert (panel[SIDE_LABEL_BAND_PX : SIDE_LABEL_BAND_PX + 20, right_x:] == right).all()
    for x0, x1 in ((0, 30), (right_x, right_x + 50)):
        assert (panel[:SIDE_LABEL_BAND_PX, x0:x1].min(axis=2) > 180).sum() > 10, "a label over each image"


def test_side_by_side_needs_a_label_per_image() -> None:
    with pytest.raises(ValueError, match="one label per image"):
        side_by_side([black(4, 4), black(4, 4)], ["only one"])


def test_save_png_writes_the_same_bytes_for_the_same_image(tmp_path: Path) -> None:
    image = np.random.default_rng(3).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    same_but_strided = np.asfortranarray(image)

    save_png(tmp_path / "a.png", image)
    save_png(tmp_path / "b.png", same_but_strided)
    save_png(tmp_path / "c.png", image[::-1])

    first, second = (tmp_path / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
    assert first == second
    assert (tmp_path / "c.png").read_bytes() != first
    assert b"tIME" not in first and b"tEXt" not in first, "no timestamp or text metadata"
    with Image.open(io.BytesIO(first)) as decoded:
        assert decoded.mode == "RGB"
        assert (np.asarray(decoded) == image).all()
