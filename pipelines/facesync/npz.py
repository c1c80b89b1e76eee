"""Write `.npz` archives that are byte-identical for identical arrays.

The platform compares checksums to skip unchanged work, so the same arrays must give the same bytes: members are
written in the given order with a fixed ZIP timestamp and never pickled, whatever numpy version is installed.
The result is an ordinary `.npz` (`numpy.load` reads it, no pickles).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP entry can carry


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` (name -> array; no object arrays) to `path` atomically and uncompressed.

    Uncompressed because float32 audio and landmarks hardly compress and training reads samples often."""
    partial = path.with_name(path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
