"""Relative names of facesync's outputs, in one place: the preprocess writes them, the dataset task reads them.

Per twin (under processed/{twin}/preprocessed/facesync/): th's media and landmarks files plus the two below.
Per dataset (under datasets/facesync/{name}/): the sample folders, the statistics and the kit's manifest.
"""

from __future__ import annotations

TRACK_NPZ = "facesync/track.npz"
VALIDATION_JSON = "facesync/validation.json"

TRAIN_DIR = "train/"
VAL_DIR = "val/"
LM_MEAN = "lm_mean.npy"
LM_STD = "lm_std.npy"


def sample_name(twin: str, start_frame: int) -> str:
    """A sample's file name inside its split folder: the twin and the window's first frame, so names never clash
    and sort in time order within a twin."""
    return f"{twin}_{start_frame:06d}.npz"
