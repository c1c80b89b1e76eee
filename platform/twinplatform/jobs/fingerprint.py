"""Input fingerprints: a stage whose inputs, parameters and version match a committed run is skipped."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def input_fingerprint(stage: str, version: str, params: Mapping[str, Any], input_checksums: Mapping[str, str]) -> str:
    """SHA-256 over the stage's identity, its code version, its parameters and its inputs' content hashes.

    File names are deliberately left out: the same bytes uploaded under another name are the same input.
    """
    canonical = json.dumps(
        {"stage": stage, "version": version, "params": dict(params), "inputs": dict(input_checksums)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
