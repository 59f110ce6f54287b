"""Baselines of the regression and multi-label tasks: what the network has to beat, scored on
the evaluated split with the primary metric, each with its bootstrap interval, and the paired
bootstrap interval of network - simple model (the same resamples for both).

Regression: the train mean and the train median (constant predictions), and ridge regression
(RidgeCV, the penalty chosen by efficient leave-one-out) on the inputs the classification
baseline uses (the table encoding, TF-IDF, or downscaled pixels).
Multi-label: each label's train prevalence as its probability (a label is predicted where its
prevalence reaches 0.5), and one-vs-rest logistic regression whose per-label thresholds are
tuned the way the network's are (the task's fit_on_validation), on out-of-fold predictions
of the train rows, so that no evaluated row tunes them.
Detection: the box prior (tasks.detection box_prior_fit / box_prior_outputs): boxes of the
training mean sizes per class at a grid of points, with a constant score.
Segmentation: the training masks' per-pixel majority class (tasks.segmentation majority_fit /
majority_outputs). Each is the dense task's simple model: the network's difference to it
(with its paired interval) is what the network adds.

`simple_as_good` is True when the network's advantage over the simple model is not
distinguishable from zero: the interval of network - simple reaches 0 (or beyond) in the
metric's direction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.baselines import quiet_fit, simple_inputs, subsample
from dlworkflow.evaluate.task_scores import (
    intervals,
    not_better,
    paired_difference,
    task_scorer,
)
from dlworkflow.models.meta import image_size
from dlworkflow.store import load_split

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.tasks import Task
    from dlworkflow.workspace import Workspace

ALPHAS = np.logspace(-3, 4, 15)  # ridge penalties RidgeCV chooses from
OOF_FOLDS = 3  # folds of the out-of-fold predictions that tune the logistic's thresholds


def task_baselines(
    project: Workspace,
    task: Task,
    meta: ModelMeta,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """The network's metric next to the task kind's baselines (see the module docstring)."""
    names = list(meta["classes"])
    train = load_split(project, "train")
    size = image_size(meta) if task.dense else None  # masks at the network's size
    y_train = task.encode(train["label"].astype(str).tolist(), names, size=size)
    keep = task.known(y_train)
    train, y_train = train[keep].reset_index(drop=True), y_train[keep]
    kw: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    spec = task.metric(metric)
    network = task_scorer(task, y, out, meta.get("target") or {})
    constants, (simple_out, simple_target, simple_info) = BASELINES[task.kind](
        project, task, meta, train, y_train, rows, seed=seed
    )
    result: dict[str, Any] = {
        "metric": metric,
        "higher_is_better": spec.higher_is_better,
        "network": _score(metric, network, len(y), **kw),
    }
    for name, (constant_out, constant_target, info) in constants.items():
        result[name] = {
            **info,
            **_score(metric, task_scorer(task, y, constant_out, constant_target), len(y), **kw),
        }
    simple = task_scorer(task, y, simple_out, simple_target)
    result["simple"] = {**simple_info, **_score(metric, simple, len(y), **kw)}
    difference = paired_difference(metric, network, simple, len(y), **kw)
    result["difference"] = difference
    result["simple_as_good"] = not_better(difference, higher_is_better=spec.higher_is_better)
    return result


def _score(
    metric: str, scorer: Callable[[np.ndarray], dict[str, np.ndarray]], n: int, **kw: Any
) -> dict[str, float | None]:
    def one(weights: np.ndarray) -> dict[str, np.ndarray]:
        return {metric: scorer(weights)[metric]}

    return intervals(one, n, **kw)[metric]


Outputs = tuple[np.ndarray, dict[str, Any], dict[str, Any]]  # (outputs, target, description)


def regression_baselines(
    project: Workspace,
    task: Task,
    meta: ModelMeta,
    train: pd.DataFrame,
    y_train: np.ndarray,
    rows: pd.DataFrame,
    *,
    seed: int,
) -> tuple[dict[str, Outputs], Outputs]:
    """Constant predictions (train mean, train median) and ridge regression."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    y_train = np.asarray(y_train, dtype=np.float64)
    n = len(rows)
    constants: dict[str, Outputs] = {}
    for name, how in (("mean", np.mean), ("median", np.median)):
        value = float(how(y_train)) if len(y_train) else float("nan")
        constants[name] = (np.full((n, 1), value), {}, {"prediction": value})
    sub, y_sub = subsample(train, y_train, seed=seed)
    x_train, x_eval, steps, inputs = simple_inputs(project, meta, sub, rows)
    model = make_pipeline(*steps, RidgeCV(alphas=ALPHAS))
    info: dict[str, Any] = {"model": f"ridge regression on {inputs}", "n_train": len(y_sub)}
    if len(y_sub) < 2:  # nothing to fit: the mean
        return constants, (constants["mean"][0], {}, info)
    with quiet_fit():
        model.fit(x_train, y_sub)
        predicted = np.asarray(model.predict(x_eval), dtype=np.float64).reshape(n, 1)
    info["alpha"] = float(model[-1].alpha_)
    return constants, (predicted, {}, info)


