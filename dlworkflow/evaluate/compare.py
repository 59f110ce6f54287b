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
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.deploy.runtime.bundle import Bundle, load_bundle
from dlworkflow.deploy.runtime.observe import runtime_inputs
from dlworkflow.errors import DlwError
from dlworkflow.evaluate.bootstrap import paired_difference
from dlworkflow.metrics import METRICS
from dlworkflow.store import read_split_info
from dlworkflow.store.sealed import open_test_set

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project

COMPARE_ON = ("all", "test", "fresh")
BATCH = 256


class CompareError(DlwError):
    """Champion and challenger cannot be compared on one metric over the same rows."""


def compare(project: Project, *, champion: Path, challenger: Path, on: str) -> dict[str, Any]:
    """Both exported models on the sealed test set and each fresh slice; the primary metric
    per model and the paired bootstrap interval of challenger - champion, per slice and over
    the rows `on` selects ("all" | "test" | "fresh"). JSON-ready (NaN becomes None)."""
    if on not in COMPARE_ON:
        raise CompareError(f"Unknown comparison set {on!r}.", expected=" | ".join(COMPARE_ON),
                           received=repr(on), fix="set retrain.compare_on to all, test or fresh")
    metric = project.config.problem.primary_metric or "accuracy"
    METRICS.get(metric)
    old, new = load_bundle(champion), load_bundle(challenger)
    _check_comparable(old, new)
    info = read_split_info(project)
    names = ["test", *sorted(info.slices, key=lambda n: info.slices[n]["addition"])]
    chosen = [n for n in names if on == "all" or (n == "test") == (on == "test")]
    if not chosen:
        raise CompareError(
            "There is no fresh slice to compare on.",
            expected="a fresh<N> slice (the held-out share of a data.additions entry)",
            received=f"slices: {', '.join(names)}",
            fix="set retrain.compare_on: all (or test), or add more fresh data: a small "
                "addition may put no sample in its fresh slice")
    purpose = f"champion v{old.version} vs challenger v{new.version}"
    predictions = {name: _predict(project, name, purpose, old, new) for name in names}
    settings = _settings(project, metric)
    slices = [_summary(name, *predictions[name], **settings) for name in names]
    pooled = [predictions[n] for n in chosen]
    y, p_old, p_new = (np.concatenate([part[i] for part in pooled]) for i in range(3))
    compared = _summary(" + ".join(chosen), y, p_old, p_new, **settings)
    compared["slices"] = chosen
    return {"metric": metric, "on": on, "confidence": settings["confidence"],
            "champion": {"version": old.version, "folder": str(old.folder)},
            "challenger": {"version": new.version, "folder": str(new.folder)},
            "slices": slices, "compared": compared}


def _check_comparable(old: Bundle, new: Bundle) -> None:
    if old.modality != new.modality or old.classes != new.classes:
        raise CompareError(
            f"Champion v{old.version} and challenger v{new.version} predict different things: "
            "one metric cannot compare them.",
            expected=f"{old.modality} input and classes {old.classes[:12]}",
            received=f"{new.modality} input and classes {new.classes[:12]}",
            fix="review the challenger's `dlw test` verdict and promote it by hand "
                f"(`dlw promote {new.version}`) if it should serve")


def _predict(project: Project, name: str, purpose: str, old: Bundle,
             new: Bundle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels as class indices, champion probabilities, challenger probabilities)."""
    rows = open_test_set(project, purpose=purpose, slice=name)
    index = {c: i for i, c in enumerate(old.classes)}
    labels = rows["label"].astype(str)
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise CompareError(f"The {name} rows hold labels the models do not know: {unknown[:5]}.",
                           expected=f"labels among {old.classes[:12]}",
                           received=f"{len(unknown)} unknown label(s)",
                           fix="train a challenger on data with these classes (dlw retrain) "
                               "and promote it by hand after its test")
    y = labels.map(index).to_numpy(dtype=np.int64)
    return y, _proba(old, rows), _proba(new, rows)


def _proba(bundle: Bundle, rows: pd.DataFrame) -> np.ndarray:
    k = len(bundle.classes)
    parts = [np.zeros((0, k), dtype=np.float32)]
    for start in range(0, len(rows), BATCH):
        parts.append(bundle.predict_proba(runtime_inputs(bundle, rows.iloc[start:start + BATCH])))
    return np.concatenate(parts)


def _settings(project: Project, metric: str) -> dict[str, Any]:
    cfg = project.config
    return {"metric": metric, "n_resamples": cfg.evaluate.bootstrap_samples,
            "confidence": cfg.evaluate.confidence, "seed": cfg.seed}


def _summary(name: str, y: np.ndarray, p_old: np.ndarray, p_new: np.ndarray, *, metric: str,
             n_resamples: int, confidence: float, seed: int) -> dict[str, Any]:
    """One set of rows: each model's metric and the paired interval of the difference."""
    out: dict[str, Any] = {"name": name, "n": int(len(y))}
    if len(y) == 0:
        return {**out, "champion": None, "challenger": None, "difference": None,
                "interval": [None, None]}
    score = METRICS.get(metric)
    a, b = float(score(y, p_old)), float(score(y, p_new))
    low, high = paired_difference(metric, y, p_new, p_old, n_resamples=n_resamples,
                                  confidence=confidence, seed=seed)
    return {**out, "champion": _num(a), "challenger": _num(b), "difference": _num(b - a),
            "interval": [_num(low), _num(high)],
            "accuracy": {"champion": _num(float(np.mean(p_old.argmax(1) == y))),
                         "challenger": _num(float(np.mean(p_new.argmax(1) == y)))}}


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)
