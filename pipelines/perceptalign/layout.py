"""Relative paths inside datasets/perceptalign/{name}/: the seed's final structure, plus the files it made on
the way (audio, frames, flow), each under a class folder so a SpecVQGAN data module finds them by `{class}/{id}`.

    features/{class}/melspec_10s_22050hz/{id}_mel.npy
    videos/{class}/videos_10s_21.5fps/{id}.mp4
    audio/{class}/audio_10s_22050hz/{id}.wav
    frames/{class}/{id}/img_00001.jpg ...        (1-based, as ffmpeg's img_%05d.jpg)
    flow/{class}/{id}/flow_x_00001.jpg ...       (1-based, as denseflow: pair 1 is frame 1 -> frame 2)
    splits/{name}_train.txt, _valid.txt, _test.txt, _all.txt   (one `{class}/{id}` per line)
    manifest.json

Folder names follow the rates and duration as the seed's scripts name them (`melspec_{d}s_{sr}hz`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.perceptalign.settings import ChunkSettings

FOLDERS = ("features/", "videos/", "audio/", "frames/", "flow/", "splits/")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class DatasetLayout:
    settings: ChunkSettings

    @property
    def _duration(self) -> str:
        return f"{self.settings.duration_s:g}s"

    def mel(self, cls: str, item: str) -> str:
        return f"features/{cls}/melspec_{self._duration}_{self.settings.sample_rate_hz}hz/{item}_mel.npy"

    def video(self, cls: str, item: str) -> str:
        return f"videos/{cls}/videos_{self._duration}_{self.settings.fps:g}fps/{item}.mp4"

    def audio(self, cls: str, item: str) -> str:
        return f"audio/{cls}/audio_{self._duration}_{self.settings.sample_rate_hz}hz/{item}.wav"

    @staticmethod
    def frame(cls: str, item: str, number: int) -> str:
        """Frame `number` (1-based) of a chunk."""
        return f"frames/{cls}/{item}/img_{number:05d}.jpg"

    @staticmethod
    def flow(cls: str, item: str, axis: str, number: int) -> str:
        """Flow image `number` (1-based: from frame `number` to `number + 1`) of axis "x" or "y"."""
        return f"flow/{cls}/{item}/flow_{axis}_{number:05d}.jpg"

    @staticmethod
    def split_file(name: str, split: str) -> str:
        return f"splits/{name}_{split}.txt"


def chunk_id(twin: str, chunk: int) -> str:
    """A chunk's id, unique across twins (classes may be shared): the twin and the chunk's index."""
    return f"{twin}_chunk_{chunk:03d}"
