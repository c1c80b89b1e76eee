"""The dataset task's own parameters (the chunk settings are `settings.ChunkSettings`), checked up front."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.base import BadInput
from pipelines.dataset_kit.params import fraction, whole_number

DEFAULT_TRAIN = 0.8
DEFAULT_VALID = 0.1
DEFAULT_JPEG_QUALITY = 95  # OpenCV's default, what denseflow's imencode used
SPLIT_BY = ("chunk", "twin")


@dataclass(frozen=True)
class DatasetParams:
    """`class_name` None: each twin is its own class. `split_by` "chunk" (the seed: chunks of one recording may
    land in different splits) or "twin" (all of a twin's chunks in one split: no speaker in two splits)."""

    name: str
    train_percent: float = DEFAULT_TRAIN
    valid_percent: float = DEFAULT_VALID
    seed: int = 0
    class_name: str | None = None
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    split_by: str = "chunk"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DatasetParams:
        name = params.get("dataset")
        if not isinstance(name, str) or not safe_name(name):
            raise BadInput(
                f"parameter dataset={name!r} is not a usable dataset name: give a name of letters, digits, '-', "
                "'_' or '.' (it names the split files, e.g. NAME_train.txt)"
            )
        train = fraction(params, "train_percent", DEFAULT_TRAIN)
        valid = fraction(params, "valid_percent", DEFAULT_VALID)
        if train + valid > 1 + 1e-9:
            raise BadInput(
                f"parameters train_percent={train:g} and valid_percent={valid:g} add up to more than 1; the test "
                "split gets the rest, so give fractions whose sum is at most 1"
            )
        seed = whole_number(params, "seed", 0, -(2**63), 2**63 - 1)
        class_name = params.get("class_name")
        if class_name is not None and (not isinstance(class_name, str) or not safe_name(class_name)):
            raise BadInput(
                f"parameter class_name={class_name!r} is not a usable folder name: give letters, digits, '-', '_' "
                "or '.', or leave it out to make each twin its own class"
            )
        quality = whole_number(params, "jpeg_quality", DEFAULT_JPEG_QUALITY, 1, 100)
        split_by = params.get("split_by", "chunk")
        if split_by not in SPLIT_BY:
            raise BadInput(f"parameter split_by={split_by!r} is not one of {', '.join(SPLIT_BY)} (default chunk)")
        return cls(name, train, valid, seed, class_name, quality, str(split_by))

    @property
    def fractions(self) -> dict[str, float]:
        return {"train": self.train_percent, "valid": self.valid_percent, "test": 1.0 - self.train_percent
                - self.valid_percent}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def safe_name(name: str) -> bool:
    """A folder or file-name part: no separators, not '.' or '..', nothing a split-file line could break on."""
    return bool(name) and name not in {".", ".."} and all(c.isalnum() or c in "-_." for c in name)
