"""SpecVQGAN's mel spectrogram of one audio chunk, as its `extract_mel_spectrogram.py` computes it.

SpecVQGAN (and the seed's copy of its script): librosa 0.8 `stft` (n_fft 1024, hop 256, centred, reflection
padded, periodic Hann), magnitude (power 1), Slaney mel filters (80 bands, 125-7600 Hz), then
`clip((20 * log10(max(mel, 1e-5)) - 20 + 100) / 100, 0, 1)`, trimmed to 860 columns for 10 s at 22050 Hz.
`pipelines.media.spectral` gives the same STFT and filters; only the scaling and the trim are SpecVQGAN's.

The trim: a 10 s chunk has 1 + 220500 // 256 = 862 centred columns and SpecVQGAN keeps 860 (its TrimSpec(860)),
i.e. exactly the columns whose window ends inside the chunk. That rule is used for every duration, so a 2 s chunk
keeps 171 columns. (848, in SpecVQGAN's configs, is the training-time crop `spec_crop_len`, not the stored length.)
"""

from __future__ import annotations

import numpy as np

from pipelines.media.spectral import MelConfig, log_mel

N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 80
FMIN_HZ = 125.0
FMAX_HZ = 7600.0
FLOOR = 1e-5  # SpecVQGAN's LowerThresh: silence is -100 dB before the shift, 0 after the clip


def mel_config(sample_rate_hz: int) -> MelConfig:
    return MelConfig(sample_rate_hz, N_FFT, HOP_LENGTH, N_MELS, fmin_hz=FMIN_HZ, fmax_hz=FMAX_HZ)


def mel_columns(samples: int) -> int:
    """Columns kept for a chunk of `samples`: those whose centred window ends inside it (860 for 220500)."""
    return (samples - N_FFT // 2) // HOP_LENGTH + 1


def specvqgan_mel(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """(80, mel_columns(len(samples))) float32 in [0, 1] of float `samples` in [-1, 1)."""
    columns = mel_columns(samples.size)
    if columns < 1:
        raise ValueError(f"{samples.size} samples are too few for one {N_FFT}-sample window")
    natural_log = log_mel(samples, mel_config(sample_rate_hz), floor=FLOOR)  # (T, 80), ln(max(mel, floor))
    decibels = (20.0 / np.log(10.0)) * natural_log[:columns].T.astype(np.float64)
    scaled = np.clip((decibels - 20.0 + 100.0) / 100.0, 0.0, 1.0)
    return np.ascontiguousarray(scaled, dtype=np.float32)
