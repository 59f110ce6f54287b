"""Calibration: reliability bins, expected calibration error, and temperature scaling."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlworkflow.evaluate.scores import ECE_BINS, confidence_bins, expected_calibration_error

T_BOUNDS = (0.05, 20.0)  # the temperature is searched within these (log scale)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under softmax(logits / T)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The scalar T > 0 minimising the NLL of softmax(logits / T) (Guo et al. 2017); it
    rescales confidence without changing any prediction."""
    from scipy.optimize import minimize_scalar

    if len(y) == 0:
        return 1.0
    lo, hi = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    found = minimize_scalar(
        lambda log_t: nll(logits, y, float(np.exp(log_t))),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(found.x))


def ece(y: np.ndarray, proba: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Expected calibration error. Biased upward (absolute gaps of noisy bins): a perfectly
    calibrated model scores above 0 on finite data, so its bootstrap interval is
    bias-corrected (dlworkflow.evaluate.bootstrap), not the plain percentile one."""
    return float(expected_calibration_error(y, proba, np.ones((1, len(y))), bins=bins)[0])


def reliability(y: np.ndarray, proba: np.ndarray, *, bins: int = ECE_BINS) -> dict[str, Any]:
    """Per confidence bin: its range, sample count, mean confidence and accuracy (None where
    the bin is empty): the data of a reliability diagram."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    which = confidence_bins(confidence, bins)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    correct_sum = np.bincount(which, weights=correct.astype(float), minlength=bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {
        "edges": edges.tolist(),
        "count": count.tolist(),
        "confidence": [float(c / n) if n else None for c, n in zip(conf_sum, count)],
        "accuracy": [float(c / n) if n else None for c, n in zip(correct_sum, count)],
    }


def calibration_section(
    y: np.ndarray, logits: np.ndarray, *, temperature: float | None
) -> dict[str, Any]:
    """ECE and reliability of the model as it is, and after temperature scaling with T
    (fitted elsewhere, on validation) when T is given."""
    proba = softmax(logits)
    out: dict[str, Any] = {
        "bins": ECE_BINS,
        "ece": ece(y, proba),
        "nll": nll(logits, y),
        "reliability": reliability(y, proba),
        "temperature": temperature,
    }
    if temperature is not None:
        scaled = softmax(logits, temperature)
        out["scaled"] = {
            "ece": ece(y, scaled),
            "nll": nll(logits, y, temperature),
            "reliability": reliability(y, scaled),
        }
    return out
