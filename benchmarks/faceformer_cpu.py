"""CPU time of FaceFormer (full-size public vocaset architecture, random weights) per stage and per output frame.

Stages: the wav2vec2 audio encoder (CNN, 30 Hz resampling, 12 transformer layers, feature map) and the
autoregressive decoder with its key/value cache (what `predict` runs). With --reference-seconds, the public
algorithm (re-decode the whole prefix every step, O(T^2)) is also timed on that much audio, for comparison.
Random weights cost the same compute as the real ones; nothing is read from disk.

Usage: .venv/bin/python benchmarks/faceformer_cpu.py [--seconds 5 20] [--runs 3] [--reference-seconds 5]
       [--threads N] [--dataset vocaset|biwi]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from pipelines.th.neural.faceformer import FaceFormer, decoder_frames, public_config
from pipelines.th.neural.wav2vec2 import normalize_audio


def timed(function: Callable[[], torch.Tensor], runs: int) -> tuple[float, torch.Tensor]:
    """Median wall time over `runs` calls, and the last result."""
    times, result = [], torch.empty(0)
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference-seconds", type=float, default=5.0, help="0 to skip the O(T^2) public decoder")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--dataset", default="vocaset", choices=["vocaset", "biwi"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = public_config(args.dataset)
    torch.manual_seed(0)
    model = FaceFormer(config).eval()
    with torch.no_grad():
        model.vertice_map_r.weight.normal_(0.0, 0.01)  # the public init is zero; keep outputs moving
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"FaceFormer {args.dataset}: {params:.2f}M parameters, {torch.get_num_threads()} CPU threads, "
        f"torch {torch.__version__}, median of {args.runs} runs"
    )
    print(
        f"{'audio':>7} {'frames':>6} {'wav2vec2 s':>10} {'decoder s':>9} {'ms/frame':>8} "
        f"{'enc ms/fr':>9} {'dec ms/fr':>9} {'total s':>7} {'x realtime':>10}"
    )
    rng = np.random.default_rng(0)
    with torch.inference_mode():
        warm = model.encode_audio(torch.randn(1, 16000))  # first-call allocations are not timed
        model.decode(warm, model.style(0), 10)
        for seconds in args.seconds:
            samples = normalize_audio(rng.normal(size=round(seconds * 16000)).astype(np.float32) * 0.1)
            values = torch.from_numpy(samples)[None]
            encode_s, memory = timed(partial(model.encode_audio, values), args.runs)
            frames = decoder_frames(config.dataset, memory.shape[1])
            decode_s, _ = timed(partial(model.decode, memory, model.style(0), frames), args.runs)
            total = encode_s + decode_s
            print(
                f"{seconds:>6.1f}s {frames:>6d} {encode_s:>10.3f} {decode_s:>9.3f} {1000 * total / frames:>8.2f} "
                f"{1000 * encode_s / frames:>9.2f} {1000 * decode_s / frames:>9.2f} {total:>7.2f} "
                f"{seconds / total:>9.1f}x"
            )
        if args.reference_seconds > 0:
            samples = normalize_audio(rng.normal(size=round(args.reference_seconds * 16000)).astype(np.float32))
            memory = model.encode_audio(torch.from_numpy(samples)[None])
            frames = decoder_frames(config.dataset, memory.shape[1])
            style = model.style(0)
            cached_s, cached = timed(partial(model.decode, memory, style, frames), 1)
            reference_s, reference = timed(partial(model.decode, memory, style, frames, cached=False), 1)
            difference = (cached - reference).abs().max().item()
            print(
                f"public O(T^2) decoder on {args.reference_seconds:.1f}s ({frames} frames): {reference_s:.3f} s "
                f"({1000 * reference_s / frames:.2f} ms/frame) vs cached {cached_s:.3f} s "
                f"({reference_s / cached_s:.1f}x); max |difference| {difference:.2e}"
            )


if __name__ == "__main__":
    main()
