"""perceptalign's parts on synthetic arrays: SpecVQGAN's mel, denseflow's quantisation, settings, the npz writer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.base import BadInput, StageContext
from pipelines.perceptalign.bundle import npz_writer
from pipelines.perceptalign.dataset_params import DatasetParams
from pipelines.perceptalign.flow import (
    FlowEstimator,
    dequantise,
    flow_size,
    quantise,
    resolve_algorithm,
    tvl1_available,
)
from pipelines.perceptalign.media_stages import with_model_defaults
from pipelines.perceptalign.melspec import mel_columns, specvqgan_mel
from pipelines.perceptalign.settings import ChunkSettings
from pipelines.registry import load_pipeline
from pipelines.th import preprocess as th


def tone(seconds: float, hz: float, sample_rate_hz: int = 22050) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_mel_has_specvqgans_shape_range_and_frequency_axis() -> None:
    assert mel_columns(220500) == 860  # SpecVQGAN's TrimSpec(860) for 10 s at 22050 Hz
    assert mel_columns(44100) == 171
    low, high = specvqgan_mel(tone(10, 440), 22050), specvqgan_mel(tone(10, 3000), 22050)

    assert low.shape == high.shape == (80, 860) and low.dtype == np.float32
    assert 0.0 <= low.min() and low.max() <= 1.0
    # row 0 is the lowest band (125 Hz): a higher tone peaks in a higher row
    assert low.mean(axis=1).argmax() < high.mean(axis=1).argmax()
    assert not specvqgan_mel(np.zeros(44100, np.float32), 22050).any()  # silence: -100 dB floor -> 0 after clip


def test_flow_quantisation_is_denseflows() -> None:
    pixels = np.array([-40.0, -20.0, -10.0, 0.0, 10.0, 20.0, 40.0], dtype=np.float32)

    assert quantise(pixels, 20).tolist() == [0, 0, 64, 128, 191, 255, 255]
    half_step = 20 / 255  # one level is 2 * bound / 255 pixels
    assert np.abs(dequantise(quantise(pixels[1:-1], 20), 20) - pixels[1:-1]).max() <= half_step + 1e-5


def test_flow_size_scales_the_short_side_and_keeps_aspect() -> None:
    assert flow_size(576, 768, 256) == (256, 341)
    assert flow_size(768, 576, 256) == (341, 256)
    assert flow_size(128, 128, 256) == (256, 256)
    assert flow_size(576, 768, 0) == (576, 768)


def test_farneback_sees_a_shift_and_nothing_in_a_still_pair() -> None:
    rng = np.random.default_rng(0)
    texture = (rng.random((64, 64)) * 255).astype(np.uint8)
    smooth = cv2.GaussianBlur(np.kron(texture, np.ones((4, 4), np.uint8)), (9, 9), 2)
    estimator = FlowEstimator("farneback", 256, 256, 20.0)
    shifted = np.roll(smooth, 3, axis=1)  # 3 px to the right

    moving = dequantise(estimator.pair(smooth, shifted), 20.0)[:, 32:-32, 32:-32]
    still = estimator.pair(smooth, smooth)

    assert np.median(moving[0]) == pytest.approx(3.0, abs=0.3) and abs(np.median(moving[1])) < 0.3
    # zero flow is 127.5 levels: Farneback's residual noise lands on 127 or 128, a little more at the borders
    assert np.isin(still, (127, 128)).mean() > 0.99 and np.abs(still - 127.5).max() <= 2.5


@pytest.mark.skipif(tvl1_available(), reason="this OpenCV has cv2.optflow, so TV-L1 can run")
def test_tvl1_is_refused_where_opencv_lacks_it_and_auto_falls_back() -> None:
    assert resolve_algorithm("auto") == "farneback"
    with pytest.raises(BadInput, match="cv2.optflow"):
        resolve_algorithm("tvl1")


def test_settings_defaults_and_refusals() -> None:
    settings = ChunkSettings.from_params({})

    assert (settings.fps, settings.sample_rate_hz, settings.duration_s) == (21.5, 22050, 10.0)
    assert (settings.frames_per_chunk, settings.samples_per_chunk) == (215, 220500)
    with pytest.raises(BadInput, match="whole number"):
        ChunkSettings.from_params({"duration_s": 2.5})  # 53.75 frames
    with pytest.raises(BadInput, match="flow_bound"):
        ChunkSettings.from_params({"flow_bound": -1})
    assert settings.differences({**settings.to_json(), "duration_s": 2}) == [
        "duration_s=2 (this dataset asks for 10.0)"
    ]


def test_dataset_params_refusals() -> None:
    assert DatasetParams.from_params({"dataset": "x"}).fractions == pytest.approx(
        {"train": 0.8, "valid": 0.1, "test": 0.1}
    )
    for bad in ({}, {"dataset": "a/b"}, {"dataset": "x", "train_percent": 80}, {"dataset": "x", "class_name": ".."},
                {"dataset": "x", "train_percent": 0.7, "valid_percent": 0.4}, {"dataset": "x", "jpeg_quality": 0},
                {"dataset": "x", "split_by": "speaker"}):
        with pytest.raises(BadInput):
            DatasetParams.from_params(bad)


def test_npz_writer_gives_the_same_bytes_for_the_same_arrays(tmp_path: Path) -> None:
    arrays = {"mel": np.arange(12, dtype=np.float32).reshape(3, 4), "version": np.int32(1)}
    for name in ("a.npz", "b.npz"):
        with npz_writer(tmp_path / name) as writer:
            for key, value in arrays.items():
                writer.add(key, value)

    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as loaded:
        assert loaded["mel"].tolist() == arrays["mel"].tolist() and int(loaded["version"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]  # no partial file left


def test_media_stages_get_this_models_rates_without_changing_ths(tmp_path: Path) -> None:
    context = StageContext(inputs={}, output_dir=tmp_path, params={"fps": 25})
    assert with_model_defaults(context).params == {"fps": 25, "sample_rate_hz": 22050}
    assert with_model_defaults(StageContext(inputs={}, output_dir=tmp_path)).params["fps"] == 21.5
    assert context.params == {"fps": 25}
    assert (th.DEFAULT_FPS, th.DEFAULT_SAMPLE_RATE_HZ) == (25, 16000)
    assert th.AudioStage.inputs == (th.AudioStage().inputs[0],)  # th's own stage still has one input

    pipeline = load_pipeline("perceptalign", "preprocess")
    assert [stage.name for stage in pipeline.stages] == ["video", "audio", "chunks"]
    dataset = load_pipeline("perceptalign", "dataset")
    assert [spec.relative for spec in dataset.stages[0].outputs] == [
        "features/", "videos/", "audio/", "frames/", "flow/", "splits/", "manifest.json"
    ]
