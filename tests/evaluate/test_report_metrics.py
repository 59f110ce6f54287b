"""The full metric report on real predictions (logistic regressions on scikit-learn's digits
and breast cancer data) against scikit-learn, and its vectorised bootstrap intervals."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from sklearn import metrics as skm

from dlworkflow.evaluate.bootstrap import bootstrap_interval, metric_interval
from dlworkflow.evaluate.report import metric_report, top_ks
from dlworkflow.metrics import METRICS


@cache
def digits_predictions() -> tuple[np.ndarray, np.ndarray]:
    """Held-out class probabilities of a (deliberately weak) logistic regression on digits."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(C=1e-4, max_iter=200).fit(x[:300], y[:300])
    return y[300:], model.predict_proba(x[300:])


@cache
def cancer_predictions() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    x, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(C=1e-4, max_iter=500).fit(x[:200], y[:200])
    return y[200:], model.predict_proba(x[200:])


def report(y, proba, n_resamples=200):
    classes = [str(c) for c in range(proba.shape[1])]
    return metric_report(y, proba, classes, n_resamples=n_resamples, confidence=0.95, seed=0)


def test_multiclass_metrics_equal_scikit_learn():
    y, proba = digits_predictions()
    r = report(y, proba)
    pred = proba.argmax(1)
    m = {name: v["value"] for name, v in r["metrics"].items()}
    assert 0.5 < m["accuracy"] < 0.95  # a real, imperfect model
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"), abs=1e-12)
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-9)
    assert m["auprc"] == pytest.approx(
        skm.average_precision_score(np.eye(10)[y], proba, average="macro"), abs=1e-9
    )
    assert list(r["top_k"]) == ["1", "2", "3", "4", "5"]
    for k in (2, 3, 5):
        assert r["top_k"][str(k)] == pytest.approx(
            skm.top_k_accuracy_score(y, proba, k=k), abs=1e-12
        )
    np.testing.assert_array_equal(r["confusion"], skm.confusion_matrix(y, pred))
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred)
    for i, row in enumerate(r["per_class"]):
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == support[i]
    # the point estimates agree with dlworkflow.metrics, which training and the gate use
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auroc"):
        assert m[name] == pytest.approx(METRICS.get(name)(y, proba), abs=1e-12)


def test_binary_metrics_use_the_positive_class():
    y, proba = cancer_predictions()
    r = report(y, proba)
    m = {name: v["value"] for name, v in r["metrics"].items()}
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-12)
    assert m["auprc"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro"))
    assert list(r["top_k"]) == ["1"]  # top-2 of 2 classes is always 1: left out
    assert top_ks(2) == (1,) and top_ks(10) == (1, 2, 3, 4, 5)


def test_intervals_contain_the_estimate_and_narrow_with_more_samples():
    y, proba = digits_predictions()
    small, large = report(y[:150], proba[:150]), report(y, proba)
    for name in (
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "weighted_f1",
        "auroc",
        "auprc",
        "top_2_accuracy",
        "ece",
    ):
        for r in (small, large):
            m = r["metrics"][name]
            assert m["low"] <= m["value"] <= m["high"], (name, m)
        width = {
            id(r): r["metrics"][name]["high"] - r["metrics"][name]["low"] for r in (small, large)
        }
        assert width[id(large)] < 0.6 * width[id(small)], name  # 10x the samples


def test_vectorised_intervals_equal_the_resampling_loop():
    """Same seed, same resamples: the vectorised bootstrap gives bootstrap_interval's answer."""
    y, proba = digits_predictions()
    y, proba = y[:400], proba[:400]
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auroc"):
        loop = bootstrap_interval(
            METRICS.get(name), y, proba, n_resamples=200, confidence=0.9, seed=7
        )
        fast = metric_interval(name, y, proba, n_resamples=200, confidence=0.9, seed=7)
        np.testing.assert_allclose(fast, loop, rtol=0, atol=1e-12)
