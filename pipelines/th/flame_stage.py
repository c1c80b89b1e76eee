"""The `flame` stage of th preprocess: fit FLAME to the twin's landmarks.

FLAME is licensed per user, so its files are not part of the product: the stage runs when a FLAME model is in the
store under common/th/flame/ and is skipped, saying which key to upload, when none is. A model without a landmark
embedding is a permanent error naming the keys (`landmark_embedding.npy` from DECA, or RingNet's
`flame_static_embedding.pkl` with optional `flame_dynamic_embedding.npy`).

It fits one identity shared by every usable frame of the video (and the photo), and per frame expression, jaw, head
pose and a weak-perspective camera (`flame.fitting`). Outputs: `flame/params.npz` (per-frame parameters and fitting
error), `flame/neutral.obj` (the identity mesh, metres), `flame/preview.png` (a frame with the fitted mesh over it).

Parameters:
    flame              "auto" (default): fit when a model is in the store, else skip naming the key;
                       "required": a missing model fails the job as weights_missing; "off": never fit
    flame_model        "generic" (default), "female" or "male"
    flame_shape        identity components (100), capped at what the file has
    flame_expression   expression components (50), capped likewise
    flame_iterations   {"rigid": 60, "full": 300}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.base import BadInput, InputSpec, MissingWeights, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.media.frames import read_frames
from pipelines.media.images import read_rgb
from pipelines.th import outputs as files
from pipelines.th.face.landmarks_file import FaceLandmarks, load_landmarks
from pipelines.th.face.pictures import mesh_overlay, save_png, side_by_side
from pipelines.th.flame import (
    FlameLandmarks,
    FlameLayer,
    LandmarkEmbedding,
    load_flame_model,
    read_deca_embedding,
    read_ringnet_embedding,
)
from pipelines.th.flame.camera import write_obj
from pipelines.th.flame.fitting import FitConfig, FitResult, fit_flame

FORMAT_VERSION = 1
FLAME_MODES = ("auto", "required", "off")


class FlameStage:
    name = "flame"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("video_landmarks", Source.PROCESSED, relative=files.VIDEO_LANDMARKS, optional=True),
        InputSpec("image_landmarks", Source.PROCESSED, relative=files.IMAGE_LANDMARKS, optional=True),
        InputSpec("video", Source.PROCESSED, relative=files.VIDEO_MP4, optional=True),
        InputSpec("image", Source.PROCESSED, relative=files.IMAGE_PNG, optional=True),
        *(
            InputSpec(f"flame_{kind}", Source.COMMON, relative=relative, optional=True)
            for kind, relative in files.FLAME_MODELS.items()
        ),
        InputSpec("deca_embedding", Source.COMMON, relative=files.FLAME_DECA_EMBEDDING, optional=True),
        InputSpec("static_embedding", Source.COMMON, relative=files.FLAME_STATIC_EMBEDDING, optional=True),
        InputSpec("dynamic_embedding", Source.COMMON, relative=files.FLAME_DYNAMIC_EMBEDDING, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(files.FLAME_PARAMS),
        OutputSpec(files.FLAME_NEUTRAL_OBJ),
        OutputSpec(files.FLAME_PREVIEW),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        mode = (params or {}).get("flame", "auto")
        if mode == "off":
            return "FLAME fitting is turned off for this run (flame=off)"
        if not {"video_landmarks", "image_landmarks"} & available_inputs:
            return "no landmarks to fit FLAME to"
        if mode == "auto" and not {f"flame_{kind}" for kind in files.FLAME_MODELS} & available_inputs:
            return (
                f"no FLAME model in the store (common/th/{files.FLAME_MODELS['generic']}): FLAME is licensed per "
                "user; upload it (and its landmark embedding) to fit FLAME, or run with flame=required to make "
                "its absence an error"
            )
        return None  # "required" (or a bad value, which `run` reports) runs the stage

    def run(self, context: StageContext) -> StageResult:
        params = context.params
        _choice(params, "flame", FLAME_MODES, "auto")
        kind = _choice(params, "flame_model", tuple(files.FLAME_MODELS), "generic")
        model_path = context.inputs.get(f"flame_{kind}")
        if model_path is None:
            raise MissingWeights(f"the FLAME {kind} model is not in the store", names=(files.FLAME_MODELS[kind],))
        context.progress(0.0, f"loading FLAME ({kind})")
        data = load_flame_model(model_path, weights_name=files.FLAME_MODELS[kind])
        embedding = _embedding(context.inputs)
        n_shape = min(_count(params, "flame_shape", 100), data.num_shape_components)
        n_expression = min(_count(params, "flame_expression", 50), data.num_expression_components)
        layer = FlameLayer(data, n_shape, n_expression)
        landmark_module = FlameLandmarks(embedding, data.faces)
        config = _fit_config(params)

        sources = [
            (name, load_landmarks(context.inputs[f"{name}_landmarks"]))
            for name in ("video", "image")
            if f"{name}_landmarks" in context.inputs
        ]
        points = np.concatenate([record.points for _, record in sources]).astype(np.float64)
        weights = np.concatenate([_frame_weights(record) for _, record in sources])
        if not (weights > 0).any():
            raise BadInput("no usable frame to fit FLAME to: the landmarks stage found no usable face")
        points = np.where(np.isfinite(points), points, 0.0)

        def report(fraction: float, message: str) -> None:
            context.progress(0.05 + 0.85 * fraction, message)
            context.check_cancelled()

        result = fit_flame(layer, landmark_module, points, weights, config, progress=report)
        context.progress(0.9, "writing the FLAME fit")
        _save_params(context.output_path(files.FLAME_PARAMS), result, sources, kind)
        neutral = result.neutral_vertices(layer)
        write_obj(context.output_path(files.FLAME_NEUTRAL_OBJ), neutral, data.faces)
        preview_index, preview_frame = _preview_frame(context, sources, weights)
        vertices_px = _posed_pixels(layer, result, preview_index)
        picture = side_by_side(
            [preview_frame, mesh_overlay(preview_frame, vertices_px, data.faces)],
            [f"frame {preview_index}", f"FLAME fit, error {result.error_px[preview_index]:.1f} px"],
        )
        save_png(context.output_path(files.FLAME_PREVIEW), picture)

        errors = result.error_px[np.isfinite(result.error_px)]
        metrics = {
            "model": kind,
            "frames_fitted": int((weights > 0).sum()),
            "frames": int(len(weights)),
            "n_shape": n_shape,
            "n_expression": n_expression,
            "error_px_median": round(float(np.median(errors)), 3),
            "error_px_p95": round(float(np.percentile(errors, 95)), 3),
            "error_px_max": round(float(errors.max()), 3),
        }
        context.progress(1.0, "FLAME fitted")
        return StageResult(
            outputs=[files.FLAME_PARAMS, files.FLAME_NEUTRAL_OBJ, files.FLAME_PREVIEW],
            metrics=metrics,
            message=(
                f"FLAME {kind} fitted to {metrics['frames_fitted']} of {metrics['frames']} frames; landmark error "
                f"median {metrics['error_px_median']:.2f} px, 95th percentile {metrics['error_px_p95']:.2f} px"
            ),
        )


def _embedding(inputs: Mapping[str, Path]) -> LandmarkEmbedding:
    if "deca_embedding" in inputs:
        return read_deca_embedding(inputs["deca_embedding"])
    if "static_embedding" in inputs:
        return read_ringnet_embedding(inputs["static_embedding"], inputs.get("dynamic_embedding"))
    raise MissingWeights(
        "a FLAME model is in the store but no landmark embedding: upload DECA's landmark_embedding.npy, or RingNet's "
        "flame_static_embedding.pkl (with flame_dynamic_embedding.npy for the jaw contour)",
        names=(files.FLAME_DECA_EMBEDDING, files.FLAME_STATIC_EMBEDDING),
    )


def _frame_weights(record: FaceLandmarks) -> np.ndarray:
    """Confidence for usable frames, 0 for the rest (the fitter copies their parameters from the nearest fit)."""
    return np.where(record.usable & record.found, np.clip(record.confidence, 1e-3, 1.0), 0.0).astype(np.float64)


def _fit_config(params: Mapping[str, Any]) -> FitConfig:
    value = params.get("flame_iterations", {})
    if not isinstance(value, Mapping) or set(value) - {"rigid", "full"}:
        raise BadInput(f"parameter flame_iterations={value!r} must be an object with 'rigid' and/or 'full' counts")
    counts = {}
    for key in ("rigid", "full"):
        number = value.get(key, {"rigid": 60, "full": 300}[key])
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 10000:
            raise BadInput(f"parameter flame_iterations.{key}={number!r} must be a whole number from 0 to 10000")
        counts[key] = number
    return FitConfig(rigid_iterations=counts["rigid"], full_iterations=counts["full"])


def _save_params(path: Path, result: FitResult, sources: list[tuple[str, FaceLandmarks]], kind: str) -> None:
    """Per-frame parameters; `source` (T,) says which rows are video frames and which the photo."""
    source = np.concatenate([np.full(record.frames, name, dtype="<U8") for name, record in sources])
    frame = np.concatenate([np.arange(record.frames) for _, record in sources])
    with path.open("wb") as handle:
        np.savez_compressed(
            handle,
            format_version=np.int32(FORMAT_VERSION),
            model=np.asarray(kind),
            shape=result.shape,
            expression=result.expression,
            pose=result.pose,
            camera=result.camera,
            error_px=result.error_px,
            source=source,
            frame=frame,
        )


def _posed_pixels(layer: FlameLayer, result: FitResult, index: int) -> np.ndarray:
    """The fitted mesh of row `index` in frame pixels: x, y, and a depth that grows towards the camera."""
    dtype = layer.v_template.dtype
    with torch.no_grad():
        shape = torch.tensor(result.shape, dtype=dtype)[None]
        expression = torch.tensor(result.expression[index : index + 1], dtype=dtype)
        pose = torch.tensor(result.pose[index : index + 1], dtype=dtype)
        vertices = layer(shape, expression, pose).vertices[0].numpy().astype(np.float64)
    scale, tx, ty = (float(v) for v in result.camera[index])
    return np.stack([scale * vertices[:, 0] + tx, -scale * vertices[:, 1] + ty, scale * vertices[:, 2]], axis=1)


def _preview_frame(
    context: StageContext, sources: list[tuple[str, FaceLandmarks]], weights: np.ndarray
) -> tuple[int, np.ndarray]:
    """The middle fitted row and its picture (decoded from the normalised video or the photo)."""
    fitted = np.flatnonzero(weights > 0)
    index = int(fitted[len(fitted) // 2])
    offset = 0
    for name, record in sources:
        if index < offset + record.frames:
            local = index - offset
            if name == "image" and "image" in context.inputs:
                return index, read_rgb(context.inputs["image"], files.IMAGE_PNG)
            if name == "video" and "video" in context.inputs:
                seen = 0
                for batch in read_frames(context.inputs["video"], 32):
                    if local < seen + len(batch):
                        return index, np.ascontiguousarray(batch[local - seen])
                    seen += len(batch)
            break
        offset += record.frames
    record = sources[0][1]
    return index, np.zeros((record.height, record.width, 3), dtype=np.uint8)


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise BadInput(f"parameter {name}={value!r} is unknown; use one of {', '.join(allowed)}")
    return str(value)


def _count(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 400:
        raise BadInput(f"parameter {name}={value!r} must be a whole number from 0 to 400")
    return value
