"""Relative names of the perceptalign preprocess outputs (under processed/{twin}/preprocessed/perceptalign/).

The first three are written by th's media stages, reused here with this model's rates; the rest by the chunks
stage. The dataset task reads these names; changing one is a format change for every twin.
"""

from __future__ import annotations

from pipelines.th import outputs as th_outputs

VIDEO_MP4 = th_outputs.VIDEO_MP4  # the video at 21.5 fps (H.264, no sound)
VIDEO_AUDIO_WAV = th_outputs.VIDEO_AUDIO_WAV  # the video's own sound track at 22050 Hz, when it has one
UPLOADED_AUDIO_WAV = th_outputs.AUDIO_WAV  # the uploaded audio at 22050 Hz, used only when the video is silent

AUDIO_WAV = "chunks/audio.wav"  # the sound the chunks were cut from, trimmed to the kept frames
CHUNKS_NPZ = "chunks/chunks.npz"  # mel spectrograms, optical flow and frame/sample ranges per chunk
CHUNKS_JSON = "chunks/chunks.json"  # counts, dropped tail, settings, flow algorithm

FORMAT_VERSION = 1  # of chunks.npz and chunks.json
