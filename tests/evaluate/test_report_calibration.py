"""Calibration: ECE as defined (15 equal-width bins), and temperature scaling fitted on one
half of real predictions repairing an over-confident model on the other half."""

from __future__ import annotations

import numpy as np
import pytest

from dlworkflow.evaluate.calibration import (
    calibration_section,
    ece,
    fit_temperature,
    nll,
    reliability,
    softmax,
)


def digits_logits() -> tuple[np.ndarray, np.ndarray]:
    """Held-out logits of a logistic regression on 60 of the real digits (about 84% right)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    model = LogisticRegression(C=1e-2, max_iter=300).fit(x[:60], y[:60])
    return model.decision_function(x[60:]), y[60:]


def test_ece_is_the_binned_gap_between_accuracy_and_confidence():
    logits, y = digits_logits()
    proba = softmax(logits)
    confidence, correct = proba.max(1), proba.argmax(1) == y
    expected = 0.0
    for low in np.arange(15) / 15:  # an independent loop over (low, low + 1/15]
        inside = (confidence > low) & (confidence <= low + 1 / 15 + 1e-12)
        if inside.any():
            expected += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    assert ece(y, proba) == pytest.approx(expected, abs=1e-9)
    rel = reliability(y, proba)
    assert sum(rel["count"]) == len(y) and len(rel["edges"]) == 16


def test_temperature_fitted_on_validation_repairs_an_over_confident_model():
    logits, y = digits_logits()
    over = 6.0 * logits  # deliberately over-confident: same ranking, sharper probabilities
    half = len(y) // 2
    val, test = slice(0, half), slice(half, None)
    t = fit_temperature(over[val], y[val])
    assert t > 2.0  # it undoes most of the sharpening
    before = ece(y[test], softmax(over[test]))
    after = ece(y[test], softmax(over[test], t))
    print(f"\nT={t:.3f}; held-out ECE {before:.4f} -> {after:.4f}")
    assert before > 0.1
    assert after < 0.5 * before
    assert nll(over[test], y[test], t) < nll(over[test], y[test])
    # the predictions themselves do not change
    np.testing.assert_array_equal(softmax(over[test], t).argmax(1), over[test].argmax(1))
    section = calibration_section(y[test], over[test], temperature=t)
    assert section["temperature"] == t
    assert section["scaled"]["ece"] == pytest.approx(after)
    assert section["ece"] == pytest.approx(before)


def test_a_calibrated_model_keeps_a_temperature_near_one():
    logits, y = digits_logits()
    t_fit = fit_temperature(logits, y)
    # scaling the logits by a factor moves the fitted temperature by the same factor
    assert fit_temperature(3.0 * logits, y) == pytest.approx(3.0 * t_fit, rel=1e-3)
