"""The preview pictures an operator opens to judge at a glance whether preprocessing worked.

draw_landmarks   the 68 iBUG points and their polylines on a copy of a frame
contact_sheet    a grid of sampled frames with landmarks, a label each and a green (usable) or red (rejected) border
sample_indices   which frames such a sheet shows: evenly spaced, first and last included
mesh_overlay     a flat-shaded mesh (e.g. the fitted FLAME head) blended over the frame it was fitted to
side_by_side     panels with a label band each, e.g. "frame | frame + mesh"
save_png         RGB uint8 to PNG with the same bytes for the same image

Images are RGB uint8 (H, W, 3); functions return new images and never change their arguments. Pixel coordinates
follow `types.py`: x right, y down, (0, 0) the centre of the top-left pixel. Text is drawn with OpenCV's built-in
Hershey font (no font file to ship), which has ASCII only: other characters are shown as "?".
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipelines.th.face.ibug import POLYLINES
from pipelines.th.face.types import NUM_LANDMARKS

Color = tuple[int, int, int]

USABLE_COLOR: Color = (0, 200, 0)
REJECTED_COLOR: Color = (220, 0, 0)
TILE_BORDER_PX = 3
LABEL_BAND_PX = 20
TITLE_LINE_PX = 22
SIDE_LABEL_BAND_PX = 28
SIDE_GAP_PX = 4
MESH_AMBIENT = 0.25
"""Share of the mesh colour a triangle keeps when seen edge-on, so grazing parts stay visible (not black)."""

_BACKGROUND: Color = (32, 32, 32)
_BAND: Color = (16, 16, 16)
_TEXT: Color = (235, 235, 235)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SHIFT = 4  # fractional bits of OpenCV drawing coordinates: landmarks land at sub-pixel positions
_FAR_PX = 1e6  # points farther out cannot be drawn (OpenCV's fixed-point coordinates would overflow)
_RASTER_BUDGET = 1 << 18  # (triangle, pixel) candidates tested at once: keeps the rasteriser to tens of MB


def _check_image(image: np.ndarray, name: str = "image") -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} has shape {image.shape} and dtype {image.dtype}, expected RGB uint8 (H, W, 3)")


# --- landmarks -------------------------------------------------------------------------------------------------


def draw_landmarks(
    image: np.ndarray,
    points: np.ndarray,
    *,
    color: Color = (0, 255, 0),
    thickness: int = 1,
    radius: int = 1,
) -> np.ndarray:
    """A copy of `image` with the 68 `points` (68, 2) as filled dots of `radius` px joined by the iBUG polylines.

    Anti-aliased and placed to 1/16 px. A NaN (or absurdly far) point is not drawn, nor are the lines touching it,
    so a partly lost face shows as a partial drawing instead of lines to the corner.
    """
    _check_image(image)
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"points have shape {points.shape}, expected ({NUM_LANDMARKS}, 2)")
    canvas: np.ndarray = image.copy()
    drawable = (np.abs(np.nan_to_num(points, nan=np.inf)) < _FAR_PX).all(axis=1)
    fixed = np.round(np.where(drawable[:, None], points, 0.0) * (1 << _SHIFT)).astype(np.int64)
    for group, closed in POLYLINES:
        indices = list(group) + ([group[0]] if closed else [])
        for start, end in zip(indices[:-1], indices[1:], strict=True):
            if drawable[start] and drawable[end]:
                cv2.line(canvas, _pt(fixed[start]), _pt(fixed[end]), color, thickness, cv2.LINE_AA, _SHIFT)
    for index in np.flatnonzero(drawable):
        cv2.circle(canvas, _pt(fixed[index]), radius << _SHIFT, color, -1, cv2.LINE_AA, _SHIFT)
    return canvas


def _pt(fixed: np.ndarray) -> tuple[int, int]:
    return int(fixed[0]), int(fixed[1])


# --- contact sheet ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SheetTile:
    """One frame on a contact sheet.

    image   RGB uint8 (H, W, 3), the frame as decoded
    points  (68, 2) landmarks in the frame's pixels, or None when no face was found
    label   what the operator needs to find the frame and the verdict: number, time, reason
    ok      True for a usable frame (green border), False for a rejected one (red border)
    """

    image: np.ndarray
    points: np.ndarray | None
    label: str
    ok: bool


def sample_indices(n_frames: int, count: int) -> list[int]:
    """`count` frame indices evenly spread over `n_frames`, always the first and the last (all frames when
    `count >= n_frames`; just the first when `count == 1`)."""
    if n_frames < 0 or count < 0:
        raise ValueError(f"n_frames ({n_frames}) and count ({count}) must not be negative")
    if n_frames == 0 or count == 0:
        return []
    if count >= n_frames:
        return list(range(n_frames))
    if count == 1:
        return [0]
    step = (n_frames - 1) / (count - 1)
    return [int(math.floor(i * step + 0.5)) for i in range(count)]


def sheet_cell_size(tile_size: int) -> tuple[int, int]:
    """(width, height) in px of one tile on a contact sheet: the letterboxed frame, its label band, the border."""
    return tile_size + 2 * TILE_BORDER_PX, tile_size + LABEL_BAND_PX + 2 * TILE_BORDER_PX


def contact_sheet(
    tiles: Sequence[SheetTile], *, columns: int = 5, tile_size: int = 256, title: str | None = None
) -> np.ndarray:
    """A grid of `tiles`, row by row, at most `columns` wide, under an optional `title` band (wrapped to fit).

    Each cell (`sheet_cell_size`) holds the frame resized to fit `tile_size` square (aspect kept, black bars),
    its landmarks, the label on a dark band below, and a border of `TILE_BORDER_PX` in `USABLE_COLOR` or
    `REJECTED_COLOR`. With no tiles the sheet is the title band alone ("no frames" when there is no title).
    """
    if columns < 1 or tile_size < 8:
        raise ValueError(f"columns ({columns}) must be >= 1 and tile_size ({tile_size}) >= 8")
    cell_width, cell_height = sheet_cell_size(tile_size)
    used_columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / used_columns)
    width = used_columns * cell_width
    title_band = _title_band(title if title is not None or tiles else "no frames", width)
    sheet = np.full((rows * cell_height, width, 3), _BACKGROUND, dtype=np.uint8)
    for position, tile in enumerate(tiles):
        row, column = divmod(position, used_columns)
        y, x = row * cell_height, column * cell_width
        sheet[y : y + cell_height, x : x + cell_width] = _cell(tile, tile_size)
    return sheet if title_band is None else np.concatenate([title_band, sheet], axis=0)


def _cell(tile: SheetTile, tile_size: int) -> np.ndarray:
    _check_image(tile.image, "tile image")
    cell_width, cell_height = sheet_cell_size(tile_size)
    cell = np.full((cell_height, cell_width, 3), USABLE_COLOR if tile.ok else REJECTED_COLOR, dtype=np.uint8)
    picture, scale, offset = _letterbox(tile.image, tile_size)
    if tile.points is not None:
        # cv2.resize maps pixel centres: x' = (x + 0.5) * scale - 0.5, then the letterbox offset
        points = (np.asarray(tile.points, dtype=np.float64) + 0.5) * scale - 0.5 + offset
        picture = draw_landmarks(picture, points)
    border = TILE_BORDER_PX
    cell[border : border + tile_size, border : border + tile_size] = picture
    band = cell[border + tile_size : border + tile_size + LABEL_BAND_PX, border : border + tile_size]
    band[:] = _BAND
    _write(band, tile.label, scale=0.42)
    return cell


def _letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`image` resized to fit a `size` square on black; the (x, y) scale and offset that map its pixels there."""
    height, width = image.shape[:2]
    factor = size / max(height, width)
    new_width, new_height = max(1, round(width * factor)), max(1, round(height * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    left, top = (size - new_width) // 2, (size - new_height) // 2
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[top : top + new_height, left : left + new_width] = resized
    scale = np.array([new_width / width, new_height / height])
    return canvas, scale, np.array([left, top], dtype=np.float64)


def _title_band(title: str | None, width: int) -> np.ndarray | None:
    if title is None:
        return None
    lines = _wrap(_ascii(title), width - 16, scale=0.55)
    band = np.full((len(lines) * TITLE_LINE_PX + 8, width, 3), _BAND, dtype=np.uint8)
    for number, line in enumerate(lines):
        _write(band[4 + number * TITLE_LINE_PX : 4 + (number + 1) * TITLE_LINE_PX], line, scale=0.55)
    return band


# --- text ------------------------------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return "".join(character if " " <= character <= "~" else "?" for character in text)


def _text_width(text: str, scale: float) -> int:
    (width, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
    return int(width)


def _wrap(text: str, width: int, scale: float) -> list[str]:
    """Greedy word wrap to `width` px; a word too long for a line of its own is cut by `_fit` when drawn."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and _text_width(candidate, scale) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _fit(text: str, width: int, scale: float) -> str:
    """`text`, cut and ended with "..." if it is wider than `width` px."""
    if _text_width(text, scale) <= width:
        return text
    while text and _text_width(text + "...", scale) > width:
        text = text[:-1]
    return text + "..."


def _write(band: np.ndarray, text: str, *, scale: float) -> None:
    """Draw one line of `text` in place on `band` (a view), left-aligned and vertically centred, cut to fit."""
    height, width = band.shape[:2]
    line = _fit(_ascii(text), width - 8, scale)
    (_, text_height), _ = cv2.getTextSize(line, _FONT, scale, 1)
    cv2.putText(band, line, (4, (height + text_height) // 2), _FONT, scale, _TEXT, 1, cv2.LINE_AA)


# --- mesh ------------------------------------------------------------------------------------------------------


def mesh_overlay(
    frame: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    color: Color = (180, 200, 255),
    alpha: float = 0.6,
    wireframe: bool = False,
) -> np.ndarray:
    """A copy of `frame` with the mesh drawn opaque, flat-shaded, and blended over it with `alpha`.

    vertices  (V, 3): x, y in the frame's pixels and a depth z where LARGER z is NEARER the camera, in pixels too
              (the orthographic projection of a mesh whose z points at the viewer, scaled like x and y, as
              `flame.camera` does), so the shading sees true surface angles
    faces     (F, 3) vertex indices; a face is front-facing when its vertices run counter-clockwise as seen by the
              camera (outward normals, the OBJ and FLAME convention); back faces are culled

    Shading is Lambert with the light at the camera: `color * (MESH_AMBIENT + (1 - MESH_AMBIENT) * cos)`, cos the
    angle between the face normal and the view direction. Visibility is a per-pixel z-buffer (interpenetrating
    triangles are right too); a pixel belongs to a triangle when its centre lies inside. `wireframe` darkens the
    visible edges between triangles. Pixels outside the mesh's footprint are returned unchanged.
    """
    _check_image(frame, "frame")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha {alpha} is outside [0, 1]")
    face_id, shade = rasterize(vertices, faces, frame.shape[:2])
    covered = face_id >= 0
    brightness = MESH_AMBIENT + (1.0 - MESH_AMBIENT) * shade[face_id[covered]]
    rendered = np.asarray(color, dtype=np.float64) * brightness[:, None]
    if wireframe:
        rendered *= np.where(_id_edges(face_id)[covered], 0.55, 1.0)[:, None]
    output: np.ndarray = frame.copy()
    blended = (1.0 - alpha) * frame[covered].astype(np.float64) + alpha * rendered
    output[covered] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return output


def rasterize(vertices: np.ndarray, faces: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The visible front-facing triangle at every pixel of an image of `size` (height, width).

    Conventions as in `mesh_overlay`. Returns `face_id` (H, W) int64, the index into `faces` of the nearest
    front-facing triangle whose interior holds the pixel's centre (-1: none), and `cosine` (F,) float64, each
    face's cosine to the view direction (<= 0 for back faces). Triangles with a non-finite vertex, or one
    farther than 1e6 px, are skipped.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices have shape {vertices.shape}, expected (V, 3)")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces have shape {faces.shape} and dtype {faces.dtype}, expected (F, 3) integers")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces refer to vertices outside [0, {len(vertices)})")
    height, width = size
    triangles = vertices[faces.astype(np.int64)]  # (F, 3 corners, xyz)
    usable = (np.abs(np.nan_to_num(triangles, nan=np.inf)) < _FAR_PX).all(axis=(1, 2))
    triangles = np.where(usable[:, None, None], triangles, 0.0)  # skipped ones become points: no NaN arithmetic
    # Normal in a right-handed frame (x right, y UP, z to the viewer): its z > 0 exactly for counter-clockwise faces.
    upright = triangles * np.array([1.0, -1.0, 1.0])
    normal = np.cross(upright[:, 1] - upright[:, 0], upright[:, 2] - upright[:, 0])
    length = np.linalg.norm(normal, axis=1)
    cosine = np.where(length > 0, normal[:, 2] / np.where(length > 0, length, 1.0), 0.0)

    low = np.maximum(np.ceil(triangles[:, :, :2].min(axis=1)), 0.0)
    high = np.minimum(np.floor(triangles[:, :, :2].max(axis=1)), [width - 1.0, height - 1.0])
    keep = np.flatnonzero(usable & (normal[:, 2] > 0) & (high >= low).all(axis=1))

    face_id = np.full(height * width, -1, dtype=np.int64)
    depth = np.full(height * width, -np.inf)
    if len(keep) == 0:
        return face_id.reshape(height, width), cosine
    planes = _planes(triangles[keep])
    x0, y0 = low[keep, 0].astype(np.int64), low[keep, 1].astype(np.int64)
    box_width = high[keep, 0].astype(np.int64) - x0 + 1
    counts = box_width * (high[keep, 1].astype(np.int64) - y0 + 1)
    ends = np.cumsum(counts)
    # Every (triangle, pixel of its box) pair is a candidate; they are tested a bounded batch at a time.
    for first in range(0, int(ends[-1]), _RASTER_BUDGET):
        candidate = np.arange(first, min(first + _RASTER_BUDGET, int(ends[-1])))
        owner = np.searchsorted(ends, candidate, side="right")
        offset = candidate - (ends[owner] - counts[owner])
        px = x0[owner] + offset % box_width[owner]
        py = y0[owner] + offset // box_width[owner]
        plane = planes[owner]  # (N, 3 quantities, 3 coefficients)
        values = plane[:, :, 0] * px[:, None] + plane[:, :, 1] * py[:, None] + plane[:, :, 2]
        weight_a, weight_b, z = values[:, 0], values[:, 1], values[:, 2]
        tolerance = -1e-9  # a centre exactly on a shared edge must not fall between the two triangles
        inside = (weight_a >= tolerance) & (weight_b >= tolerance) & (1.0 - weight_a - weight_b >= tolerance)
        _keep_nearest(py[inside] * width + px[inside], z[inside], keep[owner[inside]], face_id, depth)
    return face_id.reshape(height, width), cosine


def _planes(triangles: np.ndarray) -> np.ndarray:
    """(K, 3, 3): for each triangle, the coefficients (of x, of y, constant) of the barycentric weights of its
    corners a and b and of its depth, all linear in the pixel position (orthographic projection)."""
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = (triangles[:, k].T for k in range(3))
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)  # non-zero: only faces with a non-zero normal get here
    weight_a = np.stack([-(cy - by), cx - bx, (cy - by) * bx - (cx - bx) * by], axis=1) / area[:, None]
    weight_b = np.stack([-(ay - cy), ax - cx, (ay - cy) * cx - (ax - cx) * cy], axis=1) / area[:, None]
    weight_c = np.array([0.0, 0.0, 1.0]) - weight_a - weight_b
    depth = weight_a * az[:, None] + weight_b * bz[:, None] + weight_c * cz[:, None]
    return np.stack([weight_a, weight_b, depth], axis=1)


def _keep_nearest(pixel: np.ndarray, z: np.ndarray, hit: np.ndarray, face_id: np.ndarray, depth: np.ndarray) -> None:
    """Write into the flat buffers the nearest of these hits at each pixel, where it beats what is there."""
    order = np.lexsort((-z, pixel))  # by pixel, then nearest first; the first of each pixel's run wins
    pixel, z, hit = pixel[order], z[order], hit[order]
    first = np.ones(len(pixel), dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    pixel, z, hit = pixel[first], z[first], hit[first]
    nearer = z > depth[pixel]
    depth[pixel[nearer]] = z[nearer]
    face_id[pixel[nearer]] = hit[nearer]


def _id_edges(face_id: np.ndarray) -> np.ndarray:
    """(H, W) bool: covered pixels next to a pixel of another triangle or of the background."""
    edges = np.zeros(face_id.shape, dtype=bool)
    horizontal = face_id[:, 1:] != face_id[:, :-1]
    vertical = face_id[1:] != face_id[:-1]
    edges[:, 1:] |= horizontal
    edges[:, :-1] |= horizontal
    edges[1:] |= vertical
    edges[:-1] |= vertical
    return edges & (face_id >= 0)


# --- panels and files ------------------------------------------------------------------------------------------


def side_by_side(images: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
    """`images` left to right at their own scale, `SIDE_GAP_PX` apart and top-aligned, each under a dark band of
    `SIDE_LABEL_BAND_PX` holding its label (cut to fit)."""
    if len(images) != len(labels) or not images:
        raise ValueError(f"side_by_side needs one label per image and at least one image, got {len(images)} "
                         f"images and {len(labels)} labels")
    for image in images:
        _check_image(image)
    height = SIDE_LABEL_BAND_PX + max(image.shape[0] for image in images)
    width = sum(image.shape[1] for image in images) + SIDE_GAP_PX * (len(images) - 1)
    canvas = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    x = 0
    for image, label in zip(images, labels, strict=True):
        image_height, image_width = image.shape[:2]
        band = canvas[:SIDE_LABEL_BAND_PX, x : x + image_width]
        band[:] = _BAND
        _write(band, label, scale=0.5)
        canvas[SIDE_LABEL_BAND_PX : SIDE_LABEL_BAND_PX + image_height, x : x + image_width] = image
        x += image_width + SIDE_GAP_PX
    return canvas


def save_png(path: Path, image: np.ndarray) -> None:
    """Write `image` (RGB uint8) as a PNG with no timestamp or other metadata: the same image gives the same bytes,
    so an unchanged preview does not look changed to storage checksums."""
    _check_image(image)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=6)
    Path(path).write_bytes(buffer.getvalue())
