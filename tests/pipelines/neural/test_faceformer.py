"""FaceFormer: checkpoint layout against the reference list, strict loading and its errors, the positional table and
masks, the audio resampling, the cached decoder against the public algorithm, causality past 600 frames, and output
timing."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipelines.base import BadInput, MissingWeights
from pipelines.th.neural.faceformer import (
    FaceFormer,
    FaceFormerConfig,
    alibi_slopes,
    biased_mask,
    config_from_state_dict,
    decoder_frames,
    detect_dataset,
    expected_shapes,
    layout_problems,
    load_faceformer,
    memory_mask,
    periodic_table,
    public_config,
    resample_audio_features,
    resample_frames,
)
from pipelines.th.neural.wav2vec2 import NEW_WEIGHT_G, NEW_WEIGHT_V, Wav2Vec2Config, normalize_audio

KEYS_FILE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "checkpoint-keys.txt"
TINY_AUDIO = Wav2Vec2Config(
    hidden_size=16,
    num_layers=2,
    num_heads=2,
    intermediate_size=32,
    conv_dims=(8,) * 7,
    pos_conv_kernel=8,
    pos_conv_groups=2,
)
SECTIONS = {"vocaset": "### FaceFormer vocaset", "biwi": "### FaceFormer BIWI"}
ELEMENTS = {"vocaset": 96455965, "biwi": 112768094}


def reference_shapes(dataset: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a section of checkpoint-keys.txt; BIWI's audio_encoder keys are vocaset's."""
    if not KEYS_FILE.is_file():
        pytest.skip(f"reference key list absent: {KEYS_FILE}")
    shapes: dict[str, dict[str, tuple[int, ...]]] = {name: {} for name in SECTIONS}
    current = None
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("### "):
            current = next((name for name, head in SECTIONS.items() if line.startswith(head)), None)
            continue
        match = re.fullmatch(r"(\S+) \(([\d, ]*)\) \w+", line.strip())
        if current and match:
            shapes[current][match[1]] = tuple(int(n) for n in match[2].replace(" ", "").split(",") if n)
    if dataset == "biwi":
        shapes["biwi"].update({k: v for k, v in shapes["vocaset"].items() if k.startswith("audio_encoder.")})
    assert len(shapes[dataset]) == 237
    return shapes[dataset]


def tiny_config(dataset: str = "vocaset") -> FaceFormerConfig:
    return FaceFormerConfig(
        dataset=dataset,
        vertice_dim=30,
        feature_dim=8,
        n_subjects=8 if dataset == "vocaset" else 6,
        pe_len=630 if dataset == "vocaset" else 625,
        ff_dim=16,
        audio=TINY_AUDIO,
    )


def tiny_model(dataset: str = "vocaset", seed: int = 0) -> FaceFormer:
    torch.manual_seed(seed)
    model = FaceFormer(tiny_config(dataset)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model


def save(model: FaceFormer, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


def load_tiny(path: Path, **kwargs: object) -> tuple[FaceFormer, FaceFormerConfig]:
    return load_faceformer(path, audio_heads=2, **kwargs)  # type: ignore[arg-type]


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=round(seconds * 16000)) * 0.1).astype(np.float32)


def memory_of(model: FaceFormer, seconds: float, seed: int = 0) -> torch.Tensor:
    with torch.inference_mode():
        return model.encode_audio(torch.from_numpy(normalize_audio(noise(seconds, seed)))[None])


