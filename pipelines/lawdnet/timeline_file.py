"""`lawdnet/timeline.json`: the one truth of a twin's frame count, and what was dropped to reach it.

Every other per-frame file of the lawdnet preprocess has exactly `frames` rows; the audio has exactly `samples`
samples. The file also names the audio it was cut from and the audio features computed from it, so the dataset
task can check that twins built with different features are not mixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.base import BadInput
from pipelines.media.timeline import Timeline

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TimelineRecord:
    timeline: Timeline
    video_frames: int
    audio_samples: int
    audio_source: str
    audio_features: dict[str, Any]


def write_timeline(path: Path, record: TimelineRecord) -> None:
    timeline = record.timeline
    document = {
        "format_version": FORMAT_VERSION,
        "fps": timeline.fps,
        "sample_rate_hz": timeline.sample_rate_hz,
        "frames": timeline.frames,
        "samples": timeline.samples,
        "duration_s": round(timeline.duration_s, 6),
        "video_frames": record.video_frames,
        "audio_samples": record.audio_samples,
        "dropped_video_frames": timeline.dropped_video_frames,
        "dropped_audio_samples": timeline.dropped_audio_samples,
        "audio_source": record.audio_source,
        "audio_features": record.audio_features,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def read_timeline(path: Path, name: str) -> TimelineRecord:
    """BadInput naming `name` when the file is unreadable, of another format or inconsistent."""
    fix = "run the twin's lawdnet preprocess again"
    try:
        document = json.loads(path.read_text())
        if document["format_version"] != FORMAT_VERSION:
            version = document["format_version"]
            raise BadInput(f"{name} has format {version}, this platform reads {FORMAT_VERSION}: {fix}")
        timeline = Timeline(
            fps=document["fps"],
            sample_rate_hz=int(document["sample_rate_hz"]),
            frames=int(document["frames"]),
            dropped_video_frames=int(document["dropped_video_frames"]),
            dropped_audio_samples=int(document["dropped_audio_samples"]),
        )
        record = TimelineRecord(
            timeline=timeline,
            video_frames=int(document["video_frames"]),
            audio_samples=int(document["audio_samples"]),
            audio_source=str(document["audio_source"]),
            audio_features=dict(document["audio_features"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{name} is not a readable timeline ({exc!r}): {fix}") from exc
    if timeline.samples != int(document["samples"]) or timeline.frames <= 0:
        raise BadInput(f"{name} says {document['samples']} samples for {timeline.frames} frames: {fix}")
    return record
