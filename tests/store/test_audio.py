"""store.audio: real sonic-pi FLACs decode as soundfile reads them; bad clips get a reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlworkflow.datasets import sonic_pi
from dlworkflow.errors import DataError
from dlworkflow.store.audio import (
    AudioDecodeError,
    AudioLimits,
    DurationPolicy,
    audio_problem,
    decode_audio,
    probe_audio,
    spectral_centroid,
)
from system_deps import missing_system_package

LIMITS = {"max_bytes": 20_000_000, "max_seconds": 30.0}


@pytest.fixture(scope="module")
def clips() -> dict[str, Path]:
    try:
        return {path.name: path for path, _ in sonic_pi.all_clips()}
    except DataError:
        missing_system_package(sonic_pi.PACKAGE)


def tone(freq: float, seconds: float, rate: int, *, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)).astype(
        np.float32
    )


def written(path: Path, samples: np.ndarray, rate: int, fmt: str) -> Path:
    sf.write(path, samples, rate, format=fmt)
    return path


def reason_for(source: Path | bytes, **limits: float) -> str:
    with pytest.raises(AudioDecodeError) as caught:
        decode_audio(source, sample_rate=16_000, **{**LIMITS, **limits})
    return caught.value.reason


def test_real_flacs_decode_as_soundfile_reads_them(clips):
    for name in ("ambi_choir.flac", "tabla_ke1.flac", "loop_amen.flac", "elec_tick.flac"):
        info = sf.info(str(clips[name]))
        decoded = decode_audio(clips[name], sample_rate=info.samplerate, mono=False, **LIMITS)
        reference, _ = sf.read(str(clips[name]), dtype="float32", always_2d=True)
        assert decoded.samples.shape == (info.channels, info.frames)
        np.testing.assert_array_equal(decoded.samples, reference.T)
        stats = decoded.stats
        assert (stats.format, stats.sample_rate, stats.channels) == ("FLAC", 44_100, info.channels)
        assert stats.duration_s == pytest.approx(info.duration, abs=1e-9)
        assert stats.peak == pytest.approx(float(np.abs(reference).max()))


def test_mono_mixdown_of_a_stereo_clip_is_the_channel_mean(clips):
    path = clips["loop_amen.flac"]
    assert sf.info(str(path)).channels == 2
    stereo, _ = sf.read(str(path), dtype="float32", always_2d=True)
    mono = decode_audio(path, sample_rate=44_100, **LIMITS).samples
    assert mono.ndim == 1 and mono.dtype == np.float32
    np.testing.assert_allclose(mono, stereo.mean(axis=1), atol=1e-7)
    assert not np.allclose(stereo[:, 0], stereo[:, 1])  # the channels differ: a real mix


def test_resampling_keeps_the_tone_and_the_length(tmp_path, clips):
    source = written(tmp_path / "tone.flac", tone(1_000, 1.0, 44_100), 44_100, "FLAC")
    decoded = decode_audio(source, sample_rate=16_000, **LIMITS)
    assert abs(decoded.samples.size - 16_000) <= 1
    spectrum = np.abs(np.fft.rfft(decoded.samples))
    freqs = np.fft.rfftfreq(decoded.samples.size, 1 / 16_000)
    assert freqs[spectrum.argmax()] == pytest.approx(1_000, abs=1.0)
    assert spectrum.max() > 100 * np.median(spectrum)
    info = sf.info(str(clips["bd_808.flac"]))
    real = decode_audio(clips["bd_808.flac"], sample_rate=16_000, **LIMITS).samples
    assert abs(real.size - info.frames * 16_000 / 44_100) <= 1


def test_every_sonic_pi_clip_decodes_and_only_two_kicks_clip(clips):
    problems = {}
    for name, path in clips.items():
        decoded = decode_audio(path, sample_rate=16_000, **LIMITS)
        assert decoded.samples.size >= 16_000 * decoded.stats.duration_s - 1
        problem = audio_problem(decoded.stats, AudioLimits(**LIMITS))
        if problem:
            problems[name] = problem
    assert set(problems) == {"drum_bass_hard.flac", "drum_heavy_kick.flac"}
    assert all(p.startswith("clipping: ") for p in problems.values())


def test_wav_and_ogg_decode_too(tmp_path):
    signal = tone(440, 0.5, 22_050)
    for fmt in ("WAV", "OGG"):
        source = written(tmp_path / f"a.{fmt.lower()}", signal, 22_050, fmt)
        decoded = decode_audio(source.read_bytes(), sample_rate=22_050, **LIMITS)
        assert decoded.stats.format == fmt and decoded.samples.size == signal.size
        assert audio_problem(decoded.stats, AudioLimits()) is None
        assert decoded.stats.rms_dbfs == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)


def test_a_truncated_clip_is_refused(tmp_path):
    signal = tone(440, 2.0, 16_000)
    for fmt in ("WAV", "FLAC", "OGG"):
        data = written(tmp_path / f"whole.{fmt.lower()}", signal, 16_000, fmt).read_bytes()
        path = tmp_path / f"cut.{fmt.lower()}"
        path.write_bytes(data[: len(data) // 2])
        reason = reason_for(path)
        assert reason.startswith(("truncated: ", "unreadable: ")), (fmt, reason)
        if fmt == "WAV":
            assert "data chunk declares 64,000 bytes" in reason


def test_content_decides_the_format_not_the_name(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is a text file, not audio\n" * 4)
    assert reason_for(text).startswith("not a WAV, FLAC or OGG file: the content is not")
    signal = tone(440, 0.3, 16_000)
    for fmt in ("AIFF", "MP3"):
        disguised = tmp_path / f"{fmt}.flac"
        disguised.write_bytes(
            written(tmp_path / f"x.{fmt.lower()}", signal, 16_000, fmt).read_bytes()
        )
        assert reason_for(disguised) == f"{fmt} files are not accepted (allowed: WAV, FLAC or OGG)"
    flac_named_wav = written(tmp_path / "real.wav", signal, 16_000, "FLAC")
    assert decode_audio(flac_named_wav, sample_rate=16_000, **LIMITS).stats.format == "FLAC"
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 20]) + bytes(20)  # an ID3v2 tag, 20 bytes
    tagged_flac = tag + flac_named_wav.read_bytes()
    assert decode_audio(tagged_flac, sample_rate=16_000, **LIMITS).stats.format == "FLAC"
    tagged_mp3 = tag + (tmp_path / "x.mp3").read_bytes()
    assert reason_for(tagged_mp3) == "MP3 files are not accepted (allowed: WAV, FLAC or OGG)"


def test_a_silent_clip_gets_its_reason(tmp_path):
    silent = written(tmp_path / "silent.wav", np.zeros(8_000, np.float32), 16_000, "WAV")
    stats = probe_audio(silent, AudioLimits())
    assert stats.rms_dbfs == -120.0 and stats.silence_share == 1.0
    assert audio_problem(stats, AudioLimits()).startswith("silent clip: RMS -120.0 dBFS")
    half = np.concatenate([tone(440, 0.5, 16_000), np.zeros(8_000, np.float32)])
    stats = probe_audio(written(tmp_path / "half.wav", half, 16_000, "WAV"), AudioLimits())
    assert stats.silence_share == pytest.approx(0.5, abs=0.03)
    assert audio_problem(stats, AudioLimits()) is None


def test_a_clipped_clip_gets_its_reason(tmp_path):
    clipped = np.clip(tone(440, 1.0, 16_000, amplitude=1.5), -1.0, 1.0)
    stats = probe_audio(written(tmp_path / "loud.wav", clipped, 16_000, "WAV"), AudioLimits())
    assert stats.peak == pytest.approx(1.0, abs=1e-4) and 0.4 < stats.clipping_share < 0.6
    assert audio_problem(stats, AudioLimits()).startswith("clipping: ")
    assert audio_problem(stats, AudioLimits(max_clipping_share=0.7)) is None


def _declare_total_samples(flac: bytes, total: int) -> bytes:
    """A FLAC whose STREAMINFO declares `total` samples (36 bits at byte 18 onwards)."""
    packed = int.from_bytes(flac[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | total
    return flac[:18] + packed.to_bytes(8, "big") + flac[26:]


def test_too_long_is_refused_from_the_header_alone(tmp_path, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("samples were read")

    monkeypatch.setattr(sf.SoundFile, "read", no_reading)
    small = written(tmp_path / "s.flac", tone(440, 0.5, 44_100), 44_100, "FLAC").read_bytes()
    hour = _declare_total_samples(small, 3_600 * 44_100)
    assert sf.info(io.BytesIO(hour)).frames == 3_600 * 44_100  # the lie is in the header
    assert reason_for(hour) == "too long: 3,600.0 s > limit 30 s (max_seconds)"
    long_wav = written(tmp_path / "long.wav", np.zeros(8_000 * 31, np.int16), 8_000, "WAV")
    stats = probe_audio(long_wav, AudioLimits(max_seconds=30))
    assert stats.duration_s == 31.0 and stats.error is not None
    assert audio_problem(stats, AudioLimits(max_seconds=30)).startswith("too long: 31.0 s")


def test_the_byte_limit_comes_before_opening(tmp_path, monkeypatch):
    path = written(tmp_path / "a.wav", tone(440, 1.0, 16_000), 16_000, "WAV")
    monkeypatch.setattr(sf, "SoundFile", None)  # opening would fail with a TypeError
    assert reason_for(path, max_bytes=1_000).startswith("too large: 32,044 bytes > limit 1,000")
    assert reason_for(b"", max_bytes=1_000) == "empty file (0 bytes)"
    assert reason_for(tmp_path / "missing.wav").startswith("unreadable: ")


def test_duration_policies(tmp_path):
    ramp = np.linspace(-0.5, 0.5, 16_000 * 2, dtype=np.float32)
    path = written(tmp_path / "ramp.wav", ramp, 16_000, "FLAC")

    def decode(policy):
        return decode_audio(path, sample_rate=16_000, duration_policy=policy, **LIMITS).samples

    centre = decode(DurationPolicy("fixed", 1.0))
    assert centre.size == 16_000 and centre[0] == pytest.approx(ramp[8_000], abs=1e-4)
    start = decode(DurationPolicy("fixed", 1.0, crop="start"))
    assert start[0] == pytest.approx(ramp[0], abs=1e-4)
    padded = decode(DurationPolicy("fixed", 3.0))
    assert padded.size == 48_000 and not padded[32_000:].any() and padded[31_999] != 0
    assert decode(DurationPolicy("max", 3.0)).size == 32_000  # max never pads
    assert decode(DurationPolicy("max", 0.5)).size == 8_000


def test_spectral_centroid_follows_the_pitch():
    low = spectral_centroid(tone(500, 1.0, 16_000), 16_000)
    high = spectral_centroid(tone(4_000, 1.0, 16_000), 16_000)
    assert low == pytest.approx(500, rel=0.05) and high == pytest.approx(4_000, rel=0.05)
    assert spectral_centroid(np.zeros(4_000, np.float32), 16_000) == 0.0


def test_damaged_headers_never_crash(tmp_path):
    """300 clips with bytes of their header overwritten at random: each decodes or gets a
    reason; nothing else is raised."""
    rng = np.random.default_rng(0)
    signal = np.stack([tone(440, 0.5, 16_000), tone(660, 0.5, 16_000)], axis=1)
    bases = [
        written(tmp_path / f"b.{fmt.lower()}", signal, 16_000, fmt).read_bytes()
        for fmt in ("WAV", "FLAC", "OGG")
    ]
    outcomes = {"decoded": 0, "refused": 0}
    for i in range(300):
        data = np.frombuffer(bases[i % 3], dtype=np.uint8).copy()
        spots = rng.integers(0, 200, size=rng.integers(1, 9))
        data[spots] = rng.integers(0, 256, size=spots.size)
        try:
            decode_audio(data.tobytes(), sample_rate=16_000, **LIMITS)
            outcomes["decoded"] += 1
        except AudioDecodeError as exc:
            assert exc.reason and "0x" not in exc.reason
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100 and outcomes["decoded"] > 10