# -- layout -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
def test_full_size_layout_equals_the_reference_list(dataset: str) -> None:
    expected = reference_shapes(dataset)
    shapes = expected_shapes(public_config(dataset))
    assert shapes == expected
    if dataset == "vocaset":  # the BIWI section lists its own keys first, then refers to vocaset's audio keys
        assert list(shapes) == list(expected), "same key order as the public state_dict"
    assert sum(math.prod(shape) for shape in shapes.values()) == ELEMENTS[dataset]


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
def test_config_is_derived_from_the_reference_shapes(dataset: str) -> None:
    """Shapes alone give every size; the dataset comes from the (regenerated) positional table."""
    config = public_config(dataset)
    fake = {k: torch.empty(shape, device="meta") for k, shape in reference_shapes(dataset).items()}
    fake["PPE.pe"] = periodic_table(config.period, config.feature_dim, config.pe_len)
    assert config_from_state_dict(fake) == config


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
def test_tiny_model_keeps_the_real_key_set(dataset: str) -> None:
    def pattern(key: str) -> str:
        return re.sub(r"^audio_encoder\.encoder\.layers\.\d+\.", "audio_encoder.encoder.layers.N.", key)

    tiny = tiny_model(dataset).state_dict()
    assert {pattern(k) for k in tiny} == {pattern(k) for k in reference_shapes(dataset)}
    assert "PPE.pe" in tiny and "audio_encoder.masked_spec_embed" in tiny
    assert not any("biased_mask" in k for k in tiny)


