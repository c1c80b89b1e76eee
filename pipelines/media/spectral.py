"""Mel spectrograms with numpy alone: the audio features the dataset models need, with no model weights.

Conventions follow librosa's defaults (Slaney mel scale and area-normalised filters, a periodic Hann window,
frames centred on `t * hop` with reflection padding), so features are comparable with what training code built
on librosa expects. Row `t` of a spectrogram describes time `t * hop_length / sample_rate_hz`: its rate is
`sample_rate_hz / hop_length` rows per second (what `timeline.align_features` takes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MelConfig:
    sample_rate_hz: int
    n_fft: int
    hop_length: int
    n_mels: int
    fmin_hz: float = 0.0
    fmax_hz: float | None = None

    @property
    def rate_hz(self) -> float:
        """Spectrogram rows per second."""
        return self.sample_rate_hz / self.hop_length


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_region = mel >= 15.0
    return np.where(log_region, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), hz)


def mel_filterbank(config: MelConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, each normalised to unit area (librosa norm='slaney')."""
    fmax = config.fmax_hz if config.fmax_hz is not None else config.sample_rate_hz / 2
    bins = np.linspace(0.0, config.sample_rate_hz / 2, config.n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(config.fmin_hz)), _hz_to_mel(np.array(fmax)), config.n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return filters.astype(np.float32)


def power_spectrogram(samples: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """(T, n_fft // 2 + 1) power spectra of centred, Hann-windowed frames; T = 1 + len(samples) // hop."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"samples must be a non-empty mono signal, not shape {samples.shape}")
    pad = n_fft // 2
    padded = np.pad(samples, pad, mode="reflect") if samples.size > pad else np.pad(samples, pad)
    count = 1 + (padded.size - n_fft) // hop_length
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length][:count]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, axis=1)
    power: np.ndarray = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return power


def log_mel(samples: np.ndarray, config: MelConfig, *, floor: float = 1e-5) -> np.ndarray:
    """(T, n_mels) natural-log mel energies (magnitude, not power: what vocoder-era models such as SpecVQGAN's
    MelGAN expect), floored at `floor` before the log so silence is finite."""
    power = power_spectrogram(samples, config.n_fft, config.hop_length)
    magnitude = np.sqrt(power)
    mel = magnitude @ mel_filterbank(config).T
    result: np.ndarray = np.log(np.maximum(mel, floor)).astype(np.float32)
    return result
