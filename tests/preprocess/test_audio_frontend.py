"""The log-mel front end (dlworkflow.preprocess.audio): parity with the numpy reference, the mel
filter bank, and the ONNX export with a dynamic number of samples.

The parity clip is a REAL recording (a Sonic Pi sample, /usr/share/sonic-pi/samples, read with
soundfile) when both are installed; otherwise it is SYNTHETIC: a 100 Hz -> 7 kHz linear chirp,
two steady tones and faint seeded Gaussian noise (a noise floor, as a recording has).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from dlworkflow.errors import ConfigError
from dlworkflow.preprocess.audio import (
    ClipTooShortError,
    LogMel,
    hz_to_mel,
    log_mel_numpy,
    mel_band_edges,
    mel_filter_bank,
    mel_to_hz,
)

SAMPLES = Path("/usr/share/sonic-pi/samples")
CLIPS = ("ambi_choir.flac", "loop_amen.flac", "guit_harmonics.flac")


def _synthetic(sample_rate: int = 16000, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    chirp = 0.4 * np.sin(2 * np.pi * (100.0 * t + (7000.0 - 100.0) / (2 * seconds) * t**2))
    tones = 0.2 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 2500.0 * t)
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (chirp + tones + noise).astype(np.float32)


def _clip() -> tuple[np.ndarray, int, str]:
    """(mono float32 waveform, its sample rate, where it came from)."""
    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None and SAMPLES.is_dir():
        for name in CLIPS:
            path = SAMPLES / name
            if path.is_file():
                data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
                mono = data.mean(axis=1)[: 2 * rate]  # the first two seconds
                return np.ascontiguousarray(mono), int(rate), f"recording {name}"
    return _synthetic(), 16000, "synthetic chirp + tones"


def _run(module: LogMel, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(np.atleast_2d(x).astype(np.float32))).numpy()


def test_log_mel_matches_numpy_reference_on_a_clip() -> None:
    wave, rate, source = _clip()
    assert np.abs(wave).max() > 0.05, source  # a clip with sound in it
    front = LogMel(sample_rate=rate, hop_length=rate // 50)
    got = _run(front, wave)
    ref = log_mel_numpy(wave, sample_rate=rate, hop_length=rate // 50)
    frames = 1 + wave.size // (rate // 50)
    assert got.shape == (1, 1, 64, frames) == (1, *ref.shape)
    assert front.frames(wave.size) == frames
    assert ref.max() - ref.min() > 40.0, source  # a real dynamic range, not a flat floor
    assert np.abs(got[0] - ref).max() < 1e-3, source  # dB


@pytest.mark.parametrize(
    "options",
    [
        {"pad_mode": "constant", "mel_scale": "htk", "norm": None, "win_length": 800},
        {"power": 1.0, "n_mels": 40, "f_min": 50.0, "f_max": 7600.0, "top_db": 60.0},
        {"center": False, "n_fft": 512, "hop_length": 160},
    ],
)
def test_options_match_numpy_reference(options: dict[str, object]) -> None:
    wave = np.stack([_synthetic(seconds=1.0), 0.3 * _synthetic(seconds=1.0)[::-1]])
    got = _run(LogMel(**options), wave)  # type: ignore[arg-type]
    ref = log_mel_numpy(wave, **options)  # type: ignore[arg-type]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-3


def test_pure_tone_peaks_in_its_mel_band_and_gain_shifts_every_value() -> None:
    rate, front = 16000, LogMel()
    t = np.arange(rate) / rate
    edges = mel_band_edges(n_mels=64, f_min=0.0, f_max=8000.0)
    for freq in (300.0, 1000.0, 3150.0, 6000.0):
        spec = _run(front, 0.5 * np.sin(2 * np.pi * freq * t))[0, 0]
        band = int(spec.mean(axis=1).argmax())
        assert edges[band] < freq < edges[band + 2]  # the band's filter covers the tone
        assert abs(edges[band + 1] - freq) <= np.diff(edges)[band : band + 2].max()
        # Other bands, one octave or more away, are at least 40 dB down.
        far = (edges[1:-1] < freq / 2) | (edges[1:-1] > freq * 2)
        assert spec.mean(axis=1)[far].max() < spec.mean(axis=1)[band] - 40.0
    # Half the amplitude is 20 log10(2) = 6.02 dB less in every bin (the floor is per clip).
    wave = _synthetic(seconds=1.0)
    loud, quiet = _run(front, wave), _run(front, 0.5 * wave)
    np.testing.assert_allclose(loud - quiet, 20 * np.log10(2.0), atol=1e-3)


def test_top_db_floors_each_clip_at_its_own_maximum() -> None:
    wave = _synthetic(seconds=1.0)
    wave[4000:12000] = 0.0  # silence: -100 dB without the floor
    spec = _run(LogMel(top_db=50.0), np.stack([wave, 0.01 * wave]))
    for clip in spec:
        assert clip.max() - clip.min() == pytest.approx(50.0, abs=1e-4)
    assert spec[0].max() - spec[1].max() == pytest.approx(40.0, abs=1e-3)
    silent = _run(LogMel(top_db=None), wave)
    assert silent.min() == pytest.approx(-100.0)


def test_mel_scales_and_band_edges() -> None:
    assert hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
    assert hz_to_mel(700.0, "htk") == pytest.approx(2595.0 * np.log10(2.0))
    freqs = np.array([0.0, 50.0, 999.0, 1000.0, 1001.0, 4000.0, 22050.0])
    for scale in ("slaney", "htk"):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(freqs, scale), scale), freqs, atol=1e-6)
        edges = mel_band_edges(n_mels=64, f_min=20.0, f_max=8000.0, scale=scale)
        assert edges.shape == (66,)
        assert edges[0] == pytest.approx(20.0) and edges[-1] == pytest.approx(8000.0)
        assert np.all(np.diff(edges) > 0)  # monotone centres
        # Equal steps in mels: wider bands in Hz as the frequency rises (above 1 kHz).
        widths = np.diff(edges)[edges[:-1] > 1000.0]
        assert np.all(np.diff(widths) > 0)


def test_filter_bank_triangles_partition_and_areas() -> None:
    rate, n_fft = 16000, 1024
    bins = np.arange(n_fft // 2 + 1) * rate / n_fft
    for scale in ("slaney", "htk"):
        edges = mel_band_edges(n_mels=64, f_min=0.0, f_max=8000.0, scale=scale)
        peaks = mel_filter_bank(
            sample_rate=rate,
            n_fft=n_fft,
            n_mels=64,
            scale=scale,
            norm=None,
        )
        assert peaks.shape == (64, 513)
        assert peaks.min() >= 0.0 and peaks.max() <= 1.0 + 1e-12
        for i, row in enumerate(peaks):
            support = bins[row > 0]
            assert edges[i] < support.min() and support.max() < edges[i + 2]
            top = bins[int(row.argmax())]
            assert abs(top - edges[i + 1]) <= rate / n_fft  # peaks at its centre bin
        # Neighbouring triangles cross-fade: between the first and last centres they sum to 1.
        inner = (bins >= edges[1]) & (bins <= edges[-2])
        np.testing.assert_allclose(peaks[:, inner].sum(axis=0), 1.0, atol=1e-9)
        areas = mel_filter_bank(sample_rate=rate, n_fft=n_fft, n_mels=64, scale=scale)
        wide = (edges[2:] - edges[:-2]) > 20 * rate / n_fft  # triangles 20+ bins wide
        assert wide.sum() > 10
        np.testing.assert_allclose(areas[wide].sum(axis=1) * rate / n_fft, 1.0, atol=0.01)
    with pytest.raises(ConfigError, match="cover no FFT bin"):
        mel_filter_bank(sample_rate=16000, n_fft=256, n_mels=128)
    with pytest.raises(ConfigError, match="out of range"):
        mel_filter_bank(sample_rate=16000, n_fft=1024, n_mels=64, f_max=9000.0)


def test_onnx_export_takes_any_number_of_samples(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from dlworkflow.models.onnx_export import OPSET

    front = LogMel().eval()
    path = tmp_path / "logmel.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            front,
            (torch.zeros(2, 16000),),
            str(path),
            input_names=["waveform"],
            output_names=["logmel"],
            dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "logmel": {0: "batch", 3: "t"}},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"Pad", "Conv", "MatMul", "ReduceMax"} <= ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for batch, samples in ((3, 12345), (1, 48000), (2, 16000)):
        wave = rng.uniform(-0.8, 0.8, (batch, samples)).astype(np.float32)
        wave[0] = _synthetic(seconds=samples / 16000)[:samples]
        got = session.run(["logmel"], {"waveform": wave})[0]
        ref = _run(front, wave)
        assert got.shape == ref.shape == (batch, 1, 64, 1 + samples // 320)
        span = float(ref.max() - ref.min())
        assert np.abs(got - ref).max() / span < 1e-4


def test_fft_and_conv_spectrograms_agree() -> None:
    front = LogMel(win_length=900, pad_mode="constant")
    wave = torch.from_numpy(np.stack([_synthetic(seconds=0.7), 0.1 * _synthetic(seconds=0.7)]))
    with torch.no_grad():
        fft = front.power_spectrogram(wave, method="fft")
        conv = front.power_spectrogram(wave, method="conv")
        auto = front.power_spectrogram(wave)
    assert fft.shape == conv.shape == (2, 513, 1 + wave.shape[1] // 320)
    assert torch.equal(auto, fft)  # eager runs the FFT
    for f, c in zip(fft, conv):
        assert (f - c).abs().max() < 1e-5 * f.max()
    with pytest.raises(ValueError, match="method"):
        front.power_spectrogram(wave, method="dft")  # type: ignore[arg-type]


def test_front_end_is_a_parameter_free_differentiable_layer() -> None:
    front = LogMel(n_mels=40, hop_length=160)
    assert list(front.parameters()) == [] and front.state_dict() == {}  # nothing to checkpoint
    assert LogMel(**front.config()).config() == front.config()  # type: ignore[arg-type]
    wave = torch.from_numpy(_synthetic(seconds=0.5)[None]).requires_grad_(True)
    front(wave).mean().backward()
    assert wave.grad is not None and torch.isfinite(wave.grad).all() and wave.grad.abs().max() > 0
    assert front.min_samples == 513
    assert front(torch.zeros(2, 513)).shape == (2, 1, 40, 4)  # silence: -100 dB, no NaN
    with pytest.raises(ClipTooShortError, match="at least 513 samples"):
        front(torch.zeros(2, 512))
    assert LogMel(pad_mode="constant")(torch.zeros(1, 10)).shape == (1, 1, 64, 1)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="win_length"):
        LogMel(win_length=2048)
    with pytest.raises(ConfigError, match="power"):
        LogMel(power=3.0)
    with pytest.raises(ConfigError, match="pad_mode"):
        LogMel(pad_mode="circular")  # type: ignore[arg-type]
