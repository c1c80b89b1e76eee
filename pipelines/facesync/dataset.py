"""facesync dataset task: member twins' `facesync/track.npz` -> datasets/facesync/{name}/ (see `dataset_stage`)."""

from __future__ import annotations

from pipelines.base import Pipeline
from pipelines.facesync.dataset_stage import SamplesStage


def build_pipeline() -> Pipeline:
    return Pipeline(model="facesync", task="dataset", output_area="datasets", stages=(SamplesStage(),))
