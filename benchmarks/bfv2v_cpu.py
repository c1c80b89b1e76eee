"""CPU time of the full-size BFv2v generator (v16 layout, 414 keys, ~102 M parameters) per stage and per frame.

Random weights (no public BFv2v weights exist), same compute as a real checkpoint. The source side runs once per
twin (appearance encoding + source keypoints); every driving frame then runs: keypoints (7 section MLPs + the U
projection), the dense-motion network (sparse motions, 21 warped copies of the compressed feature, 106-channel 3-D
hourglass, mask and occlusion), the warp + post-warp convs, and the SPADE decoder.

Usage: .venv/bin/python benchmarks/bfv2v_cpu.py [--frames 3] [--batch 1] [--size 256] [--threads N]
Default run: about 1 minute on 2 cores (one warm-up frame, then 3 timed frames).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from pipelines.th.neural.fv2v.bfv2v import BFv2vGenerator
from pipelines.th.neural.fv2v.generators import warp_feature


@contextmanager
def stopwatch(into: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    into[name] = time.perf_counter() - started


def inputs(batch: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MDTH-like landmarks (model units / SCALE) and a centred U (1 unit = 1 px) with a small random head shift."""
    generator = torch.Generator().manual_seed(seed)
    landmarks = (torch.rand(batch, 68, 3, generator=generator) - 0.5) * 1.4
    u = torch.eye(4).repeat(batch, 1, 1)
    u[:, 3, :2] = size / 2 + torch.randn(batch, 2, generator=generator) * 3
    return landmarks, u


STAGES = ("keypoints", "dense motion", "warp + post-warp", "SPADE decoder")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3, help="timed driving steps (after one warm-up)")
    parser.add_argument("--batch", type=int, default=1, help="driving frames per generator call")
    parser.add_argument("--size", type=int, default=256, help="image side (the model was trained at 256)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    scale = args.size / 2  # MDTH's SCALE

    torch.manual_seed(0)
    started = time.perf_counter()
    generator = BFv2vGenerator().eval()
    build_s = time.perf_counter() - started
    params = sum(p.numel() for p in generator.parameters())
    print(
        f"BFv2v generator: {len(generator.state_dict())} keys, {params / 1e6:.1f} M parameters, "
        f"built in {build_s:.2f} s; {torch.get_num_threads()} threads, {args.size}x{args.size}, batch {args.batch}"
    )

    image = torch.rand(1, 3, args.size, args.size)
    source_landmarks, source_u = inputs(1, args.size, seed=0)
    once: dict[str, float] = {}
    rows: dict[str, list[float]] = {name: [] for name in STAGES}
    with torch.inference_mode():
        with stopwatch(once, "encode_source"):
            feature = generator.encode_source(image)
        with stopwatch(once, "source keypoints"):
            kp_source = generator.keypoints(source_landmarks, source_u, scale)
        print(f"once per twin: encode_source {once['encode_source']:.2f} s, "
              f"source keypoints {once['source keypoints'] * 1000:.1f} ms")
        features = feature.expand(args.batch, *feature.shape[1:])
        for step in range(args.frames + 1):
            landmarks, u = inputs(args.batch, args.size, seed=step + 1)
            times: dict[str, float] = {}
            with stopwatch(times, "keypoints"):
                kp_driving = generator.keypoints(landmarks, u, scale)
            with stopwatch(times, "dense motion"):
                motion = generator.dense_motion_network(
                    features, kp_driving=kp_driving, kp_source=kp_source.expand_as(kp_driving)
                )
            with stopwatch(times, "warp + post-warp"):
                feature_2d = generator.post_warp(warp_feature(features, motion.deformation), motion.occlusion_map)
            with stopwatch(times, "SPADE decoder"):
                prediction = generator.decode(feature_2d)
            if step == 0:
                reference = generator.warp_and_decode(feature, kp_source, kp_driving).prediction
                assert torch.allclose(reference, prediction, atol=1e-5), "stage-wise run differs from warp_and_decode"
                print(f"warm-up step: {sum(times.values()):.2f} s")
                continue
            for name in STAGES:
                rows[name].append(times[name] / args.batch)
    per_frame = [sum(values) for values in zip(*rows.values(), strict=True)]
    total = statistics.median(per_frame)
    print(
        f"\nper driving frame (median of {args.frames} steps, batch {args.batch}): {total:.2f} s = {1 / total:.2f} fps"
        f" (range {min(per_frame):.2f}-{max(per_frame):.2f} s)"
    )
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"  {name:<17} {median * 1000:9.1f} ms  {median / total:6.1%}")


if __name__ == "__main__":
    main()
