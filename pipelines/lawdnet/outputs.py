"""Relative names of the lawdnet preprocess outputs (under processed/{twin}/preprocessed/lawdnet/) and of the
dataset's folders (under datasets/lawdnet/{name}/), in one place: the dataset task reads what preprocess writes."""

from __future__ import annotations

# --- preprocess, per twin: every per-frame file has exactly `frames` rows of timeline.json ---------------------
TIMELINE_JSON = "lawdnet/timeline.json"
AUDIO_WAV = "lawdnet/audio.wav"
AUDIO_FEATURES = "lawdnet/audio_features.npy"
LANDMARKS_CSV = "lawdnet/landmarks.csv"
CROPS_MP4 = "lawdnet/crops.mp4"
CROP_LANDMARKS = "lawdnet/crop_landmarks.npy"

# Shared model file, relative to common/lawdnet/ in the store (the team's TensorFlow 1.15 DeepSpeech graph).
DEEPSPEECH_GRAPH = "deepspeech/output_graph.pb"

# --- dataset: DINet's training_data folder names; {video} is the twin id ----------------------------------------
FRAME_DIR = "split_video_25fps_frame/"  # {video}/{i:06d}.jpg full frames
AUDIO_DIR = "split_video_25fps_audio/"  # {video}.wav
DEEPSPEECH_DIR = "split_video_25fps_deepspeech/"  # {video}_deepspeech.txt
CROP_FACE_DIR = "split_video_25fps_crop_face/"  # {video}/{i:06d}.jpg aligned crops
LANDMARK_DIR = "split_video_25fps_landmark_openface/"  # {video}.csv
CROP_LANDMARK_DIR = "split_video_25fps_crop_landmark/"  # {video}.npy (frames, 68, 2) in crop pixels
DATASET_FOLDERS = (FRAME_DIR, AUDIO_DIR, DEEPSPEECH_DIR, CROP_FACE_DIR, LANDMARK_DIR, CROP_LANDMARK_DIR)
TRAINING_JSON = "training_json.json"
VALIDATION_JSON = "validation_json.json"

# LawDNet's crop: 416 high, 320 wide (its FaceAlign with out_W=320, height 1.3 x width; mouth region 256).
CROP_HEIGHT = 416
CROP_WIDTH = 320
