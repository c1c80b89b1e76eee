"""Relative names of the th preprocess outputs (under processed/{twin}/preprocessed/th/), in one place.

Later stages and the inference task read these names; changing one is a format change for every twin.
"""

from __future__ import annotations

AUDIO_WAV = "audio/audio.wav"
VIDEO_MP4 = "video/video.mp4"
VIDEO_AUDIO_WAV = "video/audio.wav"
IMAGE_PNG = "image/image.png"

VIDEO_LANDMARKS = "face/video_landmarks.npz"
IMAGE_LANDMARKS = "face/image_landmarks.npz"
QUALITY_JSON = "face/quality.json"
CONTACT_SHEET = "face/contact_sheet.png"

CROP_SIZES_SUPPORTED = (128, 256, 384, 512, 1024)
DEFAULT_CROP_SIZES = (256, 512)
VIDEO_TRANSFORMS = "face/crops/video_transforms.npz"
IMAGE_TRANSFORMS = "face/crops/image_transforms.npz"


def video_crop(size: int) -> str:
    return f"face/crops/video_{size}.mp4"


def image_crop(size: int) -> str:
    return f"face/crops/image_{size}.png"


FLAME_PARAMS = "flame/params.npz"
FLAME_NEUTRAL_OBJ = "flame/neutral.obj"
FLAME_PREVIEW = "flame/preview.png"

# Shared model files, relative to common/th/ in the store.
FLAME_MODELS = {
    "generic": "flame/generic_model.pkl",
    "female": "flame/female_model.pkl",
    "male": "flame/male_model.pkl",
}
FLAME_DECA_EMBEDDING = "flame/landmark_embedding.npy"
FLAME_STATIC_EMBEDDING = "flame/flame_static_embedding.pkl"
FLAME_DYNAMIC_EMBEDDING = "flame/flame_dynamic_embedding.npy"
FAN_WEIGHTS = {
    "fan": "face_alignment/2DFAN4-11f355bf06.pth.tar",
    "sfd": "face_alignment/s3fd-619a316812.pth",
}

# Neural engine checkpoints, relative to common/th/ (names the platform looks for; rename your files to these).
FACEFORMER_VOCASET = "checkpoints/vocaset.pth"
FACEFORMER_BIWI = "checkpoints/biwi.pth"
BFV2V_CHECKPOINT = "checkpoints/bfv2v.pth.tar"
FV2V_CHECKPOINT = "checkpoints/fv2v.pth.tar"
