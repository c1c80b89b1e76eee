"""Throughput of each dataset model on this machine: frames of input video per second, through the real product.

For each model, a fresh embedded platform (SQLite, local folder store, in-process jobs; a temporary data folder)
ingests two twins made from real clips, then runs `platform dataset build` and reads every job's stage timings
from `platform status --json`. Reported per model:

- preprocess: input video frames (the uploads' own frames) / seconds of the member twins' preprocess stages;
- dataset: seconds of the dataset stage (writing the dataset's files), and its file count;
- end to end: input frames / wall seconds of the whole `dataset build` command.

Usage: .venv/bin/python benchmarks/dataset_throughput.py [--models facesync,bilayer,lawdnet,perceptalign]
       [--repeat 1] [--media ../shared/media] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
PLATFORM = Path(sys.executable).with_name("platform")
MODELS = ("facesync", "bilayer", "lawdnet", "perceptalign")


def twins(media: Path) -> dict[str, list[Path]]:
    """Two real twins: a 512x512 talking head with its own sound, and a 576x768 upper body with its speech."""
    return {
        "talking": [media / "talking_512.mp4"],
        "sun": [media / "sun.mp4", media / "sun.wav"],
    }


def source_frames(path: Path) -> int:
    from pipelines.media.probe import probe

    info = probe(path)
    assert info.video is not None and info.video.fps
    return int(info.video.frames or round((info.video.duration_s or info.duration_s or 0) * info.video.fps))


def platform(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(PLATFORM), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"platform {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def run_once(model: str, media: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "PLATFORM_DATA_DIR": data, "PLATFORM_CONFIG_FILE": str(Path(data) / "absent.toml")}
        env.pop("PLATFORM_BROKER_URL", None)
        frames = 0
        for twin, files in twins(media).items():
            platform(env, "twin", "ingest", twin, "--create", *map(str, files))
            frames += source_frames(files[0])
        started = time.perf_counter()
        platform(env, "dataset", "build", "--model", model, "--name", "bench", "--twins", ",".join(twins(media)))
        wall_s = time.perf_counter() - started
        jobs = json.loads(platform(env, "status", "--json", "--limit", "10"))
        summary = json.loads(platform(env, "dataset", "status", "bench", "--model", model, "--json"))
    preprocess_s = sum(
        stage["duration_s"] or 0.0 for job in jobs if job["task"] == "preprocess" for stage in job["stages"]
    )
    dataset_s = sum(stage["duration_s"] or 0.0 for job in jobs if job["task"] == "dataset" for stage in job["stages"])
    stages: dict[str, float] = {}
    for job in jobs:
        for stage in job["stages"]:
            stages[f"{job['task']}/{stage['stage']}"] = stages.get(f"{job['task']}/{stage['stage']}", 0.0) + (
                stage["duration_s"] or 0.0
            )
    return {
        "frames": frames,
        "preprocess_s": preprocess_s,
        "dataset_s": dataset_s,
        "wall_s": wall_s,
        "files": summary["files"],
        "stages_s": {name: round(value, 2) for name, value in stages.items()},
        "excluded": (summary["manifest"] or {}).get("excluded", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--media", type=Path, default=MEDIA)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.media / "talking_512.mp4").is_file():
        raise SystemExit(f"real media not found under {args.media}: pass --media")
    report: dict[str, Any] = {}
    for model in args.models.split(","):
        runs = [run_once(model, args.media) for _ in range(args.repeat)]
        fps = [r["frames"] / r["preprocess_s"] for r in runs]
        e2e = [r["frames"] / r["wall_s"] for r in runs]
        report[model] = {
            "input_frames": runs[0]["frames"],
            "preprocess_fps_median": round(statistics.median(fps), 2),
            "preprocess_fps_range": [round(min(fps), 2), round(max(fps), 2)],
            "end_to_end_fps_median": round(statistics.median(e2e), 2),
            "dataset_stage_s_median": round(statistics.median(r["dataset_s"] for r in runs), 2),
            "dataset_files": runs[0]["files"],
            "stages_s_first_run": runs[0]["stages_s"],
            "excluded": runs[0]["excluded"],
            "runs": len(runs),
        }
        if not args.json:
            row = report[model]
            print(
                f"{model:<13} {row['input_frames']} input frames: preprocess {row['preprocess_fps_median']} fps "
                f"(range {row['preprocess_fps_range'][0]}-{row['preprocess_fps_range'][1]}), dataset stage "
                f"{row['dataset_stage_s_median']} s for {row['dataset_files']} files, end to end "
                f"{row['end_to_end_fps_median']} fps; stages {row['stages_s_first_run']}",
                flush=True,
            )
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
