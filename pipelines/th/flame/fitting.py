"""Fit FLAME (shared identity, per-frame expression/jaw/head pose) and a weak-perspective camera to 2-D landmarks.

The recipe follows MDTH's `fit_lmk3d.py` (TF_FLAME flame-fitting): a rigid stage (head rotation + camera, identity
and expression at zero), then everything, with L2 priors on identity, expression and jaw. Differences: the targets
are 2-D image landmarks (68 iBUG points, or iBUG 17-67 when the embedding has no contour) seen through the camera
of `camera.py`, identity is shared by all frames, and the solver is torch L-BFGS (strong-Wolfe line search)
instead of chumpy's dogleg. The neck and eye rotations stay zero: under weak perspective the neck turn is nearly
the same as the global one, so the head rotation goes into the global pose (as in MDTH and DECA).

Internally landmarks are normalised, q = ((u - cu) / d, -(v - cv) / d) with (cu, cv) the mean valid landmark and
d the mean per-frame RMS spread, so the loss and the priors do not depend on image resolution. The loss is

    sum_t c_t sum_l w_l |q_tl - proj_tl|^2 / (sum_t c_t sum_l w_l)
      + shape_weight |beta|^2 + expression_weight mean_t |psi_t|^2 + jaw_weight mean_t |jaw_t|^2

over the frames with confidence c_t > 0 (w_l = contour_weight for iBUG 0-16, else 1). Frames with c_t = 0 are
left out of the optimisation entirely; their results are copied from the nearest fitted frame (error_px = NaN).
Everything is deterministic: no random initialisation, CPU float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipelines.th.flame.camera import project
from pipelines.th.flame.landmarks import FlameLandmarks
from pipelines.th.flame.layer import POSE_SIZE, FlameLayer, compose_pose

Progress = Callable[[float, str], None]
NUM_IBUG = 68
NUM_CONTOUR = 17


@dataclass(frozen=True)
class FitConfig:
    """Fitting settings. Weights are relative to the normalised landmark loss (face spread ~ 1, see module doc).

    Prior weights: the loss is a Gaussian negative log-posterior scaled by 1/L (L = 68 landmarks) when a weight is
    2 sigma^2 / L, sigma the landmark noise per axis in normalised units. sigma ~ 1.5 % of the face spread (about
    1 px on a 60 px RMS spread, 3 px at 200 px) gives ~7e-6, hence 1e-5 for unit-variance FLAME coefficients.
    The jaw (radians, not unit-variance) gets 1e-4, a mild pull towards a closed mouth.

    rigid_iterations   L-BFGS iterations of stage 1 (rotation + camera); 0 skips it
    full_iterations    L-BFGS iterations of stage 2 (everything); 0 gives a rigid-only fit
    learning_rate      L-BFGS step scale (1.0 is right with the strong-Wolfe line search)
    shape_weight       L2 prior on the shared identity coefficients (FLAME's are unit-variance)
    expression_weight  L2 prior on each frame's expression coefficients (mean over frames)
    jaw_weight         L2 prior on each frame's jaw axis-angle, radians^2 (mean over frames)
    contour_weight     weight of the 17 jaw-contour landmarks (iBUG 0-16), less reliable than the inner face
    chunks             progress reports per stage (the iterations are split into this many L-BFGS calls)
    """

    rigid_iterations: int = 60
    full_iterations: int = 300
    learning_rate: float = 1.0
    shape_weight: float = 1e-5
    expression_weight: float = 1e-5
    jaw_weight: float = 1e-4
    contour_weight: float = 0.5
    chunks: int = 5

    def __post_init__(self) -> None:
        if self.rigid_iterations < 0 or self.full_iterations < 0 or self.chunks < 1:
            raise ValueError("iterations must be >= 0 and chunks >= 1")
        if min(self.shape_weight, self.expression_weight, self.jaw_weight, self.contour_weight) < 0:
            raise ValueError("weights must be >= 0")


@dataclass(frozen=True, eq=False)
class FitResult:
    """Fitted parameters, numpy float32 (T frames). Camera and error are in pixels (see `camera.py`)."""

    shape: np.ndarray  # (n_shape,) identity shared by all frames
    expression: np.ndarray  # (T, n_expression)
    pose: np.ndarray  # (T, 15) [global, neck (zero), jaw, eyes (zero)] axis-angle radians
    camera: np.ndarray  # (T, 3) (s px/metre, tx px, ty px)
    error_px: np.ndarray  # (T,) mean landmark distance in pixels; NaN for frames left out (confidence 0)

    def neutral_vertices(self, layer: FlameLayer) -> np.ndarray:
        """The identity mesh (V,3) in metres: fitted shape, zero expression, zero pose."""
        with torch.no_grad():
            shape = torch.tensor(self.shape, dtype=layer.v_template.dtype)[None]
            output = layer(shape, shape.new_zeros(1, layer.n_expression), shape.new_zeros(1, POSE_SIZE))
        return np.array(output.vertices[0].numpy(), dtype=np.float32)


def reproject(layer: FlameLayer, landmarks_module: FlameLandmarks, result: FitResult) -> np.ndarray:
    """Pixel landmarks (T,L,2) of a fit (L = 68, or 51 for a static-only embedding)."""
    dtype = layer.v_template.dtype
    with torch.no_grad():
        frames = result.pose.shape[0]
        shape = torch.tensor(result.shape, dtype=dtype)[None].expand(frames, -1)
        pose = torch.tensor(result.pose, dtype=dtype)
        vertices = layer(shape, torch.tensor(result.expression, dtype=dtype), pose).vertices
        pixels = project(landmarks_module(vertices, pose), torch.tensor(result.camera, dtype=dtype))
    return np.array(pixels.numpy(), dtype=np.float64)


def fit_flame(
    layer: FlameLayer,
    landmarks_module: FlameLandmarks,
    landmarks_2d: np.ndarray,
    confidence: np.ndarray | None = None,
    config: FitConfig | None = None,
    progress: Progress | None = None,
) -> FitResult:
    """Fit `layer` to pixel landmarks (T,68,2) (x right, y down); `confidence` (T,) >= 0 weights frames (None = 1).

    `progress(fraction, message)` is called at most 2 * config.chunks + 2 times. Raises ValueError for bad input.
    """
    config = config or FitConfig()
    targets, weights, valid = _check_inputs(landmarks_2d, confidence)
    report = progress or (lambda fraction, message: None)
    report(0.0, f"fitting FLAME to {int(valid.sum())} of {len(valid)} frames")
    dtype = layer.v_template.dtype
    count = _landmark_count(layer, landmarks_module)
    points = torch.tensor(targets[valid][:, NUM_IBUG - count :], dtype=dtype)  # (N, L, 2) pixels
    if not torch.isfinite(points).all():
        raise ValueError(f"the {count} landmarks used must be finite in frames with confidence > 0")
    centre = points.reshape(-1, 2).mean(0)
    spread = float((points - points.mean(1, keepdim=True)).square().sum(-1).mean(1).sqrt().mean())
    spread = max(spread, 1e-6)
    flip = points.new_tensor([1.0, -1.0])
    normalised = (points - centre) * flip / spread
    problem = _Problem(layer, landmarks_module, normalised, torch.tensor(weights[valid], dtype=dtype), config)

    stages = [("rigid", config.rigid_iterations, problem.rigid_parameters())]
    stages.append(("all parameters", config.full_iterations, problem.all_parameters()))
    runs = [(name, iterations, params) for name, iterations, params in stages if iterations > 0]
    for index, (name, iterations, params) in enumerate(runs):
        _minimise(problem, params, iterations, config, report, index, len(runs), name)

    with torch.no_grad():
        predicted, pose = problem.predict()
        pixels = predicted * flip * spread + centre
        error = (pixels - points).norm(dim=-1).mean(1)
        scale = problem.log_scale.exp() * spread
        camera = torch.cat([scale[:, None], centre + problem.translation * flip * spread], dim=1)
    fitted = np.flatnonzero(valid)
    source = fitted[np.abs(np.arange(len(valid))[:, None] - fitted[None, :]).argmin(1)]  # nearest fitted frame
    rank = np.searchsorted(fitted, source)
    error_px = np.full(len(valid), np.nan, dtype=np.float32)
    error_px[fitted] = error.numpy()
    report(1.0, f"fitted; mean landmark error {float(error.mean()):.2f} px")
    return FitResult(
        shape=problem.shape.detach().numpy().astype(np.float32).copy(),
        expression=problem.expression.detach().numpy()[rank].astype(np.float32),
        pose=pose.numpy()[rank].astype(np.float32),
        camera=camera.numpy()[rank].astype(np.float32),
        error_px=error_px,
    )


def _landmark_count(layer: FlameLayer, landmarks_module: FlameLandmarks) -> int:
    """68, or 51 for a static-only embedding (then iBUG 17-67 of the targets are used)."""
    with torch.no_grad():
        zeros = layer.v_template.new_zeros
        pose = zeros(1, POSE_SIZE)
        vertices = layer(zeros(1, layer.n_shape), zeros(1, layer.n_expression), pose).vertices
        count = int(landmarks_module(vertices, pose).shape[1])
    if count not in (NUM_IBUG, NUM_IBUG - NUM_CONTOUR):
        raise ValueError(f"the landmark module gives {count} points, expected 68 or 51")
    return count


def _check_inputs(landmarks_2d: np.ndarray, confidence: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    targets = np.asarray(landmarks_2d, dtype=np.float64)
    if targets.ndim != 3 or targets.shape[1:] != (NUM_IBUG, 2) or targets.shape[0] == 0:
        raise ValueError(f"landmarks have shape {targets.shape}, expected (T, {NUM_IBUG}, 2) with T >= 1")
    frames = targets.shape[0]
    weights = np.ones(frames) if confidence is None else np.asarray(confidence, dtype=np.float64)
    if weights.shape != (frames,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"confidence must be ({frames},) finite and >= 0, got shape {weights.shape}")
    valid = weights > 0
    if not valid.any():
        raise ValueError("every frame has confidence 0; nothing to fit")
    return targets, weights, valid


class _Problem:
    """Parameters (normalised camera) and loss of one fit over the N frames with confidence > 0."""

    def __init__(
        self,
        layer: FlameLayer,
        landmarks_module: FlameLandmarks,
        targets: torch.Tensor,
        frame_weights: torch.Tensor,
        config: FitConfig,
    ) -> None:
        self.layer, self.landmarks_module, self.config = layer, landmarks_module, config
        frames, dtype = targets.shape[0], targets.dtype
        self.shape = torch.zeros(layer.n_shape, dtype=dtype, requires_grad=True)
        self.expression = torch.zeros(frames, layer.n_expression, dtype=dtype, requires_grad=True)
        self.rotation = torch.zeros(frames, 3, dtype=dtype, requires_grad=True)
        self.jaw = torch.zeros(frames, 3, dtype=dtype, requires_grad=True)
        self.log_scale = torch.zeros(frames, dtype=dtype)
        self.translation = torch.zeros(frames, 2, dtype=dtype)
        with torch.no_grad():
            model = self.predict()[0]  # neutral landmarks: the camera is still the identity
        count = model.shape[1]
        self.targets = targets
        landmark_weights = torch.ones(count, dtype=dtype)
        if count == NUM_IBUG:
            landmark_weights[:NUM_CONTOUR] = config.contour_weight
        self.weights = frame_weights[:, None] * landmark_weights[None, :]
        self.weights = self.weights / self.weights.sum()
        # NOTE: closed-form start for the camera: least-squares scale + offset of the neutral model's landmarks.
        model_mean = (model * self.weights[..., None]).sum(1) / self.weights.sum(1, keepdim=True)
        target_mean = (self.targets * self.weights[..., None]).sum(1) / self.weights.sum(1, keepdim=True)
        centred_model, centred_target = model - model_mean[:, None], self.targets - target_mean[:, None]
        numerator = (self.weights[..., None] * centred_model * centred_target).sum((1, 2))
        denominator = (self.weights[..., None] * centred_model.square()).sum((1, 2)).clamp_min(1e-12)
        scale = (numerator / denominator).clamp_min(1e-3)
        self.log_scale = scale.log().detach().requires_grad_(True)
        self.translation = (target_mean - scale[:, None] * model_mean).detach().requires_grad_(True)

    def rigid_parameters(self) -> list[torch.Tensor]:
        return [self.rotation, self.log_scale, self.translation]

    def all_parameters(self) -> list[torch.Tensor]:
        return [self.shape, self.expression, self.rotation, self.jaw, self.log_scale, self.translation]

    def predict(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised landmarks (N,L,2) and the (N,15) pose."""
        pose = compose_pose(self.rotation, self.jaw)
        vertices = self.layer(self.shape[None].expand(pose.shape[0], -1), self.expression, pose).vertices
        points = self.landmarks_module(vertices, pose)[..., :2]
        return self.log_scale.exp()[:, None, None] * points + self.translation[:, None, :], pose

    def loss(self) -> torch.Tensor:
        predicted, _ = self.predict()
        data = (self.weights * (predicted - self.targets).square().sum(-1)).sum()
        config = self.config
        prior = config.shape_weight * self.shape.square().sum()
        prior = prior + config.expression_weight * self.expression.square().sum(1).mean()
        return data + prior + config.jaw_weight * self.jaw.square().sum(1).mean()


def _minimise(
    problem: _Problem,
    params: list[torch.Tensor],
    iterations: int,
    config: FitConfig,
    report: Progress,
    stage: int,
    stages: int,
    name: str,
) -> None:
    optimiser = torch.optim.LBFGS(
        params,
        lr=config.learning_rate,
        max_iter=max(1, math.ceil(iterations / config.chunks)),
        history_size=50,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        value = problem.loss()
        value.backward()  # type: ignore[no-untyped-call]
        return value

    for chunk in range(config.chunks):
        value = float(optimiser.step(closure).detach())  # type: ignore[no-untyped-call]
        report((stage + (chunk + 1) / config.chunks) / stages * 0.99, f"stage {name}: loss {value:.3g}")
