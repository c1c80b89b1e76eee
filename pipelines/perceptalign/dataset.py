"""perceptalign dataset: many twins' chunks assembled into one SpecVQGAN-style training set (see dataset_stage)."""

from __future__ import annotations

from pipelines.base import Pipeline, Stage
from pipelines.perceptalign.dataset_stage import DatasetStage


def build_pipeline() -> Pipeline:
    stages: tuple[Stage, ...] = (DatasetStage(),)
    return Pipeline(model="perceptalign", task="dataset", output_area="datasets", stages=stages)
