"""Step 9 for sequence-classification: what the monitor observes of each series (length and
per-channel level and spread over the real steps of a NaN-padded batch), and the drift checks
on real UCR data (GunPoint, BasicMotions, JapaneseVowels): the held-out split raises no alert,
a scaled or truncated batch alerts on the feature that moved."""

from __future__ import annotations

import numpy as np
import pytest

from dlworkflow.config import Monitor
from dlworkflow.monitor.drift import feature_label, run_checks, short_name
from dlworkflow.monitor.logread import to_sample
from dlworkflow.runtime.observe import SERIES_CHANNELS, series_summaries
from dlworkflow.store.series import nan_padded


def _ucr(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from dlworkflow.datasets.ucr import load_ucr

    train, test = load_ucr(name)
    return list(train.series), list(test.series)


def _records(batch: np.ndarray) -> list[dict]:
    """Prediction records whose predictions are alike on both sides: only inputs differ."""
    return [
        {
            "ts": f"2026-11-27T10:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
            "id": f"s{i}",
            "model_version": 1,
            "input": summary,
            "label": "a" if i % 2 else "b",
            "confidence": 0.9,
            "probs": [0.9, 0.1] if i % 2 else [0.1, 0.9],
        }
        for i, summary in enumerate(series_summaries(batch))
    ]


def _alerts(reference: list[np.ndarray], live: list[np.ndarray]) -> list[str]:
    drift = run_checks(
        to_sample(_records(nan_padded(reference))),
        to_sample(_records(nan_padded(live))),
        config=Monitor(),
        seed=0,
    )
    assert all(c.group != "embedding" for c in drift.checks)  # these records carry none
    return [c.name for c in drift.alerts if c.group == "input"]


def test_series_summaries_measure_only_the_real_steps_of_variable_length_series():
    train, _ = _ucr("JapaneseVowels")
    series = train[:40]
    assert len({s.shape[1] for s in series}) > 1  # variable length: NaN-padded below
    summaries = series_summaries(nan_padded(series))
    for s, summary in zip(series, summaries):
        assert summary["kind"] == "series"
        assert summary["length"] == s.shape[1]
        assert summary["channels"] == s.shape[0] == 12
        np.testing.assert_allclose(summary["channel_means"], s.mean(axis=1), atol=1e-4)
        np.testing.assert_allclose(summary["channel_stds"], s.std(axis=1), atol=1e-4)
    sample = to_sample(_records(nan_padded(series)))
    assert sample.kind == "series"
    assert set(sample.features) == {"length"} | {
        f"series_{stat}_{c}" for stat in ("mean", "std") for c in range(12)
    }
    np.testing.assert_array_equal(sample.features["length"], [s.shape[1] for s in series])


def test_many_channels_are_pooled_into_one_level_and_one_spread():
    rng = np.random.default_rng(0)
    wide = [
        rng.normal(2.0, 3.0, (SERIES_CHANNELS + 4, 50 + i)).astype(np.float32) for i in range(5)
    ]
    summaries = series_summaries(nan_padded(wide))
    for s, summary in zip(wide, summaries):
        assert "channel_means" not in summary
        assert summary["mean"] == pytest.approx(float(s.mean()), abs=1e-4)
        assert summary["std"] == pytest.approx(float(s.std()), abs=1e-4)
    assert set(to_sample(_records(nan_padded(wide))).features) == {
        "length",
        "series_mean",
        "series_std",
    }


def test_empty_series_is_logged_with_null_statistics_not_a_crash():
    batch = np.full((1, 2, 5), np.nan, dtype=np.float32)
    (summary,) = series_summaries(batch)
    assert summary["length"] == 0
    assert summary["channel_means"] == [None, None]


def test_gunpoint_test_split_does_not_alert_and_scaled_series_alert_on_spread():
    train, test = _ucr("GunPoint")
    assert _alerts(train, test) == []
    scaled = _alerts(train, [3.0 * s for s in test])
    assert "channel 0 std" in scaled  # x3 spreads the z-normalised series
    assert "series length" not in scaled
    truncated = _alerts(train, [s[:, : s.shape[1] // 2] for s in test])
    assert "series length" in truncated


def test_basic_motions_scaling_moves_the_channel_spreads_not_the_length():
    train, test = _ucr("BasicMotions")
    assert _alerts(train, test) == []
    scaled = _alerts(train, [3.0 * s for s in test])
    stds = [name for name in scaled if name.endswith(" std")]
    assert len(stds) >= 4  # six accelerometer and gyroscope channels, most of them move
    assert "series length" not in scaled


def test_feature_words_for_a_decision_maker():
    assert short_name("series_std_2") == "channel 2 std"
    assert "spread" in feature_label("series_std_2")
    assert "raw values" in feature_label("series_mean_0")
    assert feature_label("length") == "series length (time steps)"
