"""Reading a normalised still image as the RGB array the face code works on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipelines.base import BadInput


def read_rgb(path: Path, name: str) -> np.ndarray:
    """(H,W,3) uint8 RGB; `BadInput` naming `name` (the file's role, e.g. image/image.png) if it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise BadInput(f"{name} could not be read as an image ({exc}): run the twin's preprocess again") from exc
