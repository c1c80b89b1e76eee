"""The neural engine's `motion` stage: speech -> FaceFormer vertices -> FLAME mouth landmarks in the twin's frames.

Needs, in the store: FaceFormer `checkpoints/vocaset.pth` (FLAME topology), the FLAME model and its landmark
embedding, and the twin's preprocess with a FLAME fit (`flame/params.npz`). Each missing piece is a permanent
error naming what to upload or run. Non-mouth landmarks (head pose, eyes, blinks) are the twin's own, frame by
frame, from its video played forwards and backwards (`driving.ping_pong`).
"""

from __future__ import annotations

import numpy as np

from pipelines.base import BadInput, MissingWeights, StageContext, StageResult
from pipelines.media.wav import read_wav_16k
from pipelines.th import outputs as files
from pipelines.th.driving import fit_length, frame_count, ping_pong, replace_mouth, save_driving
from pipelines.th.face.landmarks_file import load_landmarks
from pipelines.th.flame import FlameLandmarks, FlameLayer, load_flame_model, read_deca_embedding, read_ringnet_embedding
from pipelines.th.neural.mouth import TwinFlameFit, mouth_tracks, neutral_template

DEFAULT_SUBJECT = 2  # FaceTalk_170725_00137_TA in vocaset's training order: the speaking style MDTH uses


def neural_motion(context: StageContext, *, fps: int, output: str) -> StageResult:
    inputs = context.inputs
    if "faceformer" not in inputs:
        raise MissingWeights(
            "the neural engine needs FaceFormer's vocaset checkpoint", names=(files.FACEFORMER_VOCASET,)
        )
    if "flame_generic" not in inputs:
        raise MissingWeights("the neural engine needs the FLAME model", names=(files.FLAME_MODELS["generic"],))
    if "flame_params" not in inputs or "video_landmarks" not in inputs:
        raise BadInput(
            "the twin has no FLAME fit of its video (flame/params.npz): upload the FLAME files and run "
            "`platform run --task preprocess --param flame=required` first"
        )
    from pipelines.th.neural.faceformer import load_faceformer

    audio = read_wav_16k(inputs["audio"])
    count = frame_count(len(audio) / 16000.0, fps)
    data = load_flame_model(inputs["flame_generic"], weights_name=files.FLAME_MODELS["generic"])
    if "deca_embedding" in inputs:
        embedding = read_deca_embedding(inputs["deca_embedding"])
    elif "static_embedding" in inputs:
        embedding = read_ringnet_embedding(inputs["static_embedding"], inputs.get("dynamic_embedding"))
    else:
        raise MissingWeights(
            "the FLAME landmark embedding is missing", names=(files.FLAME_DECA_EMBEDDING, files.FLAME_STATIC_EMBEDDING)
        )
    fit = TwinFlameFit.load(inputs["flame_params"])
    layer = FlameLayer(data, min(len(fit.shape), data.num_shape_components), 0)
    landmark_module = FlameLandmarks(embedding, data.faces)
    template = neutral_template(layer, fit)

    context.progress(0.05, "loading FaceFormer")
    model, _ = load_faceformer(inputs["faceformer"], weights_name=files.FACEFORMER_VOCASET)
    context.progress(0.1, "FaceFormer: speech to vertices")
    subject = int(context.params.get("faceformer_subject", DEFAULT_SUBJECT))
    vertices = model.predict(audio, template, subject, fps=fps)
    vertices = fit_length(vertices, count)
    context.check_cancelled()

    twin = load_landmarks(inputs["video_landmarks"])
    sources = ping_pong(count, twin.frames, twin.usable)
    mouth = mouth_tracks(vertices, template, layer, landmark_module, fit, sources)
    driving = replace_mouth(twin.points[sources], mouth)
    opening = np.linalg.norm(driving[:, 66] - driving[:, 62], axis=1)
    save_driving(
        context.output_path(output),
        engine="neural",
        fps=fps,
        source_frames=sources,
        landmarks=driving,
        mouth_opening_px=opening.astype(np.float32),
    )
    return StageResult(
        outputs=[output],
        metrics={"frames": count, "fps": fps, "mouth_opening_px_max": round(float(opening.max()), 2)},
        message=f"{count} driving frames at {fps} fps: mouth from FaceFormer, the rest from the twin's video",
    )
