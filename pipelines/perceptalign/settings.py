"""The chunking and flow settings, read from job parameters with this model's defaults.

The same settings shape a twin's preprocess outputs and the dataset's folder names, so the preprocess and the
dataset task read them with one parser: a dataset only takes twins preprocessed with the settings it was asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from pipelines.base import BadInput
from pipelines.dataset_kit.params import number, whole_number

DEFAULT_FPS = 21.5  # SpecVQGAN's video rate: 215 frames per 10 s chunk
DEFAULT_SAMPLE_RATE_HZ = 22050  # SpecVQGAN's audio rate (its MelGAN vocoder's)
DEFAULT_DURATION_S = 10.0
DEFAULT_FLOW_SHORT_SIDE = 256  # TSN/Kinetics convention; the BN-Inception flow extractor resizes to 224 anyway
DEFAULT_FLOW_BOUND = 20.0  # TSN's build_of.py (-b 20): what the Kinetics BN-Inception flow weights were fed
FLOW_ALGORITHMS = ("auto", "farneback", "tvl1")


@dataclass(frozen=True)
class ChunkSettings:
    """How a twin's recording is cut and described. `flow_short_side` 0 keeps the video's own size."""

    fps: float = DEFAULT_FPS
    sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ
    duration_s: float = DEFAULT_DURATION_S
    flow_short_side: int = DEFAULT_FLOW_SHORT_SIDE
    flow_bound: float = DEFAULT_FLOW_BOUND

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ChunkSettings:
        """Parse and check the job's parameters; BadInput names the parameter, its value and what to give."""
        settings = cls(
            fps=number(params, "fps", DEFAULT_FPS, 1, 120),
            sample_rate_hz=whole_number(params, "sample_rate_hz", DEFAULT_SAMPLE_RATE_HZ, 8000, 192000),
            duration_s=number(params, "duration_s", DEFAULT_DURATION_S, 0.1, 600),
            flow_short_side=whole_number(params, "flow_short_side", DEFAULT_FLOW_SHORT_SIDE, 0, 4096),
            flow_bound=number(params, "flow_bound", DEFAULT_FLOW_BOUND, 0.1, 1000),
        )
        frames = Fraction(str(settings.duration_s)) * Fraction(str(settings.fps))
        if frames.denominator != 1 or frames < 2:
            raise BadInput(
                f"parameters duration_s={settings.duration_s:g} and fps={settings.fps:g} give {float(frames):g} "
                "frames per chunk; choose values whose product is a whole number of at least 2 frames "
                "(default 10 s at 21.5 fps = 215 frames)"
            )
        samples = Fraction(str(settings.duration_s)) * settings.sample_rate_hz
        if samples.denominator != 1:
            raise BadInput(
                f"parameters duration_s={settings.duration_s:g} and sample_rate_hz={settings.sample_rate_hz} give "
                f"{float(samples):g} samples per chunk; choose a duration that is a whole number of samples"
            )
        return settings

    @property
    def frames_per_chunk(self) -> int:
        return int(Fraction(str(self.duration_s)) * Fraction(str(self.fps)))

    @property
    def samples_per_chunk(self) -> int:
        return int(Fraction(str(self.duration_s)) * self.sample_rate_hz)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, other: Mapping[str, Any]) -> list[str]:
        """'name: theirs, not ours' for each setting `other` (a twin's recorded settings) gives differently."""
        ours = self.to_json()
        return [
            f"{name}={other.get(name)!r} (this dataset asks for {value!r})"
            for name, value in ours.items()
            if not _same(other.get(name), value)
        ]


def flow_algorithm_param(params: Mapping[str, Any]) -> str:
    value = params.get("flow_algorithm", "auto")
    if value not in FLOW_ALGORITHMS:
        raise BadInput(f"parameter flow_algorithm={value!r} is not one of {', '.join(FLOW_ALGORITHMS)} (default auto)")
    return str(value)


def _same(theirs: Any, ours: Any) -> bool:
    if isinstance(theirs, bool) or not isinstance(theirs, (int, float)):
        return False
    return abs(float(theirs) - float(ours)) < 1e-9
