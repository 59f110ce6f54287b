"""Tables for `dlw explain`: permutation importance on the split (the permutation of
dlworkflow.evaluate.importance, the one `dlw evaluate` measures on validation, with its paired
bootstrap intervals), drawn as bars, and each chosen row's attributions: integrated gradients
on the standardised features from the train means (0 for every number after standardising, no
category for every string), summed over each string's one-hot columns. A row's figure shows its
most attributed features with their values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.explain_figures import (
    attribution_colour,
    caption,
    item_path,
    save_item,
)
from dlworkflow.evaluate.figures import _save
from dlworkflow.plots import new_figure

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.workspace import Workspace

IG_STEPS = 64
SHOWN = 10  # features in a row's figure (the most attributed)
BARS = 25  # features in the importance figure


def permutation(
    project: Workspace, model: Any, meta: ModelMeta, rows: pd.DataFrame, metric: str
) -> dict[str, Any]:
    """Permutation importance of every feature on these rows (largest fall first)."""
    from dlworkflow.evaluate.importance import METHODS, falls, metric_score
    from dlworkflow.models.predict import model_task

    task = model_task(project, meta)
    target = dict(meta.get("target") or {})
    cfg, seed = project.config.evaluate, project.config.seed
    chosen, outputs, ablations, info = METHODS["tabular"](
        project, model, meta, task, rows, target, np.random.default_rng(seed)
    )
    y = task.encode(rows["label"].astype(str).tolist(), list(meta["classes"]))[chosen]
    entries = falls(
        metric_score(task, y, target, metric),
        outputs,
        ablations,
        len(y),
        sign=1.0 if task.metric(metric).higher_is_better else -1.0,
        n_resamples=cfg.bootstrap_samples,
        confidence=cfg.confidence,
        seed=seed,
    )
    return {
        **info,
        "metric": metric,
        "n": int(len(y)),
        "confidence": cfg.confidence,
        "features": entries,
    }


def feature_of_columns(prep: dict[str, Any]) -> list[str]:
    """The feature each encoded column belongs to (numbers, then each string's one-hots)."""
    names = list(prep["numeric"])
    for name, cats in prep["categories"].items():
        names += [name] * (len(cats) + 1)
    return names


def row_attributions(model: Any, x: np.ndarray, targets: list[int]) -> np.ndarray:
    """Integrated gradients (N, columns) of encoded rows toward `targets`, from 0."""
    import torch
    from captum.attr import IntegratedGradients

    model.eval()
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    attr = IntegratedGradients(model).attribute(
        inputs, baselines=torch.zeros_like(inputs), target=targets, n_steps=IG_STEPS
    )
    return attr.detach().double().numpy()


def explain_tables(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    items: list[dict[str, Any]],
    folder: Path,
    *,
    split: str,
) -> dict[str, Any]:
    """The importance table and figure, then each item's attributions
    (item["attributions"]: [{feature, value, attribution}], largest first) and figure."""
    from dlworkflow.evaluate.full_report import primary_metric
    from dlworkflow.models import encode_table

    prep = meta["preprocessing"]
    importance = permutation(project, model, meta, rows, primary_metric(project)[0])
    importance["figure"] = importance_figure(project, importance, folder / "importance.png", split)
    if items:
        chosen = rows.iloc[[i["row"] for i in items]]
        classes = list(meta["classes"])
        attr = row_attributions(
            model, encode_table(chosen, prep), [classes.index(i["predicted"]) for i in items]
        )
        columns = np.array(feature_of_columns(prep))
        for k, (item, (_, row), a) in enumerate(zip(items, chosen.iterrows(), attr)):
            per = [
                {
                    "feature": f,
                    "value": shown_value(row, f),
                    "attribution": round(float(a[columns == f].sum()), 6),
                }
                for f in prep["features"]
                if f in set(columns)
            ]
            item["attributions"] = sorted(per, key=lambda e: -abs(e["attribution"]))
            draw(project, item, item_path(folder, item, k))
    return {
        "method": f"permutation importance (each feature shuffled {importance['repeats']} "
        "times) and integrated gradients per row (standardised features, from the train means)",
        "target": "the predicted class",
        "importance": importance,
    }


def shown_value(row: pd.Series, feature: str) -> Any:
    import pandas as pd

    value = row.get("f:" + feature, row.get(feature))
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return float(value) if isinstance(value, (int, float, np.number)) else str(value)


def importance_figure(
    project: Workspace, importance: dict[str, Any], path: Path, split: str
) -> str:
    """Bars of the metric's fall without each feature, with their intervals."""
    entries = importance["features"][:BARS][::-1]
    fig = new_figure(6.0, 0.9 + 0.26 * max(len(entries), 1))
    ax = fig.add_subplot()
    drops = np.array([e["drop"] or 0.0 for e in entries], dtype=float)
    low = np.array([e["low"] if e["low"] is not None else d for e, d in zip(entries, drops)])
    high = np.array([e["high"] if e["high"] is not None else d for e, d in zip(entries, drops)])
    y = np.arange(len(entries))
    err = np.abs(np.vstack([drops - low, high - drops]))
    ax.barh(y, drops, xerr=err, color="C0", error_kw={"ecolor": "0.35", "lw": 0.8})
    ax.axvline(0.0, color="0.5", lw=0.6)
    ax.set_yticks(y, [str(e["name"])[:28] for e in entries], fontsize=7)
    ax.set_xlabel(f"fall of {importance['metric']} when shuffled", fontsize=8)
    ax.set_title(f"permutation importance on {split} (n={importance['n']})", fontsize=9)
    _save(fig, path)
    return path.relative_to(project.root).as_posix()


def draw(project: Workspace, item: dict[str, Any], path: Path) -> None:
    """The row's most attributed features (bars; red for the predicted class, blue against)."""
    shown = item["attributions"][:SHOWN][::-1]
    fig = new_figure(5.2, 0.9 + 0.24 * max(len(shown), 1))
    ax = fig.add_subplot()
    values = [e["attribution"] for e in shown]
    colours = [attribution_colour(0.8 if v > 0 else -0.8) for v in values]
    ax.barh(range(len(shown)), values, color=colours)
    ax.axvline(0.0, color="0.5", lw=0.6)
    labels = [f"{e['feature'][:22]} = {_short(e['value'])}" for e in shown]
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.set_xlabel("attribution to the predicted class", fontsize=7)
    fig.suptitle(f"{item['sample_id']}: {caption(item)}", fontsize=8)
    save_item(project, fig, path, item)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "missing" if value is None else str(value)[:14]
