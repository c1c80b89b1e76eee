"""Shared media helpers: probe a file, run ffmpeg, normalise audio, video and images.

Every model's preprocess starts from the same canonical forms (16 kHz mono PCM16 WAV, constant-rate H.264 MP4,
RGB PNG), made by `pipelines.media.normalize`. Functions here work on local paths and raise
`pipelines.base.BadInput` for input a user must fix.
"""
