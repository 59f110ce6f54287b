"""The multi-label task's vectorised bootstrap scores: the mean average precision of every
resample (draw counts as weights) is scikit-learn's, ties included, and one metric asked for
alone (`metric_scores`, what the permutation importance and the paired bootstraps use) is the
same as that metric among all of them."""

from __future__ import annotations

import numpy as np
import pytest

from dlworkflow.evaluate.scores import resample_counts
from dlworkflow.tasks.registry import task_of


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, k = 60, 4
    y = (rng.random((n, k)) < [0.5, 0.2, 0.7, 0.0]).astype(np.float32)  # label 3: no positive
    out = np.round(rng.random((n, k)) * 0.6 + 0.4 * y, 1)  # rounded: tied scores
    out[:, 2] = 0.5  # one label with every score tied
    weights = np.vstack([np.ones((1, n)), next(resample_counts(n, n_resamples=25, seed=3))])
    return y, out, weights


def test_mean_average_precision_of_each_resample_is_scikit_learns():
    from sklearn.metrics import average_precision_score

    y, out, weights = _data()
    got = task_of("tabular-multilabel").scores(y, out, weights, {})["map"]
    for row, w in zip(got, weights):
        labels = [j for j in range(y.shape[1]) if (w * y[:, j]).sum() > 0]
        expected = np.mean(
            [average_precision_score(y[:, j], out[:, j], sample_weight=w) for j in labels]
        )
        assert row == pytest.approx(expected, rel=1e-12)


def test_one_metric_alone_equals_that_metric_among_all():
    y, out, weights = _data(1)
    task = task_of("tabular-multilabel")
    target = {"thresholds": [0.5, 0.35, 0.55, 0.5]}
    every = task.scores(y, out, weights, target)
    assert set(every) == {m.name for m in task.metrics}
    for name, values in every.items():
        alone = task.metric_scores(name, y, out, weights, target)
        assert alone.shape == (len(weights),)
        np.testing.assert_array_equal(alone, values)
