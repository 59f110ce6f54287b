"""Every bootstrap interval the evaluation reports contains its own point estimate (issue 13),
on real predictions: logistic regressions on scikit-learn's digits and breast cancer data.

The plain percentile interval of a statistic biased upward, such as ECE, can lie wholly above
the estimate (a test run printed `ECE 0.0031 (95% CI 0.0050 to 0.0156)`); the intervals are now
bias-corrected and, where the correction breaks down, widened (dlworkflow.evaluate.bootstrap).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from dlworkflow.evaluate.bootstrap import (
    bc_interval,
    bootstrap_interval,
    metric_interval,
    paired_difference,
    percentile_interval,
)
from dlworkflow.evaluate.calibration import ece, softmax
from dlworkflow.evaluate.report import SCALARS, metric_report
from dlworkflow.evaluate.scores import resample_counts, scalar_metrics
from dlworkflow.metrics import METRICS

N_RESAMPLES, CONFIDENCE, SEED = 1000, 0.95, 0


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(x, y)


@cache
def digits(c: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of 1,197 held-out digits (10 classes)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return y[600:], _fit(x[:600], y[:600], c).predict_proba(x[600:])


@cache
def calibrated_digits() -> tuple[np.ndarray, np.ndarray]:
    """digits(0.3) with the temperature that minimises its ECE: a well-calibrated model."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    logits = _fit(x[:600], y[:600], 0.3).predict_log_proba(x[600:])
    grid = np.exp(np.linspace(np.log(0.5), np.log(1.5), 201))
    best = grid[np.argmin([ece(y[600:], softmax(logits, t)) for t in grid])]
    return y[600:], softmax(logits, float(best))


@cache
def cancer() -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of 369 held-out breast-cancer cases; its ECE is about 0.012."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return y[200:], _fit(x[:200], y[:200], 1.0).predict_proba(x[200:])


def report(y: np.ndarray, proba: np.ndarray, seed: int = SEED) -> dict:
    return metric_report(
        y,
        proba,
        [str(c) for c in range(proba.shape[1])],
        n_resamples=N_RESAMPLES,
        confidence=CONFIDENCE,
        seed=seed,
    )


