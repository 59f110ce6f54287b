"""Champion against challenger on the same sealed rows, through the exported models (ONNX, the
thing that serves), for `dlw retrain`.

    comparison = compare(project, champion=models/v3, challenger=models/v4, on="all")

Both bundles predict the sealed test set and every fresh slice (`fresh<N>`, the held-out share
of each `data.additions` entry), each input prepared by its own bundle's preprocessing from the
same raw values (`observe.runtime_inputs`). Per slice and over the compared rows
(`retrain.compare_on`: the test set, the fresh slices, or all of them together): the primary
metric of each model and the paired bootstrap interval of the difference challenger - champion
(the same resampled rows for both models). Runs only inside the `retrain` ledger step: the
sealed reader (`store.sealed`) refuses anything else and logs every read.

The models' outputs are the task's (`observe.predict_outputs`: class probabilities, values
in the target's units, label probabilities) and the metric is the task's primary metric:
classification through dlworkflow.metrics, the other kinds through `task.scores` with the
same draw counts for both models. The result says the metric's direction
("higher_is_better") and the challenger's "improvement" (the difference, sign-flipped for a
lower-is-better metric such as RMSE), so retrain's margin applies in the metric's direction.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError
from dlworkflow.evaluate.bootstrap import bc_interval, paired_difference
from dlworkflow.metrics import METRICS
from dlworkflow.runtime.bundle import Bundle, load_bundle
from dlworkflow.runtime.observe import predict_outputs, runtime_inputs
from dlworkflow.store import read_split_info
from dlworkflow.store.sealed import open_test_set

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.tasks.base import Task
    from dlworkflow.workspace import Workspace

COMPARE_ON = ("all", "test", "fresh")
BATCH = 256


class CompareError(DlwError):
    """Champion and challenger cannot be compared on one metric over the same rows."""


def compare(project: Workspace, *, champion: Path, challenger: Path, on: str) -> dict[str, Any]:
    """Both exported models on the sealed test set and each fresh slice; the primary metric
    per model and the paired bootstrap interval of challenger - champion, per slice and over
    the rows `on` selects ("all" | "test" | "fresh"). JSON-ready (NaN becomes None)."""
    if on not in COMPARE_ON:
        raise CompareError(
            f"Unknown comparison set {on!r}.",
            expected=" | ".join(COMPARE_ON),
            received=repr(on),
            fix="set retrain.compare_on to all, test or fresh",
        )
    old, new = load_bundle(champion), load_bundle(challenger)
    _check_comparable(old, new)
    task, target = old.task, old.target
    metric = project.config.problem.primary_metric or task.default_metric
    if task.single_label:
        METRICS.get(metric)
    higher = task.metric(metric).higher_is_better
    info = read_split_info(project)
    names = ["test", *sorted(info.slices, key=lambda n: info.slices[n]["addition"])]
    chosen = [n for n in names if on == "all" or (n == "test") == (on == "test")]
    if not chosen:
        raise CompareError(
            "There is no fresh slice to compare on.",
            expected="a fresh<N> slice (the held-out share of a data.additions entry)",
            received=f"slices: {', '.join(names)}",
            fix="set retrain.compare_on: all (or test), or add more fresh data: a small "
            "addition may put no sample in its fresh slice",
        )
    purpose = f"champion v{old.version} vs challenger v{new.version}"
    predictions = {name: _predict(project, name, purpose, old, new) for name in names}
    settings = _settings(project, metric)
    summary = SUMMARIES[task.single_label]
    slices = [
        summary(name, *predictions[name], task=task, target=target, **settings) for name in names
    ]
    pooled = [predictions[n] for n in chosen]
    y, p_old, p_new = (np.concatenate([part[i] for part in pooled]) for i in range(3))
    compared = summary(" + ".join(chosen), y, p_old, p_new, task=task, target=target, **settings)
    compared["slices"] = chosen
    for part in [*slices, compared]:
        diff = part["difference"]
        part["improvement"] = None if diff is None else (diff if higher else -diff)
    return {
        "metric": metric,
        "higher_is_better": higher,
        "on": on,
        "confidence": settings["confidence"],
        "champion": {"version": old.version, "folder": str(old.folder)},
        "challenger": {"version": new.version, "folder": str(new.folder)},
        "slices": slices,
        "compared": compared,
    }


def _check_comparable(old: Bundle, new: Bundle) -> None:
    if old.modality != new.modality or old.classes != new.classes or old.task is not new.task:
        raise CompareError(
            f"Champion v{old.version} and challenger v{new.version} predict different things: "
            "one metric cannot compare them.",
            expected=f"{old.modality} input and classes {old.classes[:12]}",
            received=f"{new.modality} input and classes {new.classes[:12]}",
            fix="review the challenger's `dlw test` verdict and promote it by hand "
            f"(`dlw promote {new.version}`) if it should serve",
        )


def _predict(
    project: Workspace, name: str, purpose: str, old: Bundle, new: Bundle
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(encoded targets (classification: class indices), champion outputs, challenger
    outputs)."""
    rows = open_test_set(project, purpose=purpose, slice=name)
    labels = rows["label"].astype(str)
    task = old.task
    y = task.encode(labels.tolist(), old.classes, size=_dense_size(old))
    known = task.known(y)
    if task.single_label:
        known = known & (y >= 0)
    unknown = sorted(set(labels[~known]))
    if unknown:
        raise CompareError(
            f"The {name} rows hold labels the models do not know: {unknown[:5]}.",
            expected=f"labels among {old.classes[:12]}",
            received=f"{len(unknown)} unknown label(s)",
            fix="train a challenger on data with these classes (dlw retrain) "
            "and promote it by hand after its test",
        )
    return y, _outputs(old, rows), _outputs(new, rows)


