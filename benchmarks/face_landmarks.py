"""Throughput of the th `landmarks` stage (offline mediapipe path by default) on a real clip, decode included.

Runs the stage exactly as the platform does (the normalised 25 fps video in, landmarks + quality report + contact
sheet out), several times, and prints frames per second with the share of time in decode, detection, measuring
(tracking, smoothing, head pose, sharpness, sampling) and writing, plus the landmark jitter before and after
smoothing. The clip is normalised first (not timed), as preprocess would.

Usage: .venv/bin/python benchmarks/face_landmarks.py [--clip ../shared/media/talking_512.mp4] [--runs 3]
       [--backend mediapipe] [--keep DIR]   (DIR receives the last run's outputs, e.g. the contact sheet)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pipelines.base import StageContext
from pipelines.media.normalize import normalize_video
from pipelines.th import outputs
from pipelines.th.landmarks_stage import LandmarksStage

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "talking_512.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="mediapipe")
    parser.add_argument("--keep", type=Path, help="copy the last run's outputs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        video = folder / "video.mp4"
        normalize_video(args.clip, video, 25)
        rows = []
        for run in range(args.runs):
            out = folder / f"run{run}"
            context = StageContext(inputs={"video": video}, output_dir=out, params={"landmark_backend": args.backend})
            started = time.perf_counter()
            result = LandmarksStage().run(context)
            wall = time.perf_counter() - started
            frames = result.metrics["video"]["frames"]
            rows.append((frames / wall, wall, result.metrics["timing_s"], result.metrics["video"]))
            print(f"run {run + 1}: {frames} frames in {wall:.2f} s = {frames / wall:.1f} fps")
        fps = [row[0] for row in rows]
        best = rows[fps.index(statistics.median(fps))] if len(rows) % 2 else rows[-1]
        _, wall, timing, video_metrics = best
        total = sum(timing.values())
        print(f"\n{args.clip.name} ({args.backend}): median {statistics.median(fps):.1f} fps "
              f"(range {min(fps):.1f}-{max(fps):.1f}) over {args.runs} runs, decode included")
        print("share of stage time: " + ", ".join(f"{k} {v / total:.0%} ({v:.2f} s)" for k, v in timing.items()))
        print(f"face found in {video_metrics['found_ratio']:.1%} of frames, usable {video_metrics['usable_ratio']:.1%}")
        jitter = video_metrics["jitter"]
        print(f"jitter (RMS 2nd difference): raw {jitter['raw_px']} px -> smoothed {jitter['smoothed_px']} px; "
              f"relative to face size {jitter['raw_rel']} -> {jitter['smoothed_rel']}")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            last = folder / f"run{args.runs - 1}"
            for name in (outputs.CONTACT_SHEET, outputs.QUALITY_JSON, outputs.VIDEO_LANDMARKS):
                shutil.copyfile(last / name, args.keep / Path(name).name)
            print(f"outputs kept in {args.keep}")


if __name__ == "__main__":
    main()
