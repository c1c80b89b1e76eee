"""Speed and lip-sync of the classical engine on a real twin: seconds of output video per second of compute.

Builds the twin from a clip as preprocess does (normalise, landmarks, crops; not timed), then times the inference
stages the platform runs (speech normalisation, motion, render with mux) and scores the result (timed separately).
Prints the speed, the lip-sync score, and where three frames were saved (one in a pause of the speech).

Usage: .venv/bin/python benchmarks/classical_engine.py [--clip ../shared/media/talking_512.mp4]
       [--speech ../shared/media/sun.wav] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.base import StageContext
from pipelines.media.frames import read_frames
from pipelines.media.normalize import normalize_video
from pipelines.th.crops_stage import CropsStage
from pipelines.th.inference import LipSyncStage, MotionStage, RenderStage, SpeechStage
from pipelines.th.landmarks_stage import LandmarksStage

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=MEDIA / "talking_512.mp4")
    parser.add_argument("--speech", type=Path, default=MEDIA / "sun.wav")
    parser.add_argument("--keep", type=Path, help="copy the MP4, the score and three frames here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        twin = Path(scratch) / "twin"
        video = twin / "video/video.mp4"
        video.parent.mkdir(parents=True)
        normalize_video(args.clip, video, 25)
        LandmarksStage().run(StageContext(inputs={"video": video}, output_dir=twin))
        crops = {"video": video, "video_landmarks": twin / "face/video_landmarks.npz"}
        CropsStage().run(StageContext(inputs=crops, output_dir=twin, params={"crop_sizes": [256]}))

        run = Path(scratch) / "run"
        params = {"engine": "classical"}
        started = time.perf_counter()
        speech = SpeechStage().run(StageContext(inputs={"audio": args.speech}, output_dir=run, params=params))
        audio = run / "audio/audio.wav"
        motion_inputs = {"audio": audio, "video_landmarks": twin / "face/video_landmarks.npz"}
        MotionStage().run(StageContext(inputs=motion_inputs, output_dir=run, params=params))
        motion_s = time.perf_counter() - started
        render_inputs = {
            "audio": audio,
            "driving": run / "motion/driving.npz",
            "video": video,
            "video_transforms": twin / "face/crops/video_transforms.npz",
            "video_landmarks": twin / "face/video_landmarks.npz",
        }
        RenderStage().run(StageContext(inputs=render_inputs, output_dir=run, params=params))
        compute_s = time.perf_counter() - started
        started = time.perf_counter()
        LipSyncStage().run(StageContext(inputs={"video": run / "video.mp4", "audio": audio}, output_dir=run))
        score_s = time.perf_counter() - started

        duration = float(speech.metrics["duration_s"])
        score = json.loads((run / "lipsync.json").read_text())
        print(f"{args.clip.name} driven by {args.speech.name}: {duration:.2f} s of video")
        print(f"compute {compute_s:.2f} s (speech + motion {motion_s:.2f} s, render {compute_s - motion_s:.2f} s): "
              f"{duration / compute_s:.2f} s of output per s of compute")
        print(f"lip-sync: correlation {score['correlation']} at offset {score['offset_frames']} frame(s), "
              f"silent frames closed {score['silent_closed_share']}, flagged {score['flagged']} "
              f"(scoring took {score_s:.2f} s)")
        if args.keep:
            _keep(args.keep, run, duration)


def _keep(folder: Path, run: Path, duration: float) -> None:
    """The MP4, the score, and frames at 25 %, in the longest pause, and at 75 % of the speech."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "video.mp4", folder / "classical.mp4")
    shutil.copyfile(run / "lipsync.json", folder / "lipsync.json")
    with np.load(run / "motion/driving.npz") as driving:
        voiced = driving["voiced"]
    frames = np.concatenate(list(read_frames(run / "video.mp4", 64)))
    pause = _longest_pause_middle(voiced)
    picks = {"speech_a": len(frames) // 4, "pause": pause, "speech_b": 3 * len(frames) // 4}
    for name, index in picks.items():
        Image.fromarray(frames[index]).save(folder / f"frame_{name}_{index:04d}.png")
    print(f"kept in {folder}: classical.mp4, lipsync.json, frames {picks}")


def _longest_pause_middle(voiced: np.ndarray) -> int:
    best, start, best_mid = 0, None, len(voiced) // 2
    for index, value in enumerate([*voiced.tolist(), True]):
        if not value and start is None:
            start = index
        elif value and start is not None:
            if index - start > best:
                best, best_mid = index - start, (start + index) // 2
            start = None
    return best_mid


if __name__ == "__main__":
    main()
