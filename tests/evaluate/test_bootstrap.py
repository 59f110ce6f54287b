import numpy as np

from dlworkflow.evaluate.bootstrap import bootstrap_interval
from dlworkflow.evaluate.gate import judge
from dlworkflow.metrics import METRICS


def _predictions(n: int, accuracy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    pred = np.where(rng.random(n) < accuracy, y, (y + 1) % 4)
    proba = np.full((n, 4), 0.1)
    proba[np.arange(n), pred] = 0.7
    return y, proba


def test_interval_contains_the_estimate_and_narrows_with_more_samples():
    widths = []
    for n in (200, 5000):
        y, proba = _predictions(n, 0.9)
        value = METRICS.get("accuracy")(y, proba)
        lo, hi = bootstrap_interval(
            METRICS.get("accuracy"), y, proba, n_resamples=500, confidence=0.95, seed=1
        )
        assert lo < value < hi
        widths.append(hi - lo)
    # the standard error shrinks like 1/sqrt(n): 25x the samples, about 1/5 the width
    assert widths[1] < widths[0] / 3


def test_interval_matches_the_binomial_standard_error():
    y, proba = _predictions(2000, 0.8, seed=3)
    p = METRICS.get("accuracy")(y, proba)
    lo, hi = bootstrap_interval(
        METRICS.get("accuracy"), y, proba, n_resamples=2000, confidence=0.95, seed=2
    )
    expected_half_width = 1.96 * np.sqrt(p * (1 - p) / len(y))
    assert abs((hi - lo) / 2 - expected_half_width) < 0.2 * expected_half_width


def test_interval_is_deterministic_for_a_seed():
    y, proba = _predictions(300, 0.7)
    metric = METRICS.get("macro_f1")
    first = bootstrap_interval(metric, y, proba, n_resamples=200, confidence=0.9, seed=5)
    again = bootstrap_interval(metric, y, proba, n_resamples=200, confidence=0.9, seed=5)
    other = bootstrap_interval(metric, y, proba, n_resamples=200, confidence=0.9, seed=6)
    assert first == again
    assert first != other


def test_gate_passes_only_at_or_above_the_target():
    passed = judge(
        metric="accuracy", value=0.95, interval=(0.93, 0.97), confidence=0.95, target=0.95
    )
    failed = judge(
        metric="accuracy", value=0.9499, interval=(0.93, 0.97), confidence=0.95, target=0.95
    )
    assert passed.passed and passed.verdict == "PASS"
    assert not failed.passed and failed.verdict == "FAIL"
    assert "FAIL" in failed.sentence() and "0.95" in failed.sentence()
