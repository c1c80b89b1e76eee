"""Audio features for LawDNet: a small extractor protocol, a built-in log-mel extractor, and the DeepSpeech plug.

An extractor turns 16 kHz mono samples into (T, dim) rows at `rate_hz` rows per second (row t describes time
t / rate_hz). Whatever the rate, `timeline.align_features` later puts the rows on the video's frames, one row per
kept frame, so no extractor ever decides how many frames it covers (the seed's "DeepSpeech has 3 more frames than
the video" came from doing exactly that).

Built in:
    mel         29 log-mel bands (Slaney, 0-8 kHz) of 40 ms Hann windows every 10 ms (100 rows/s). 29 values per
                frame, like DeepSpeech's 29 logits, so LawDNet's loader and network (audio_channel=29, its (5, 29)
                window check) take the features unchanged; 40 ms = 640 samples is exactly one frame's audio at
                25 fps, so the row read at a frame's centre summarises that frame's own sound.
    deepspeech  the team's TensorFlow 1.15 graph (common/lawdnet/deepspeech/output_graph.pb): 29 logits at 50 rows/s.
                Only the plug is here: asking for it without the graph raises MissingWeights, without tensorflow
                BadInput; running the graph is not built (docs/datasets/lawdnet.md says how to add it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from pipelines.base import BadInput, MissingWeights
from pipelines.lawdnet.outputs import DEEPSPEECH_GRAPH
from pipelines.media.spectral import MelConfig, log_mel

SAMPLE_RATE_HZ = 16000
DEFAULT_FEATURES = "mel"
FEATURE_NAMES = ("mel", "deepspeech")


class AudioFeatureExtractor(Protocol):
    name: str
    rate_hz: float
    dim: int

    def extract(self, samples_16k: np.ndarray) -> np.ndarray:
        """(T, dim) float32 rows at `rate_hz` from mono 16 kHz samples in [-1, 1)."""
        ...

    def describe(self) -> dict[str, object]:
        """What a reader needs to know about the features (written into timeline.json): at least name, rate, dim."""
        ...


class MelExtractor:
    """29 log-mel bands every 10 ms from 40 ms windows (see the module docstring for why these numbers)."""

    name = "mel"
    config = MelConfig(sample_rate_hz=SAMPLE_RATE_HZ, n_fft=640, hop_length=160, n_mels=29, fmin_hz=0.0, fmax_hz=8000.0)
    rate_hz = config.rate_hz
    dim = config.n_mels

    def extract(self, samples_16k: np.ndarray) -> np.ndarray:
        return log_mel(samples_16k, self.config)

    def describe(self) -> dict[str, object]:
        """What a reader needs to reproduce the features (written into timeline.json)."""
        return {
            "name": self.name,
            "rate_hz": self.rate_hz,
            "dim": self.dim,
            "window_samples": self.config.n_fft,
            "hop_samples": self.config.hop_length,
            "fmin_hz": self.config.fmin_hz,
            "fmax_hz": self.config.fmax_hz,
            "scale": "natural log of mel-filtered magnitude, floored at 1e-5 (pipelines.media.spectral.log_mel)",
        }


class DeepSpeechExtractor:
    """The plug point for the team's DeepSpeech graph: 29 logits at 50 rows/s (before DINet's `[::2]`).

    Constructed only when the graph is in the store and tensorflow is importable. Running the graph is not built
    (no worker here has tensorflow 1.15), so construction refuses, before the stage does any work. To add it,
    load the graph in `__init__` and fill `extract` as docs/datasets/lawdnet.md describes.
    """

    name = "deepspeech"
    rate_hz = 50.0
    dim = 29

    def __init__(self, graph: Path) -> None:
        self.graph = graph
        raise BadInput(_NOT_BUILT)

    def extract(self, samples_16k: np.ndarray) -> np.ndarray:
        raise BadInput(_NOT_BUILT)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "rate_hz": self.rate_hz, "dim": self.dim, "graph": DEEPSPEECH_GRAPH}


_NOT_BUILT = (
    "audio_features=deepspeech: this worker has tensorflow, but running the DeepSpeech graph is not built into this "
    "version of the lawdnet pipeline (see docs/datasets/lawdnet.md, 'Plugging in DeepSpeech'); use audio_features=mel"
)


def tensorflow_installed() -> bool:
    """Whether this worker could run the DeepSpeech graph (checked without importing tensorflow, which is slow)."""
    return importlib.util.find_spec("tensorflow") is not None


def open_extractor(name: str, deepspeech_graph: Path | None) -> AudioFeatureExtractor:
    """The extractor called `name`. MissingWeights when DeepSpeech is asked and its graph is not in the store;
    BadInput when tensorflow is not installed on this worker or the name is unknown."""
    if name == "mel":
        return MelExtractor()
    if name == "deepspeech":
        if deepspeech_graph is None:
            raise MissingWeights(
                f"audio_features=deepspeech needs the team's DeepSpeech graph, which is not in the store: upload "
                f"output_graph.pb (TensorFlow 1.15) as common/lawdnet/{DEEPSPEECH_GRAPH}, or use audio_features=mel",
                names=(DEEPSPEECH_GRAPH,),
            )
        if not tensorflow_installed():
            raise BadInput(
                f"audio_features=deepspeech: {DEEPSPEECH_GRAPH} is in the store but tensorflow is not installed on "
                "this worker; install tensorflow 1.15 on the worker that runs the lawdnet preprocess (or a 2.x "
                "release, which loads the frozen 1.x graph through tf.compat.v1), or use audio_features=mel"
            )
        return DeepSpeechExtractor(deepspeech_graph)
    raise BadInput(f"parameter audio_features={name!r} is unknown; use one of {', '.join(FEATURE_NAMES)}")
