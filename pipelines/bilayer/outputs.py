"""Relative names of the bilayer outputs, in one place: the preprocess writes them, the dataset task reads them."""

from __future__ import annotations

# Per twin, under processed/{twin}/preprocessed/bilayer/.
SAMPLES_NPZ = "bilayer/samples.npz"
REPORT_JSON = "bilayer/report.json"

# Per dataset, under datasets/bilayer/{name}/: the three VoxCeleb2-style trees, one file per frame each.
IMGS = "imgs/"
KEYPOINTS = "keypoints/"
SEGS = "segs/"
TREES = {IMGS: ".jpg", KEYPOINTS: ".npy", SEGS: ".png"}
PHASES = ("train", "test")
