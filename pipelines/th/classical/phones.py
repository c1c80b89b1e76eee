"""Phone timing from pocketsphinx 5's English phone decoder, with the acoustic model and phone LM inside its wheel.

Phone decoding (no words, no dictionary) is enough to time the lip shapes: it says *when* an M closes the lips or an
OO rounds them, and its mistakes are mostly between phones that look alike. The whole utterance is decoded in one
pass (`full_utt`: cepstral mean normalisation over all of it), so the result does not depend on chunking.
Cost on 2 cores: about 0.05 s of compute per second of audio (1.15 s for sun.wav's 22.5 s), plus 0.13 s to load
the model.
"""

from __future__ import annotations

import os

import numpy as np

from pipelines.th.classical.visemes import Phone

SAMPLE_RATE_HZ = 16000
FRAMES_PER_S = 100  # pocketsphinx's default frame rate: start/end frames are 10 ms steps
# The settings pocketsphinx's documentation gives for phone recognition. The language weight matters: with the
# default (6.5) the phone LM swallows short phones (175 instead of 201 on sun.wav); the beams change nothing here.
_DECODER_SETTINGS = {"lw": 2.0, "beam": 1e-20, "pbeam": 1e-20}


class PhonesUnavailable(RuntimeError):
    """No phone timing: pocketsphinx or its model is missing, or decoding failed. The reason is the message."""


def decode_phones(audio: np.ndarray, sample_rate: int = SAMPLE_RATE_HZ) -> list[Phone]:
    """The phones of `audio` (16 kHz mono float in [-1, 1]) with their spans in seconds, silences included."""
    if sample_rate != SAMPLE_RATE_HZ:
        raise PhonesUnavailable(f"the phone decoder needs {SAMPLE_RATE_HZ} Hz audio, not {sample_rate} Hz")
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError as exc:
        raise PhonesUnavailable(f"pocketsphinx is not installed ({exc})") from exc
    model = os.path.join(get_model_path(), "en-us")
    acoustic, phone_lm = os.path.join(model, "en-us"), os.path.join(model, "en-us-phone.lm.bin")
    if not (os.path.isdir(acoustic) and os.path.isfile(phone_lm)):
        raise PhonesUnavailable(f"pocketsphinx's English model is not in {model}")
    pcm = (np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    try:
        decoder = Decoder(
            hmm=acoustic, allphone=phone_lm, samprate=SAMPLE_RATE_HZ, loglevel="FATAL", **_DECODER_SETTINGS
        )
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
        decoder.end_utt()
        segments = [(str(seg.word), int(seg.start_frame), int(seg.end_frame)) for seg in decoder.seg()]
    except (RuntimeError, ValueError, OSError) as exc:
        raise PhonesUnavailable(f"pocketsphinx failed to decode the speech ({exc})") from exc
    return [
        Phone(label, start / FRAMES_PER_S, (end + 1) / FRAMES_PER_S)  # end_frame is the last frame, inclusive
        for label, start, end in segments
        if end >= start
    ]
