"""The neural engine's `render` stage: BFv2v warps each crop of the twin's frame to the driving landmarks.

How our landmarks meet BFv2v's inputs: MDTH feeds eos-frontalised 3-D landmarks and a per-frame eos matrix U that
puts the head pose back. eos and its Surrey model are not available here, so the platform feeds the aligned crop's
own 2-D landmarks, centred and divided by SCALE (z = 0), with one fixed U that only maps them to crop pixels
([X, Y, Z, 1] @ U = pixels / SCALE, i.e. a translation by (1, 1)); the head pose is then carried by the landmarks
themselves. This wiring loads and runs any BFv2v checkpoint, but one trained on eos inputs will not see the inputs it
was trained on: say so to users of private MDTH weights (docs/inference.md).

The source appearance feature of each twin frame is encoded once per run (LRU cache), as face-vid2vid allows.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from pipelines.base import MissingWeights, StageContext, StageResult
from pipelines.th import outputs as files
from pipelines.th.neural.fv2v.bfv2v import BFv2vGenerator, load_bfv2v_generator
from pipelines.th.render import WarpBatch, render_stage

FEATURE_CACHE_FRAMES = 48


class BFv2vWarper:
    def __init__(self, generator: BFv2vGenerator, device: torch.device, dtype: torch.dtype) -> None:
        self.generator, self.device, self.dtype = generator, device, dtype
        self.scale = float(generator.config.landmark_scale)
        self.size = int(round(2 * self.scale))
        view = torch.eye(4, dtype=torch.float32)
        view[3, :2] = 1.0  # [X, Y, Z, 1] @ U = (X + 1, Y + 1, Z): centred crop units -> pixels / SCALE
        self.view = view.to(device)
        self.features: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    def _model_points(self, points: np.ndarray) -> torch.Tensor:
        centred = (points - self.scale) / self.scale
        xyz = np.concatenate([centred, np.zeros(points.shape[:-1] + (1,), dtype=np.float32)], axis=-1)
        return torch.tensor(xyz, dtype=self.dtype, device=self.device)

    def _feature(self, crop: np.ndarray) -> torch.Tensor:
        key = crop[::16, ::16].tobytes()  # a cheap fingerprint of the crop: same twin frame -> same key
        cached = self.features.get(key)
        if cached is None:
            image = torch.tensor(crop, device=self.device).permute(2, 0, 1)[None].to(self.dtype) / 255.0
            with torch.no_grad():
                cached = self.generator.encode_source(image)
            self.features[key] = cached
            if len(self.features) > FEATURE_CACHE_FRAMES:
                self.features.popitem(last=False)
        else:
            self.features.move_to_end(key)
        return cached

    def warp(self, batch: WarpBatch) -> np.ndarray:
        count = len(batch.crops)
        views = self.view.expand(count, 4, 4).to(self.dtype)
        with torch.no_grad():
            feature = torch.cat([self._feature(crop) for crop in batch.crops])
            kp_source = self.generator.keypoints(self._model_points(batch.source_points), views)
            kp_driving = self.generator.keypoints(self._model_points(batch.driving_points), views)
            out = self.generator.warp_and_decode(feature, kp_source=kp_source, kp_driving=kp_driving)
        pixels = (out.prediction.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return np.ascontiguousarray(pixels.permute(0, 2, 3, 1).cpu().numpy())


def neural_render(context: StageContext, *, fps: int, output: str) -> StageResult:
    inputs = context.inputs
    if "bfv2v" not in inputs:
        raise MissingWeights(
            "the neural engine warps with a BFv2v generator, which is not in the store (no public BFv2v weights "
            "exist; upload your own)",
            names=(files.BFV2V_CHECKPOINT,),
        )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" and context.params.get("fp16", True) else torch.float32
    generator = load_bfv2v_generator(inputs["bfv2v"], device=device, dtype=dtype, weights_name=files.BFV2V_CHECKPOINT)
    warper = BFv2vWarper(generator, device, dtype)
    count = render_stage(context, warper, fps=fps, output=output, batch_size=4 if device.type == "cpu" else 16)
    return StageResult(
        outputs=[output],
        metrics={"frames": count, "fps": fps, "device": device.type, "dtype": str(dtype).replace("torch.", "")},
        message=f"{count} frames warped with BFv2v on {device.type} and muxed with the speech",
    )
