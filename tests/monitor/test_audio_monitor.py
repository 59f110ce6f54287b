"""Step 9 for audio-classification: what the monitor observes of each clip (duration,
loudness and silence share of the original clip, spectral centroid of the waveform the
network takes), and the drift checks on the real sonic-pi clips: another half of the clips
raises no alert, clips 20 dB quieter alert on loudness, truncated clips on duration."""

from __future__ import annotations

import io

import numpy as np
import pytest

from dlworkflow.config import Monitor
from dlworkflow.monitor.drift import feature_label, run_checks
from dlworkflow.monitor.logread import to_sample
from dlworkflow.runtime.bundle import InputError
from dlworkflow.runtime.observe import clip_summaries, measured_clips
from dlworkflow.store.clips import ClipSettings, decode_clip

sf = pytest.importorskip("soundfile")
SETTINGS = ClipSettings(sample_rate=16_000, duration=2.0)


@pytest.fixture(scope="module")
def halves() -> tuple[list[str], list[str]]:
    from dlworkflow.datasets.sonic_pi import sonic_pi_clips

    clips = sonic_pi_clips()
    order = np.random.default_rng(0).permutation(len(clips))
    paths = [str(clips[i][0]) for i in order]
    return paths[:75], paths[75:]


@pytest.fixture(scope="module")
def reference(halves):
    return to_sample(_records(_summaries(halves[0])))


def _summaries(values: list) -> list[dict]:
    x, originals = measured_clips(values, SETTINGS)
    return clip_summaries(
        x, SETTINGS.sample_rate, originals=originals, silence_dbfs=SETTINGS.silence_dbfs
    )


def _records(summaries: list[dict]) -> list[dict]:
    return [
        {
            "ts": f"2026-11-27T10:00:{i % 60:02d}+00:00",
            "id": f"c{i}",
            "model_version": 1,
            "input": summary,
            "label": "drum" if i % 2 else "ambi",
            "confidence": 0.8,
        }
        for i, summary in enumerate(summaries)
    ]


def _wav(path: str, *, gain_db: float = 0.0, keep: float = 1.0) -> bytes:
    data, rate = sf.read(path, dtype="float32")
    data = data[: max(1, int(len(data) * keep))] * np.float32(10 ** (gain_db / 20))
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _alerts(reference, values: list) -> list[str]:
    drift = run_checks(reference, to_sample(_records(_summaries(values))), config=Monitor(), seed=0)
    return [c.name for c in drift.alerts if c.group == "input"]


def test_clip_summaries_measure_the_original_clip_and_the_network_waveform(halves):
    path = next(p for p in halves[0] if sf.info(p).duration < SETTINGS.duration / 2)
    info = sf.info(path)  # shorter than the network's 2 s: the fixed policy zero-pads it
    (summary,) = _summaries([path])
    assert summary["kind"] == "audio"
    assert summary["duration_s"] == pytest.approx(info.frames / info.samplerate, abs=1e-4)
    assert summary["centroid_hz"] > 0
    # without the original, the decoded waveform stands in (its zero padding left out)
    wave = decode_clip(path, SETTINGS)
    (alone,) = clip_summaries(wave[None, :], SETTINGS.sample_rate)
    assert alone["duration_s"] == pytest.approx(summary["duration_s"], abs=2e-3)
    assert alone["rms_dbfs"] == pytest.approx(summary["rms_dbfs"], abs=1.0)
    assert alone["centroid_hz"] == summary["centroid_hz"]


def test_twenty_db_quieter_is_twenty_db_lower_in_the_log(halves):
    path = halves[0][1]
    (loud,) = _summaries([path])
    (quiet,) = _summaries([_wav(path, gain_db=-20.0)])
    assert quiet["rms_dbfs"] - loud["rms_dbfs"] == pytest.approx(-20.0, abs=0.05)
    assert quiet["duration_s"] == pytest.approx(loud["duration_s"], abs=1e-4)
    assert quiet["centroid_hz"] == pytest.approx(loud["centroid_hz"], rel=1e-3)


def test_other_clips_do_not_alert_quiet_and_truncated_clips_do(halves, reference):
    live = halves[1]
    assert _alerts(reference, live) == []
    quiet = _alerts(reference, [_wav(p, gain_db=-20.0) for p in live])
    assert "loudness" in quiet
    assert "clip duration" not in quiet and "spectral centroid" not in quiet
    truncated = _alerts(reference, [_wav(p, keep=0.3) for p in live])
    assert "clip duration" in truncated


def test_a_clip_that_cannot_be_decoded_is_named_by_its_index(halves):
    with pytest.raises(InputError) as caught:
        measured_clips([halves[0][0], b"RIFF not really a wave file"], SETTINGS)
    assert caught.value.context["index"] == 1
    assert caught.value.context["reason"]


def test_audio_feature_words():
    assert "dBFS" in feature_label("rms_dbfs")
    assert "Hz" in feature_label("centroid_hz")
    assert feature_label("duration_s") == "clip duration (seconds)"
