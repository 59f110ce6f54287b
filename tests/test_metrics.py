"""Metrics agree with scikit-learn on random and tie-heavy inputs, binary and multiclass."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from dlworkflow.errors import UnknownKeyError
from dlworkflow.metrics import METRICS, compute, confusion


def _random_case(seed: int, n: int, k: int, *, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)  # every class present in y_true
    if ties:
        # few distinct probability rows: many tied scores and tied argmax (uniform rows)
        palette = rng.dirichlet(np.ones(k), size=3).round(1)
        palette = np.vstack([palette, np.full(k, 1.0 / k)])
        palette = palette / palette.sum(axis=1, keepdims=True)
        proba = palette[rng.integers(0, len(palette), size=n)]
    else:
        proba = rng.dirichlet(np.ones(k), size=n)
    return y, proba


def _sklearn(name: str, y: np.ndarray, proba: np.ndarray) -> float:
    pred = proba.argmax(axis=1)  # argmax ties go to the first class, as in dlworkflow
    k = proba.shape[1]
    if name == "accuracy":
        return skm.accuracy_score(y, pred)
    if name == "balanced_accuracy":
        return skm.balanced_accuracy_score(y, pred)
    if name == "macro_f1":
        return skm.f1_score(y, pred, average="macro")
    if k == 2:
        return skm.roc_auc_score(y, proba[:, 1])
    return skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")


CASES = [
    (seed, n, k, ties)
    for seed in (0, 1, 2)
    for n, k in ((40, 2), (97, 3), (200, 5))
    for ties in (False, True)
]


@pytest.mark.parametrize("name", ["accuracy", "balanced_accuracy", "macro_f1", "auroc"])
@pytest.mark.parametrize(("seed", "n", "k", "ties"), CASES)
def test_metric_agrees_with_sklearn(name, seed, n, k, ties):
    y, proba = _random_case(seed, n, k, ties=ties)
    assert compute(name, y, proba) == pytest.approx(_sklearn(name, y, proba), abs=1e-12)


def test_tie_heavy_case_really_has_ties():
    y, proba = _random_case(0, 97, 3, ties=True)
    assert len(np.unique(proba[:, 0])) <= 4
    assert np.any(np.isclose(proba, 1 / 3).all(axis=1))  # uniform rows: tied argmax


def test_perfect_and_inverted_binary_predictions():
    y = np.array([0, 0, 1, 1, 1])
    perfect = np.eye(2)[y]
    assert compute("accuracy", y, perfect) == 1.0
    assert compute("macro_f1", y, perfect) == 1.0
    assert compute("auroc", y, perfect) == 1.0
    inverted = np.eye(2)[1 - y]
    assert compute("accuracy", y, inverted) == 0.0
    assert compute("auroc", y, inverted) == 0.0


def test_macro_f1_counts_classes_only_predicted_as_sklearn_does():
    y = np.array([0, 0, 1, 1])
    proba = np.eye(3)[[0, 2, 1, 1]]  # class 2 never true, predicted once
    expected = skm.f1_score(y, proba.argmax(axis=1), average="macro")
    assert compute("macro_f1", y, proba) == pytest.approx(expected)
    assert compute("balanced_accuracy", y, proba) == pytest.approx(0.75)


def test_auroc_is_nan_when_only_one_class_is_present():
    y = np.zeros(6, dtype=int)
    assert np.isnan(compute("auroc", y, np.full((6, 2), 0.5)))


def test_confusion_counts():
    cm = confusion(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), 3)
    np.testing.assert_array_equal(cm, skm.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1]))


def test_registry_names_and_unknown_metric():
    assert METRICS.names() == ["accuracy", "auroc", "balanced_accuracy", "macro_f1"]
    with pytest.raises(UnknownKeyError) as info:
        compute("acuracy", np.array([0, 1]), np.eye(2))
    assert "'accuracy'" in info.value.fix