def multilabel_baselines(
    project: Workspace,
    task: Task,
    meta: ModelMeta,
    train: pd.DataFrame,
    y_train: np.ndarray,
    rows: pd.DataFrame,
    *,
    seed: int,
) -> tuple[dict[str, Outputs], Outputs]:
    """Each label's train prevalence, and one-vs-rest logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    names = list(meta["classes"])
    truth = (np.asarray(y_train) > 0.5).astype(np.int64)
    n, k = len(rows), len(names)
    prevalence = truth.mean(axis=0) if len(truth) else np.zeros(k)
    half = {"thresholds": [0.5] * k}
    constants = {
        "prevalence": (
            np.tile(prevalence, (n, 1)),
            half,
            {"prevalence": {name: float(p) for name, p in zip(names, prevalence)}},
        )
    }
    sub, y_sub = subsample(train, truth, seed=seed)
    x_train, x_eval, steps, inputs = simple_inputs(project, meta, sub, rows)
    info: dict[str, Any] = {
        "model": f"one-vs-rest logistic regression on {inputs}",
        "n_train": len(y_sub),
        "thresholds": f"tuned on out-of-fold predictions of the train rows ({OOF_FOLDS} folds)",
    }
    if len(y_sub) < 2 * OOF_FOLDS:  # too few to fit and tune: the prevalence
        return constants, (constants["prevalence"][0], half, info)

    def model() -> Any:
        return make_pipeline(
            *[_clone(s) for s in steps], OneVsRestClassifier(LogisticRegression(max_iter=500))
        )

    with quiet_fit():
        folds = KFold(OOF_FOLDS, shuffle=True, random_state=seed)
        oof = np.asarray(
            cross_val_predict(model(), x_train, y_sub, cv=folds, method="predict_proba"),
            dtype=np.float64,
        )
        fitted = model().fit(x_train, y_sub)
        proba = np.asarray(fitted.predict_proba(x_eval), dtype=np.float64).reshape(n, k)
    target = task.fit_on_validation(y_sub.astype(np.float32), oof, {})
    return constants, (proba, target, {**info, "threshold_values": target.get("thresholds")})


def _clone(step: Any) -> Any:
    from sklearn.base import clone

    return clone(step)


def box_prior_baseline(
    project: Workspace,
    task: Task,
    meta: ModelMeta,
    train: pd.DataFrame,
    y_train: np.ndarray,
    rows: pd.DataFrame,
    *,
    seed: int,
) -> tuple[dict[str, Outputs], Outputs]:
    """Detection: the box prior of the training boxes, scored with the network's target
    (its input size sets the box-size bins of ap_small/medium/large)."""
    from dlworkflow.tasks.detection import box_prior_fit, box_prior_outputs

    params = box_prior_fit(y_train)
    info = {
        "model": "box prior: boxes of the training mean size per class at a grid of points, "
        "constant score",
        "n_train": len(y_train),
        "n_train_boxes": int((np.asarray(y_train)[..., 4] >= 0).sum()),
    }
    out = box_prior_outputs(params, len(rows))
    return {}, (np.asarray(out, dtype=np.float64), dict(meta.get("target") or {}), info)


def majority_baseline(
    project: Workspace,
    task: Task,
    meta: ModelMeta,
    train: pd.DataFrame,
    y_train: np.ndarray,
    rows: pd.DataFrame,
    *,
    seed: int,
) -> tuple[dict[str, Outputs], Outputs]:
    """Segmentation: each pixel's most frequent class in the training masks."""
    from dlworkflow.tasks.segmentation import majority_fit, majority_outputs

    params = majority_fit(y_train, num_classes=len(meta["classes"]))  # every class scored
    info = {
        "model": "per-pixel majority class of the training masks",
        "n_train": len(y_train),
    }
    out = majority_outputs(params, len(rows))
    return {}, (np.asarray(out), dict(meta.get("target") or {}), info)


BASELINES: dict[str, Callable[..., tuple[dict[str, Outputs], Outputs]]] = {
    "regression": regression_baselines,
    "multilabel": multilabel_baselines,
    "detection": box_prior_baseline,
    "segmentation": majority_baseline,
}