# -- loading ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
def test_tiny_checkpoint_loads_strictly_and_the_dataset_is_detected(dataset: str, tmp_path: Path) -> None:
    model = tiny_model(dataset, seed=1)
    path = save(model, tmp_path / "ff.pth")
    loaded, config = load_tiny(path)
    assert config == tiny_config(dataset) and config.dataset == dataset
    assert config.fps == (30 if dataset == "vocaset" else 25)
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    audio, template = noise(1.3), np.zeros((10, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict(audio, template, 2), model.predict(audio, template, 2))


def test_missing_file_raises_missing_weights_with_the_relative_name(tmp_path: Path) -> None:
    with pytest.raises(MissingWeights, match="checkpoints/biwi.pth") as caught:
        load_faceformer(tmp_path / "nope.pth", weights_name="checkpoints/biwi.pth")
    assert caught.value.names == ("checkpoints/biwi.pth",)


def test_unreadable_and_wrapped_files_raise_bad_input_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(BadInput, match="broken.pth"):
        load_tiny(broken)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": tiny_model().state_dict()}, wrapped)
    with pytest.raises(BadInput, match="wrapped.pth.*plain state_dict"):
        load_tiny(wrapped)


def test_layout_mismatches_are_listed_by_key(tmp_path: Path) -> None:
    state = tiny_model().state_dict()
    state["transformer_decoder.layers.0.linear2.weight"] = torch.zeros(8, 17)
    del state["audio_encoder.encoder.layer_norm.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(BadInput) as caught:
        load_tiny(path)
    message = str(caught.value)
    assert "odd.pth" in message and "3 problems" in message
    assert "missing audio_encoder.encoder.layer_norm.bias" in message
    assert "unexpected extra.weight" in message
    assert "linear2.weight has shape (8, 17), expected (8, 16)" in message
    assert layout_problems(tiny_model().state_dict(), tiny_config()) == []


def test_missing_sizing_key_is_bad_input(tmp_path: Path) -> None:
    state = tiny_model().state_dict()
    del state["obj_vector.weight"]
    path = tmp_path / "nosubjects.pth"
    torch.save(state, path)
    with pytest.raises(BadInput, match="nosubjects.pth.*obj_vector.weight"):
        load_tiny(path)


def test_new_weight_norm_names_load_and_give_identical_outputs(tmp_path: Path) -> None:
    model = tiny_model(seed=2)
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("conv.weight_g", "conv." + NEW_WEIGHT_G).replace("conv.weight_v", "conv." + NEW_WEIGHT_V)
        state[key] = value
    assert "audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original1" in state
    torch.save(state, tmp_path / "new.pth")
    old, _ = load_tiny(save(model, tmp_path / "old.pth"))
    new, _ = load_tiny(tmp_path / "new.pth")
    audio, template = noise(1.1, seed=3), np.zeros((10, 3), np.float32)
    np.testing.assert_array_equal(old.predict(audio, template, 0), new.predict(audio, template, 0))


def test_float64_load_agrees_with_float32(tmp_path: Path) -> None:
    path = save(tiny_model(seed=4), tmp_path / "ff.pth")
    single, _ = load_tiny(path)
    double, _ = load_tiny(path, dtype=torch.float64)
    assert next(double.parameters()).dtype == torch.float64
    audio, template = noise(0.9), np.zeros((10, 3), np.float32)
    np.testing.assert_allclose(single.predict(audio, template, 1), double.predict(audio, template, 1), atol=1e-4)


# -- positional table -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("period", "dim", "length"), [(30, 64, 630), (25, 128, 625), (30, 8, 700)])
def test_periodic_table_is_sin_cos_of_period_positions_tiled(period: int, dim: int, length: int) -> None:
    table = periodic_table(period, dim, length)[0].double()
    rows = torch.arange(length) % period
    frequencies = torch.tensor([10000.0 ** (-(2 * i) / dim) for i in range(dim // 2)], dtype=torch.float64)
    expected = torch.empty(length, dim, dtype=torch.float64)
    expected[:, 0::2] = torch.sin(rows[:, None] * frequencies)
    expected[:, 1::2] = torch.cos(rows[:, None] * frequencies)
    torch.testing.assert_close(table, expected, atol=1e-5, rtol=0)  # float32 arguments up to ~period radians


def test_regenerated_table_extends_the_saved_prefix_exactly() -> None:
    model = tiny_model()
    saved = model.PPE.pe
    assert saved.shape == (1, 630, 8)
    longer = model.PPE.table(1500)
    assert torch.equal(longer[:, :630], saved)
    assert torch.equal(longer[:, 630:660], saved[:, :30])
    torch.testing.assert_close(longer, periodic_table(30, 8, 1500), atol=1e-6, rtol=0)


def test_dataset_detection_from_the_table() -> None:
    assert detect_dataset(periodic_table(30, 64, 630)) == "vocaset"
    assert detect_dataset(periodic_table(25, 128, 625)) == "biwi"
    assert detect_dataset(periodic_table(30, 64, 6030)) == "vocaset"  # a longer max_seq_len still detected
    assert detect_dataset(periodic_table(30, 8, 20)) is None  # shorter than a period, unknown length
    assert detect_dataset(torch.randn(1, 630, 8)) == "vocaset"  # no repeat: the public length decides
    assert detect_dataset(periodic_table(20, 8, 400)) is None


def test_tampered_table_or_wrong_dataset_is_bad_input(tmp_path: Path) -> None:
    state = tiny_model().state_dict()
    state["PPE.pe"] = state["PPE.pe"].clone()
    state["PPE.pe"][0, 3, 1] += 0.01
    torch.save(state, tmp_path / "tampered.pth")
    with pytest.raises(BadInput, match="tampered.pth.*PPE.pe"):
        load_tiny(tmp_path / "tampered.pth")
    path = save(tiny_model(), tmp_path / "voca.pth")
    with pytest.raises(BadInput, match="voca.pth.*period 25"):
        load_tiny(path, dataset="biwi")
    state = tiny_model().state_dict()
    state["PPE.pe"] = periodic_table(20, 8, 420)
    torch.save(state, tmp_path / "period20.pth")
    with pytest.raises(BadInput, match="period20.pth.*pass dataset="):
        load_tiny(tmp_path / "period20.pth")


# -- masks --------------------------------------------------------------------------------------------------------


def public_style_biased_mask(n_head: int, length: int, period: int) -> torch.Tensor:
    """The public construction (bias vector flipped and sliced row by row), written out for comparison."""
    slopes = torch.tensor([2.0 ** (-2 * (h + 1)) for h in range(n_head)])  # 4 heads: 1/4, 1/16, 1/64, 1/256
    bias = torch.arange(0, length, period).unsqueeze(1).repeat(1, period).view(-1) // period
    bias = -torch.flip(bias, dims=[0])
    alibi = torch.zeros(length, length)
    for i in range(length):
        alibi[i, : i + 1] = bias[-(i + 1) :]
    alibi = slopes[:, None, None] * alibi[None]
    upper = torch.triu(torch.ones(length, length), diagonal=1) == 1
    return torch.zeros(length, length).masked_fill(upper, float("-inf"))[None] + alibi


def test_biased_mask_matches_the_public_construction_and_grows_seamlessly() -> None:
    assert alibi_slopes(4) == [1 / 4, 1 / 16, 1 / 64, 1 / 256]
    for period in (30, 25):
        mask = biased_mask(4, 600, period)
        assert torch.equal(mask, public_style_biased_mask(4, 600, period))
        assert torch.equal(biased_mask(4, 750, period)[:, :600, :600], mask)
    mask = biased_mask(4, 100, 30)
    assert mask[0, 40, 10].item() == -1 / 4 and mask[3, 99, 0].item() == -3 / 256
    assert mask[1, 5, 6].item() == float("-inf") and mask[2, 29, 0].item() == 0.0


def test_memory_masks_pair_frames_with_audio() -> None:
    voca = memory_mask("vocaset", 5, 5)
    assert torch.equal(~voca, torch.eye(5, dtype=torch.bool))
    biwi = memory_mask("biwi", 4, 8)
    for j in range(4):
        assert torch.nonzero(~biwi[j]).flatten().tolist() == [2 * j, 2 * j + 1]


@pytest.mark.parametrize(
    ("dataset", "audio_frame", "first_changed"), [("biwi", 11, 5), ("biwi", 10, 5), ("vocaset", 7, 7)]
)
def test_decoder_frames_only_see_their_own_audio_frames(dataset: str, audio_frame: int, first_changed: int) -> None:
    model = tiny_model(dataset, seed=5)
    memory = memory_of(model, 0.6)
    frames = decoder_frames(dataset, memory.shape[1])
    style = model.style(1)
    changed = memory.clone()
    changed[0, audio_frame] += 1.0
    with torch.inference_mode():
        base, moved = model.decode(memory, style, frames), model.decode(changed, style, frames)
    difference = (base - moved).abs().amax(dim=1)
    assert torch.all(difference[:first_changed] == 0)
    assert difference[first_changed] > 1e-4  # and later frames through the autoregression


# -- decoding -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
def test_cached_decoder_equals_the_public_re_decoding(dataset: str) -> None:
    model = tiny_model(dataset, seed=6)
    memory = memory_of(model, 1.7)
    frames = decoder_frames(dataset, memory.shape[1])
    assert frames >= 40
    with torch.inference_mode():
        cached = model.decode(memory, model.style(3), frames)
        reference = model.decode(memory, model.style(3), frames, cached=False)
    torch.testing.assert_close(cached, reference, atol=1e-5, rtol=1e-5)
    assert cached.abs().max() > 0.1


def test_more_than_600_frames_without_a_seam() -> None:
    """The decoder is causal: frame n of a long run equals frame n of any shorter run on the same audio frames."""
    model = tiny_model("vocaset", seed=7)
    audio = noise(24.5, seed=8)
    template = np.zeros((10, 3), np.float32)
    vertices = model.predict(audio, template, 4, fps=30)
    assert vertices.shape[0] > 700 and np.all(np.isfinite(vertices))
    memory = memory_of(model, 24.5, seed=8)
    with torch.inference_mode():
        long = model.decode(memory, model.style(4), memory.shape[1])
        for n in (1, 600, 601, 650):
            short = model.decode(memory[:, :n], model.style(4), n)
            torch.testing.assert_close(long[:n], short, atol=1e-6, rtol=1e-6)
    assert abs(vertices.shape[0] - 24.5 * 30) <= 0.5
    np.testing.assert_allclose(vertices[: memory.shape[1]], long.numpy().reshape(-1, 10, 3), atol=1e-5)


def test_zero_output_layer_returns_the_template_and_templates_add() -> None:
    model = tiny_model(seed=9)
    template = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    audio = noise(1.0)
    with torch.no_grad():
        model.vertice_map_r.weight.zero_()
        model.vertice_map_r.bias.zero_()
    out = model.predict(audio, template, 0, fps=30)
    assert np.array_equal(out, np.broadcast_to(template, out.shape))
    model = tiny_model(seed=9)
    moved = model.predict(audio, template.reshape(-1), 0) - model.predict(audio, np.zeros((10, 3)), 0)
    np.testing.assert_allclose(moved, np.broadcast_to(template, moved.shape), atol=1e-5)


# -- timing -------------------------------------------------------------------------------------------------------


def test_public_frame_counts() -> None:
    """5 s -> 149 frames and 19 s -> 569 at 30 fps (measured with the public code); BIWI 2 audio frames each."""
    audio = Wav2Vec2Config()
    for seconds, expected in ((5, 149), (19, 569)):
        t50 = audio.num_frames(seconds * 16000)
        resampled = resample_audio_features(torch.zeros(1, t50, 2), "vocaset")
        assert decoder_frames("vocaset", resampled.shape[1]) == expected
    t50 = audio.num_frames(5 * 16000)
    assert t50 == 249
    assert resample_audio_features(torch.zeros(1, t50, 2), "biwi").shape[1] == 248
    assert decoder_frames("biwi", 248) == 124


def test_vocaset_resampling_is_linear_with_aligned_corners() -> None:
    t50 = 101
    ramp = torch.arange(t50, dtype=torch.float32).view(1, t50, 1).repeat(1, 1, 3)
    out = resample_audio_features(ramp, "vocaset")
    frames = int(t50 / 50 * 30)
    assert out.shape == (1, frames, 3)
    expected = torch.arange(frames, dtype=torch.float32) * (t50 - 1) / (frames - 1)
    torch.testing.assert_close(out[0, :, 0], expected)
    torch.testing.assert_close(
        out, F.interpolate(ramp.transpose(1, 2), size=frames, mode="linear", align_corners=True).transpose(1, 2)
    )


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
@pytest.mark.parametrize("fps", [25, 30])
def test_output_length_follows_the_audio_duration(dataset: str, fps: int) -> None:
    model = tiny_model(dataset, seed=10)
    template = np.zeros((10, 3), np.float32)
    for seconds in (0.5, 1.37, 3.0):
        out = model.predict(noise(seconds), template, 0, fps=fps)
        assert out.shape[1:] == (10, 3) and out.dtype == np.float32
        assert abs(out.shape[0] - seconds * fps) <= 0.5, (seconds, out.shape)


def test_resample_frames_interpolates_linearly_in_time() -> None:
    frames = np.arange(30, dtype=np.float32)[:, None] * 2.0  # value = 2 * index at 30 fps
    same = resample_frames(frames, 30, 30)
    assert same is frames
    out = resample_frames(frames, 30, 25)
    assert out.shape == (25, 1)
    np.testing.assert_allclose(out[:, 0], np.arange(25) * 30 / 25 * 2.0, atol=1e-5)
    up = resample_frames(frames[:25], 25, 30)
    assert up.shape == (30, 1) and up[-1, 0] == frames[24, 0]  # the end is held, never extrapolated


# -- input checks -------------------------------------------------------------------------------------------------


def test_bad_inputs_are_reported() -> None:
    model = tiny_model()
    template = np.zeros((10, 3), np.float32)
    with pytest.raises(BadInput, match="at least 45 ms"):
        model.predict(noise(0.04), template, 0)
    model.predict(noise(0.045), template, 0)
    with pytest.raises(BadInput, match="mono"):
        model.predict(np.zeros((2, 16000), np.float32), template, 0)
    with pytest.raises(BadInput, match="NaN"):
        model.predict(np.full(16000, np.nan, np.float32), template, 0)
    with pytest.raises(BadInput, match="10 vertices"):
        model.predict(noise(1.0), np.zeros((11, 3)), 0)
    with pytest.raises(ValueError, match="subject index 8"):
        model.predict(noise(1.0), template, 8)


# -- full size ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_size_vocaset_checkpoint_loads_and_runs(tmp_path: Path) -> None:
    config = public_config("vocaset")
    torch.manual_seed(0)
    model = FaceFormer(config)
    with torch.no_grad():
        model.vertice_map_r.weight.normal_(0.0, 0.01)
    state = model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == reference_shapes("vocaset")
    path = tmp_path / "vocaset.pth"
    torch.save(state, path)
    del model, state
    loaded, loaded_config = load_faceformer(path)
    assert loaded_config == config
    template = np.zeros((5023, 3), np.float32)
    out = loaded.predict(noise(1.0), template, 2, fps=25)
    assert out.shape == (25, 5023, 3) and np.all(np.isfinite(out)) and np.abs(out).max() > 0