def _outputs(bundle: Bundle, rows: pd.DataFrame) -> np.ndarray:
    """The task outputs of the bundle on manifest rows: (N, K), or a dense task's (boxes
    (N, K, 6), probabilities (N, C, H, W)); with no rows, the outputs of an empty batch."""
    parts = [
        predict_outputs(bundle, runtime_inputs(bundle, rows.iloc[start : start + BATCH]))
        for start in range(0, max(len(rows), 1), BATCH)
    ]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _dense_size(bundle: Bundle) -> tuple[int, int] | None:
    """A dense task's targets are encoded at the model's input size (height, width)."""
    if not bundle.task.dense:
        return None
    height, width = bundle.preprocessing["size"]
    return int(height), int(width)


def _settings(project: Workspace, metric: str) -> dict[str, Any]:
    cfg = project.config
    return {
        "metric": metric,
        "n_resamples": cfg.evaluate.bootstrap_samples,
        "confidence": cfg.evaluate.confidence,
        "seed": cfg.seed,
    }


def _summary(
    name: str,
    y: np.ndarray,
    p_old: np.ndarray,
    p_new: np.ndarray,
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
    task: Task | None = None,
    target: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Classification, one set of rows: each model's metric and the paired interval of the
    difference."""
    out: dict[str, Any] = {"name": name, "n": int(len(y))}
    if len(y) == 0:
        return {
            **out,
            "champion": None,
            "challenger": None,
            "difference": None,
            "interval": [None, None],
        }
    score = METRICS.get(metric)
    a, b = float(score(y, p_old)), float(score(y, p_new))
    low, high = paired_difference(
        metric, y, p_new, p_old, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return {
        **out,
        "champion": _num(a),
        "challenger": _num(b),
        "difference": _num(b - a),
        "interval": [_num(low), _num(high)],
        "accuracy": {
            "champion": _num(float(np.mean(p_old.argmax(1) == y))),
            "challenger": _num(float(np.mean(p_new.argmax(1) == y))),
        },
    }


def _task_summary(
    name: str,
    y: np.ndarray,
    p_old: np.ndarray,
    p_new: np.ndarray,
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
    task: Task,
    target: dict[str, Any],
) -> dict[str, Any]:
    """Regression and multi-label, one set of rows: each model's metric (`task.scores`) and
    the BC interval of the difference challenger - champion over the same draw counts for
    both models (a paired bootstrap)."""
    out: dict[str, Any] = {"name": name, "n": int(len(y))}
    if len(y) == 0:
        return {
            **out,
            "champion": None,
            "challenger": None,
            "difference": None,
            "interval": [None, None],
        }
    low, high, a, b = paired_task_difference(
        task,
        metric,
        y,
        p_old,
        p_new,
        target,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    return {
        **out,
        "champion": _num(a),
        "challenger": _num(b),
        "difference": _num(b - a),
        "interval": [_num(low), _num(high)],
    }


def paired_task_difference(
    task: Task,
    metric: str,
    y: np.ndarray,
    out_a: np.ndarray,
    out_b: np.ndarray,
    target: dict[str, Any],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float, float, float]:
    """(low, high) of metric(b) - metric(a) over the same resampled rows (draw counts of
    `resample_counts`, as every bootstrap of the project), the BC interval around the
    observed difference; and metric(a), metric(b)."""
    from dlworkflow.evaluate.scores import resample_counts

    ones = np.ones((1, len(y)))
    a = float(task.metric_scores(metric, y, out_a, ones, target)[0])
    b = float(task.metric_scores(metric, y, out_b, ones, target)[0])
    diffs = [
        task.metric_scores(metric, y, out_b, w, target)
        - task.metric_scores(metric, y, out_a, w, target)
        for w in resample_counts(len(y), n_resamples=n_resamples, seed=seed)
    ]
    low, high = bc_interval(np.concatenate(diffs), b - a, confidence)
    return low, high, a, b


# each model's metric and the paired difference, per task: classification's own (with
# accuracy beside the primary metric) or the task's metrics
SUMMARIES = {True: _summary, False: _task_summary}


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)