def replicates(metric: str, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """The metric on the report's resamples (the same seed and draws)."""
    return np.concatenate(
        [
            scalar_metrics(y, proba, w, only=metric)[metric]
            for w in resample_counts(len(y), n_resamples=N_RESAMPLES, seed=SEED)
        ]
    )


CASES = {
    "weak digits": lambda: digits(1e-3),
    "digits": lambda: digits(0.3),
    "calibrated digits": calibrated_digits,
    "breast cancer": cancer,
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_reported_interval_contains_its_estimate(case):
    y, proba = CASES[case]()
    r = report(y, proba)
    assert set(SCALARS) <= set(r["metrics"])
    for name, m in r["metrics"].items():
        assert m["low"] <= m["value"] <= m["high"], (case, name, m)
        assert m["low"] < m["high"], (case, name, m)  # a real interval, not a point
    for name in ("accuracy", "auroc", "ece"):  # the slices' and baselines' interval: the same
        low, high = metric_interval(
            name, y, proba, n_resamples=N_RESAMPLES, confidence=CONFIDENCE, seed=SEED
        )
        assert (low, high) == (r["metrics"][name]["low"], r["metrics"][name]["high"]), name


def test_paired_differences_contain_the_observed_difference():
    """Champion vs challenger (compare, baselines): the same resamples for both models."""
    y, strong = digits(0.3)
    _, weak = digits(1e-3)
    _, calibrated = calibrated_digits()
    ones = np.ones((1, len(y)))
    for a, b in ((strong, weak), (calibrated, strong)):
        for name in SCALARS:
            observed = float(
                scalar_metrics(y, a, ones, only=name)[name][0]
                - scalar_metrics(y, b, ones, only=name)[name][0]
            )
            low, high = paired_difference(
                name, y, a, b, n_resamples=300, confidence=CONFIDENCE, seed=SEED
            )
            assert low <= observed <= high, (name, observed, low, high)


def test_the_resampling_loop_interval_contains_its_estimate():
    y, proba = cancer()
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auroc"):
        metric = METRICS.get(name)
        low, high = bootstrap_interval(
            metric, y, proba, n_resamples=300, confidence=CONFIDENCE, seed=SEED
        )
        assert low <= metric(y, proba) <= high, name


@pytest.mark.parametrize("case", ["calibrated digits", "breast cancer"])
def test_ece_of_a_well_calibrated_model_lies_in_its_interval(case):
    """ECE is biased upward: on a well-calibrated model nearly every resample's ECE exceeds
    the estimate, and the old percentile interval lay wholly above it."""
    y, proba = CASES[case]()
    m = report(y, proba)["metrics"]["ece"]
    values = replicates("ece", y, proba)
    old_low, old_high = percentile_interval(values, CONFIDENCE)
    assert m["value"] < 0.015  # well calibrated
    assert m["value"] < old_low  # the percentile interval excluded its own estimate
    assert np.mean(values < m["value"]) < (1 - CONFIDENCE) / 2
    assert m["low"] <= m["value"] <= m["high"]
    # bias correction breaks down here: ECE down to 0 cannot be ruled out; the upper end is
    # the percentile one (the replicates' spread, conservative for an upward-biased ECE)
    assert m["low"] == 0.0 and m["high"] == pytest.approx(old_high, abs=1e-12)


def test_a_biased_ece_interval_shifts_below_the_percentile_one():
    """Where BC holds (the estimate inside the replicates' bulk, but below their median) the
    interval moves down with the bias, still around the estimate."""
    y, proba = digits(0.3)
    m = report(y, proba)["metrics"]["ece"]
    values = replicates("ece", y, proba)
    old_low, old_high = percentile_interval(values, CONFIDENCE)
    assert 0.025 < np.mean(values < m["value"]) < 0.4  # biased, not degenerate
    assert m["low"] < old_low and m["high"] < old_high
    assert 0.0 < m["low"] <= m["value"] <= m["high"]


def test_bc_equals_the_percentile_interval_for_an_estimate_at_the_median():
    y, proba = digits(0.3)
    values = replicates("auroc", y, proba)
    median = float(np.median(values))
    np.testing.assert_allclose(
        bc_interval(values, median, CONFIDENCE),
        percentile_interval(values, CONFIDENCE),
        rtol=0,
        atol=1e-12,
    )


def test_degenerate_replicates_give_an_interval_holding_the_estimate():
    """Digits 0 and 1 only: a perfect model, every resample's accuracy is 1 (all ties)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(n_class=2, return_X_y=True)
    proba = _fit(x[:200], y[:200], 1.0).predict_proba(x[200:])
    m = report(y[200:], proba)["metrics"]
    assert m["accuracy"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    # replicates all identical but not equal to the estimate: widened to hold it
    assert bc_interval(np.full(50, 0.9), 0.8, CONFIDENCE) == (0.8, 0.9)
    assert bc_interval(np.full(50, 0.9), 0.95, CONFIDENCE) == (0.9, 0.95)


def test_intervals_are_deterministic_for_a_seed():
    y, proba = cancer()
    first, again, other = report(y, proba), report(y, proba), report(y, proba, seed=1)
    assert first["metrics"] == again["metrics"]
    assert first["metrics"] != other["metrics"]
    y, proba = calibrated_digits()
    _, weak = digits(1e-3)
    kw = {"n_resamples": 300, "confidence": CONFIDENCE}
    assert paired_difference("macro_f1", y, proba, weak, seed=3, **kw) == paired_difference(
        "macro_f1", y, proba, weak, seed=3, **kw
    )
    assert paired_difference("macro_f1", y, proba, weak, seed=3, **kw) != paired_difference(
        "macro_f1", y, proba, weak, seed=4, **kw
    )


def test_the_terminal_says_why_an_ece_interval_starts_at_zero():
    from dlworkflow.evaluate.summary import report_rows

    y, proba = calibrated_digits()
    r = report(y, proba)
    base = {
        "calibration": {"ece": r["metrics"]["ece"]["value"], "nll": 0.1},
        "unknown_labels": 0,
        "baselines": None,
        "confused_pairs": [],
        "mistakes": [],
        "slices": [],
        "top_k": {},
    }
    rows = dict(report_rows({**base, **r}))
    assert rows["ECE (15 bins)"].endswith(f"(95% CI 0.0000 to {r['metrics']['ece']['high']:.4f})")
    assert "values down to 0 cannot be ruled out" in rows[""]
    y, proba = digits(0.3)  # an ECE interval above 0: no note
    assert "" not in dict(report_rows({**base, **report(y, proba)}))
