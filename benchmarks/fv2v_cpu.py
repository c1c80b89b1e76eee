"""face-vid2vid at full size on CPU, random weights: time per stage per frame at 256x256, batch 1 and 4, and the
multiply-accumulates (MACs) each stage costs, counted from the conv/linear layers actually run.

    .venv/bin/python benchmarks/fv2v_cpu.py                 # New + Beta generators, both KPDetectors, HEEstimator
    .venv/bin/python benchmarks/fv2v_cpu.py --batches 1 --parts new,he
    .venv/bin/python benchmarks/fv2v_cpu.py --parts kp-beta --batches 1,4   # scale-1 KPDetector at batch 4: slow

Stages: the source side runs once per twin (kp_detector, he_estimator and the generator's `encode_source`); the
per-frame side is `dense_motion` + `warp` (grid_sample + third/fourth) + `decode` (SPADE or the Beta decoder), plus
an he_estimator pass per frame only when a driving video gives the pose.

MACs per 256x256 frame counted by this script (1 MAC = 2 FLOPs; conv/linear only, so grid_sample, norms and
interpolation come on top but are memory-bound and small in FLOPs):
    source side, once per twin: encode_source 32 GMAC, KPDetector 19 GMAC (New, scale 0.25) or 310 GMAC (Beta,
        scale 1: its 3-D up-blocks run at 16x256x256), HEEstimator 7.8 GMAC;
    per frame: dense motion 101 GMAC (the 7x7x7 16-channel mask conv alone is 40, the hourglass' last 112-channel
        3x3x3 conv 22), third/fourth 5 GMAC, decoder: SPADE 445 GMAC (six 512-channel SPADE blocks at 64x64 = 188,
        up_0 at 128x128 = 94, up_1 at 256x256 = 158: the SPADE gamma/beta convs of the 256-channel segmap dominate)
        or Beta's 39 GMAC; so New ~552 GMAC = 1.1 TFLOP per frame, Beta ~146 GMAC = 0.29 TFLOP.

GPU estimate (no GPU on this box; reasoning, not a measurement). An A100 peaks at 312 TFLOP/s dense fp16 on tensor
cores, an RTX 4090 at ~165 (fp16 with the fp32 accumulation PyTorch uses). The 512-channel 3x3 convs of the SPADE
decoder map well to cuDNN implicit GEMM at batch >= 4 (~50-60 % of peak); the 3-D convs, the 16-output 7x7x7 mask
conv, instance norm, grid_sample and the nearest upsamplings do worse. Taking ~35-40 % overall: New ~1.1 TFLOP /
(312 x 0.4) ~ 9 ms -> ~100 frames/s on an A100 and ~50 on a 4090, in fp16 at batch 4-8; Beta ~0.29 TFLOP -> a few
hundred frames/s, where memory-bound ops start to dominate. In fp32, PyTorch runs convs as TF32 on Ampere and later
(cudnn.allow_tf32 is on by default: 156 TFLOP/s on an A100, ~83 on a 4090), so fp32 is roughly 2x slower rather
than 10x. Memory is not the limit: weights 0.40 GB fp32 (New) + 0.17 (kp) + 0.12 (he); at batch 8 in
fp16 the largest activations are the 64..256-channel 256x256 SPADE maps (~0.3 GB each) and the 112-channel
16x64x64 hourglass maps, a few GB in all. For comparison the public end-to-end report (zlh #79: 320 frames in
~40 s, ~8 fps) is batch 1, fp32, re-encoding the source every frame and running the he_estimator per frame; at
~1.2 TFLOP per frame that is ~10 TFLOP/s sustained, plausible for batch-1 fp32 on a 3090-class GPU. Batching, fp16
and the cached source encoding are where the order of magnitude comes from.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from pipelines.th.neural.fv2v.blocks import SpectralNormConv2d  # noqa: E402
from pipelines.th.neural.fv2v.generators import (  # noqa: E402
    Fv2vGenerator,
    GeneratorConfig,
    build_generator,
    warp_feature,
)
from pipelines.th.neural.fv2v.head_pose import HEEstimator  # noqa: E402
from pipelines.th.neural.fv2v.keypoints import KPDetector, KPDetectorConfig  # noqa: E402

SIZE = 256
PARTS = ("new", "beta", "kp-new", "kp-beta", "he")


class MacCounter:
    """Sums conv/linear multiply-accumulates through forward hooks while `counting`."""

    def __init__(self) -> None:
        self.macs = 0
        self.counting = False

    def hook(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if not self.counting:
            return
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            per_output = module.in_channels // module.groups
            for k in module.kernel_size:
                per_output *= k
            self.macs += output.numel() * per_output
        elif isinstance(module, nn.Linear):
            self.macs += output.numel() * module.in_features
        elif isinstance(module, SpectralNormConv2d):
            self.macs += output.numel() * int(module.weight_orig[0].numel())

    def attach(self, model: nn.Module) -> None:
        for sub in model.modules():
            if isinstance(sub, nn.Conv2d | nn.Conv3d | nn.Linear | SpectralNormConv2d):
                sub.register_forward_hook(self.hook)

    @contextmanager
    def count(self) -> Iterator[None]:
        self.macs, self.counting = 0, True
        try:
            yield
        finally:
            self.counting = False


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def report(name: str, batch: int, seconds: float, macs: int | None) -> None:
    gmac = f"{macs / 1e9 / batch:8.1f}" if macs is not None else "       -"
    print(f"{name:34s} batch {batch}  {seconds:8.3f} s  {seconds / batch:8.3f} s/frame  {gmac} GMAC/frame", flush=True)


class StageTimer:
    """Runs one stage, recording its wall time and MACs under a name."""

    def __init__(self, counter: MacCounter) -> None:
        self.counter = counter
        self.stages: dict[str, tuple[float, int]] = {}

    def run(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.counter.count():
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            self.stages[name] = (time.perf_counter() - start, self.counter.macs)
        return result


def bench_generator(variant: str, batches: list[int]) -> None:
    torch.manual_seed(0)
    generator = build_generator(GeneratorConfig(variant=variant)).eval()  # type: ignore[arg-type]
    assert isinstance(generator, Fv2vGenerator)
    counter = MacCounter()
    counter.attach(generator)
    kp_source = torch.rand(1, 15, 3) * 1.2 - 0.6
    label = "New/SPADE" if variant == "new" else "Beta/original"
    with torch.no_grad():
        generator(torch.rand(1, 3, 128, 128), kp_driving=kp_source, kp_source=kp_source)  # warm-up, small
        for batch in batches:
            image = torch.rand(1, 3, SIZE, SIZE)
            kp_driving = kp_source + torch.randn(batch, 15, 3) * 0.02
            timer = StageTimer(counter)
            feature = timer.run("encode_source (once, batch 1)", generator.encode_source, image)
            feature = feature.expand(batch, *feature.shape[1:])
            motion = timer.run(
                "dense_motion",
                generator.dense_motion_network,
                feature,
                kp_driving=kp_driving,
                kp_source=kp_source.expand(batch, 15, 3),
            )
            warped = timer.run("warp (grid_sample)", warp_feature, feature, motion.deformation)
            feature_2d = timer.run("third/fourth x occlusion", generator.post_warp, warped, motion.occlusion_map)
            timer.run("decode", generator.decode, feature_2d)
            for name, (seconds, macs) in timer.stages.items():
                frames = 1 if name.startswith("encode") else batch
                report(f"{label} {name}", frames, seconds, macs)
            per_frame = [value for name, value in timer.stages.items() if not name.startswith("encode")]
            report(f"{label} per-frame total", batch, sum(s for s, _ in per_frame), sum(m for _, m in per_frame))


def bench_module(name: str, model: nn.Module, batches: list[int]) -> None:
    model.eval()
    counter = MacCounter()
    counter.attach(model)
    with torch.no_grad():
        model(torch.rand(1, 3, 128, 128))  # warm-up, small
        for batch in batches:
            image = torch.rand(batch, 3, SIZE, SIZE)
            with counter.count():
                seconds = timed(model, image)
            report(name, batch, seconds, counter.macs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,4", help="comma-separated batch sizes (default 1,4)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument(
        "--kp-beta-batches", default="1", help="batches for the scale-1 KPDetector (256^2 3-D maps; default 1)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    parts = args.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {SIZE}x{SIZE}, fp32, random weights")
    started = time.perf_counter()
    if "he" in parts:
        torch.manual_seed(0)
        bench_module("HEEstimator", HEEstimator(), batches)
    if "kp-new" in parts:
        torch.manual_seed(0)
        bench_module("KPDetector New (scale 0.25)", KPDetector(KPDetectorConfig()), batches)
    if "kp-beta" in parts:
        torch.manual_seed(0)
        kp_batches = [int(b) for b in args.kp_beta_batches.split(",")]
        bench_module("KPDetector Beta (scale 1)", KPDetector(KPDetectorConfig(scale_factor=1.0)), kp_batches)
    if "beta" in parts:
        bench_generator("beta", batches)
    if "new" in parts:
        bench_generator("new", batches)
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
