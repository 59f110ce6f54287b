"""The full evaluation of the trained model on one split: metrics with intervals, calibration,
slices, baselines and error analysis, with figures and a metrics JSON in
reports/evaluate/<split>/. Shared by `dlw evaluate` (train/val) and `dlw test` (test).

What the report holds depends on the model's task kind (REPORTS): classification has class
probabilities, a confusion matrix, calibration and confident mistakes; regression and
multi-label have every metric of their task with its interval, their own baselines
(dlworkflow.evaluate.task_baselines) and error analysis (largest residuals and a residual
plot; per-label scores and the samples with the most wrong labels), and no calibration
("calibration": None). Detection and segmentation (dense tasks) are reported the same way,
their per-class scores with intervals and error analysis drawn on the images coming from
dlworkflow.evaluate.dense_report (its docstring lists their keys). Every kind shares the
keys metrics ({name: {value, low, high}}), n, confidence, split, model, modality,
primary_metric, primary_metric_agreed, unknown_labels, slices, baselines and figures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.auto_slices import TOP_FEATURES, proxy_ranking, slices_section
from dlworkflow.evaluate.baselines import baselines
from dlworkflow.evaluate.calibration import calibration_section, fit_temperature, softmax
from dlworkflow.evaluate.dense_report import (
    detection_analysis,
    detection_figures,
    segmentation_analysis,
    segmentation_figures,
)
from dlworkflow.evaluate.figures import (
    confusion_png,
    mistakes_png,
    occlusion_png,
    per_label_png,
    reliability_png,
    residuals_png,
)
from dlworkflow.evaluate.importance import importance_section, most_important
from dlworkflow.evaluate.mistakes import (
    SEP,
    confident_mistakes,
    confused_pairs,
    items_csv,
    largest_residuals,
    mistakes_csv,
    most_wrong_labels,
    per_label,
    residual_summary,
)
from dlworkflow.evaluate.report import metric_report
from dlworkflow.evaluate.sample_figures import (
    importance_bars_png,
    series_png,
    spectrogram_images,
)
from dlworkflow.evaluate.slices import FEATURE_PREFIX
from dlworkflow.evaluate.task_baselines import task_baselines
from dlworkflow.evaluate.task_scores import task_intervals
from dlworkflow.fileio import atomic_write_json
from dlworkflow.models.meta import image_size
from dlworkflow.models.predict import (
    label_indices,
    model_task,
    predict_logits,
    predict_outputs,
)
from dlworkflow.store import image_tensor, load_split
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.tasks import Task
    from dlworkflow.workspace import Workspace

METRICS_FILE = "metrics.json"


def primary_metric(project: Workspace) -> tuple[str, bool]:
    """(metric, whether it is the problem's agreed one); the task's default metric (accuracy
    for classification) when none is agreed yet."""
    metric = project.config.problem.primary_metric
    return (metric, True) if metric else (task_of(project.config.task).default_metric, False)


def report_folder(project: Workspace, split: str) -> Path:
    return project.paths.reports / "evaluate" / split


def metrics_file(root: str | Path, split: str) -> str:
    """reports/evaluate/<split>/metrics.json of the project in `root`."""
    return str(Path(root) / "reports" / "evaluate" / split / METRICS_FILE)


def validation_temperature(project: Workspace, model: Any, meta: ModelMeta) -> float | None:
    """T fitted on the validation logits when evaluate.temperature_scaling is on, else None."""
    if (
        not project.config.evaluate.temperature_scaling
        or not model_task(project, meta).single_label
    ):
        return None  # temperature scaling rescales a softmax: single-label tasks only
    rows = load_split(project, "val")
    y = label_indices(rows, list(meta["classes"]))
    logits = predict_logits(project, model, meta, rows)
    known = y >= 0
    return fit_temperature(logits[known], y[known])


def full_report(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    *,
    split: str,
    temperature: float | None,
) -> dict[str, Any]:
    """Evaluate on `rows` (the caller reads them: `dlw test` alone reads the test set), write
    the figures and metrics.json, and return the report (JSON-ready; figure paths relative
    to the project folder). The model's task kind chooses the report (REPORTS)."""
    task = model_task(project, meta)
    report = REPORTS[task.kind](
        project, task, model, meta, rows, split=split, temperature=temperature
    )
    report = json_safe(report)
    atomic_write_json(report_folder(project, split) / METRICS_FILE, report)
    return report


def classification_report(
    project: Workspace,
    task: Task,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    *,
    split: str,
    temperature: float | None,
) -> dict[str, Any]:
    """Class probabilities: metric_report, calibration, confusion and confident mistakes."""
    cfg = project.config.evaluate
    classes = list(meta["classes"])
    y_all = label_indices(rows, classes)
    known = y_all >= 0
    rows, y = rows[known].reset_index(drop=True), y_all[known]
    logits = predict_logits(project, model, meta, rows).astype(np.float64)
    proba = softmax(logits)
    metric, agreed = primary_metric(project)
    kw: dict[str, Any] = {
        "n_resamples": cfg.bootstrap_samples,
        "confidence": cfg.confidence,
        "seed": project.config.seed,
    }
    report = metric_report(y, proba, classes, **kw)
    report.update(
        {
            "split": split,
            "model": str(meta.get("name")),
            "modality": meta.get("modality", "image"),
            "primary_metric": metric,
            "primary_metric_agreed": agreed,
            "unknown_labels": int((~known).sum()),
            "calibration": calibration_section(y, logits, temperature=temperature),
            "baselines": baselines(project, meta, rows, y, proba, metric=metric, **kw)
            if cfg.baselines and len(y)
            else None,
            "mistakes": confident_mistakes(
                rows,
                y,
                proba,
                classes,
                show_content=project.config.problem.data_sensitivity == "none",
            ),
            "confused_pairs": confused_pairs(np.array(report["confusion"]), classes),
        }
    )
    report.update(
        _slices_and_importance(
            project, task, model, meta, rows, y, proba, {}, report, metric=metric, kw=kw
        )
    )
    report["figures"] = _figures(project, meta, rows, report, split=split)
    report["figures"].update(_importance_figure(project, report, split=split))
    return report


def task_report(
    project: Workspace,
    task: Task,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    *,
    split: str,
    temperature: float | None,
) -> dict[str, Any]:
    """Any task's outputs (regression, multi-label, detection, segmentation): every metric
    of the task with its BC interval, slices, the kind's baselines, error analysis and
    figures; no calibration."""
    cfg = project.config.evaluate
    names = list(meta["classes"])
    target = dict(meta.get("target") or {})
    size = image_size(meta) if task.dense else None  # masks are judged at the network's size
    y_all = task.encode(rows["label"].astype(str).tolist(), names, size=size)
    known = task.known(y_all)
    rows, y = rows[known].reset_index(drop=True), y_all[known]
    out = predict_outputs(project, model, meta, rows)
    metric, agreed = primary_metric(project)
    task.metric(metric)  # ConfigError when the task has no such metric
    kw: dict[str, Any] = {
        "n_resamples": cfg.bootstrap_samples,
        "confidence": cfg.confidence,
        "seed": project.config.seed,
    }
    report: dict[str, Any] = {
        "task": task.name,
        "kind": task.kind,
        "n": int(len(y)),
        "outputs": names,
        "confidence": cfg.confidence,
        "n_resamples": cfg.bootstrap_samples,
        "seed": project.config.seed,
        "metrics": task_intervals(task, y, out, target, **kw),
        "split": split,
        "model": str(meta.get("name")),
        "modality": meta.get("modality", "image"),
        "primary_metric": metric,
        "primary_metric_agreed": agreed,
        "unknown_labels": int((~known).sum()),
        "calibration": None,  # calibration of a softmax over classes: classification only
        "baselines": task_baselines(project, task, meta, rows, y, out, metric=metric, **kw)
        if cfg.baselines and len(y)
        else None,
    }
    report.update(
        _slices_and_importance(
            project, task, model, meta, rows, y, out, target, report, metric=metric, kw=kw
        )
    )
    show = project.config.problem.data_sensitivity == "none"
    analysis, figures = ANALYSES[task.kind]
    report.update(analysis(task, rows, y, out, target, names, show_content=show, **kw))
    report["figures"] = _relative(
        project, figures(project, meta, rows, y, out, report, split=split)
    )
    report["figures"].update(_importance_figure(project, report, split=split))
    return report


def _slices_and_importance(
    project: Workspace,
    task: Task,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    report: dict[str, Any],
    *,
    metric: str,
    kw: dict[str, Any],
) -> dict[str, Any]:
    """importance (on validation, evaluate.importance) first: the automatic slices of a table
    follow its most important features; then slices, the worst slice and inclusion."""
    importance = importance_section(project, model, meta, task, metric=metric, **kw)
    modality = str(meta.get("modality", "image"))
    important = most_important(importance, TOP_FEATURES)
    cfg = project.config.evaluate
    if modality == "tabular" and importance is None and not cfg.slices and cfg.auto_slices:
        train = load_split(project, "train")  # the proxy is fitted on train, not the judged rows
        features = [
            c.removeprefix(FEATURE_PREFIX) for c in train.columns if c.startswith(FEATURE_PREFIX)
        ]
        y_train = task.encode(train["label"].astype(str).tolist(), list(meta["classes"]))
        known = task.known(y_train)
        important = proxy_ranking(train[known], task, y_train[known], features)[:TOP_FEATURES]
    section = slices_section(
        project,
        task,
        rows,
        y,
        out,
        target,
        metric=metric,
        overall=(report["metrics"].get(metric) or {}).get("value"),
        modality=modality,
        important=important,
        **kw,
    )
    return {**section, "importance": importance}


def _importance_figure(project: Workspace, report: dict[str, Any], *, split: str) -> dict[str, str]:
    """Images: the occlusion grid as a heatmap (importance.png); series and audio: a bar
    chart per kind of occluded part (importance.png); other inputs: none (their importance
    is a list, in metrics.json and the report)."""
    imp = report.get("importance") or {}
    grid = imp.get("grid")
    if imp.get("groups") and imp.get("features"):
        path = importance_bars_png(
            imp["features"],
            imp["groups"],
            _folder(project, split) / "importance.png",
            metric=str(imp.get("metric")),
            title=f"occlusion on val (n={imp.get('n')}): fall of {imp.get('metric')}",
        )
        return _relative(project, {"importance": path})
    if not grid:
        return {}
    falls = {e["name"]: e["drop"] for e in imp.get("features") or []}
    cells = np.array(
        [[falls.get(f"r{i}c{j}") for j in range(grid)] for i in range(grid)], dtype=float
    )
    path = occlusion_png(
        cells,
        _folder(project, split) / "importance.png",
        metric=str(imp.get("metric")),
        title=f"occlusion on val (n={imp.get('n')}): fall of {imp.get('metric')}",
    )
    return _relative(project, {"importance": path})


def _regression_analysis(
    task: Task,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    names: list[str],
    *,
    show_content: bool,
    **_: Any,
) -> dict[str, Any]:
    return {
        "residuals": residual_summary(y, out),
        "largest_errors": largest_residuals(rows, y, out, show_content=show_content),
    }


def _multilabel_analysis(
    task: Task,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    names: list[str],
    *,
    show_content: bool,
    **_: Any,
) -> dict[str, Any]:
    # the task decides which labels are predicted (its thresholds); its "labels" column
    # joins them by "|" as the manifest does
    predicted = [set(p.split(SEP)) for p in task.prediction_columns(out, names, target)["labels"]]
    decided = np.array(
        [[name in chosen for name in names] for chosen in predicted], dtype=bool
    ).reshape(len(y), len(names))
    thresholds = [float(t) for t in target.get("thresholds") or [0.5] * len(names)]
    return {
        "thresholds": dict(zip(names, thresholds)),
        "per_label": per_label(y, decided, names, np.array(thresholds)),
        "most_wrong": most_wrong_labels(rows, y, decided, names, show_content=show_content),
    }


def _regression_figures(
    project: Workspace,
    meta: ModelMeta,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    report: dict[str, Any],
    *,
    split: str,
) -> dict[str, Path]:
    folder = _folder(project, split)
    name = f"{report['model']} on {split} (n={report['n']})"
    figures = {
        "residuals": residuals_png(y, out, folder / "residuals.png", title=f"residuals: {name}")
    }
    errors = report["largest_errors"]
    if report["modality"] != "image":
        figures["errors_table"] = items_csv(
            errors, ["sample_id", "true", "predicted", "residual"], folder / "largest_errors.csv"
        )
    drawn = samples_png(
        project,
        meta,
        rows,
        [e["row"] for e in errors],
        [f"{e['true']:.3g} -> {e['predicted']:.3g}" for e in errors],
        folder / "largest_errors.png",
        title=f"largest errors: {name} (true -> predicted)",
    )
    if drawn is not None:
        figures["errors"] = drawn
    return figures


def _multilabel_figures(
    project: Workspace,
    meta: ModelMeta,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    report: dict[str, Any],
    *,
    split: str,
) -> dict[str, Path]:
    folder = _folder(project, split)
    name = f"{report['model']} on {split} (n={report['n']})"
    figures = {
        "per_label": per_label_png(
            report["per_label"], folder / "per_label.png", title=f"per label: {name}"
        ),
        "per_label_table": items_csv(
            report["per_label"],
            ["label", "support", "predicted", "precision", "recall", "f1", "threshold"],
            folder / "per_label.csv",
        ),
    }
    wrong = report["most_wrong"]
    if report["modality"] != "image":
        figures["errors_table"] = items_csv(
            wrong,
            ["sample_id", "true", "predicted", "wrong", "missed", "extra"],
            folder / "most_wrong.csv",
        )
    drawn = samples_png(
        project,
        meta,
        rows,
        [w["row"] for w in wrong],
        [
            " ".join([f"-{m}" for m in w["missed"]] + [f"+{e}" for e in w["extra"]])[:40]
            for w in wrong
        ],
        folder / "most_wrong.png",
        title=f"most wrong labels: {name} (-missed +extra)",
    )
    if drawn is not None:
        figures["errors"] = drawn
    return figures


def _folder(project: Workspace, split: str) -> Path:
    folder = report_folder(project, split)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _relative(project: Workspace, figures: dict[str, Path]) -> dict[str, str]:
    return {key: path.relative_to(project.root).as_posix() for key, path in figures.items()}


def samples_png(
    project: Workspace,
    meta: ModelMeta,
    rows: pd.DataFrame,
    indices: list[int],
    captions: list[str],
    path: Path,
    *,
    title: str,
) -> Path | None:
    """The rows drawn with their captions, as the modality shows a sample: images as
    thumbnails, clips as small log-mel spectrograms, series as their curves (one line per
    channel); None for texts and tables (their error views are CSV tables)."""
    modality = meta.get("modality", "image")
    if modality == "image":
        return mistakes_png(_thumbnails(project, meta, rows, indices), captions, path, title=title)
    if modality == "audio":
        from dlworkflow.models.predict import clip_settings_of
        from dlworkflow.store.clips import clip_tensor

        settings = clip_settings_of(project, meta)
        waves = clip_tensor(project, rows.iloc[indices], settings) if indices else None
        images = (
            spectrogram_images(np.asarray(waves), sample_rate=settings.sample_rate)
            if waves is not None
            else []
        )
        return mistakes_png(images, captions, path, title=f"{title}; log-mel spectrograms")
    if modality == "sequence":
        from dlworkflow.evaluate.nearest_baselines import read_rows

        return series_png(read_rows(rows.iloc[indices]), captions, path, title=title)
    return None


def _thumbnails(
    project: Workspace, meta: ModelMeta, rows: pd.DataFrame, indices: list[int]
) -> list[np.ndarray]:
    """The images of these rows at the model's format (uint8 CHW)."""
    if not indices:
        return []
    return list(
        image_tensor(
            project,
            rows.iloc[indices],
            channels=int(meta["in_channels"]),
            size=image_size(meta),
            max_pixels=project.config.data.max_image_pixels,
        )
    )


Report = Callable[..., dict[str, Any]]
REPORTS: dict[str, Report] = {  # by task kind
    "classification": classification_report,
    "regression": task_report,
    "multilabel": task_report,
    "detection": task_report,
    "segmentation": task_report,
}
ANALYSES: dict[str, tuple[Callable[..., dict[str, Any]], Callable[..., dict[str, Path]]]] = {
    "regression": (_regression_analysis, _regression_figures),
    "multilabel": (_multilabel_analysis, _multilabel_figures),
    "detection": (detection_analysis, detection_figures),
    "segmentation": (segmentation_analysis, segmentation_figures),
}


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _figures(
    project: Workspace, meta: ModelMeta, rows: pd.DataFrame, report: dict[str, Any], *, split: str
) -> dict[str, str]:
    folder = report_folder(project, split)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{report['model']} on {split} (n={report['n']})"
    figures = {
        "confusion": confusion_png(
            np.array(report["confusion"]),
            report["classes"],
            folder / "confusion.png",
            title=f"confusion: {name}",
        ),
        "reliability": reliability_png(
            report["calibration"], folder / "reliability.png", title=f"reliability: {name}"
        ),
    }
    mistakes = report["mistakes"]
    if report["modality"] != "image":
        figures["mistakes_table"] = mistakes_csv(mistakes, folder / "mistakes.csv")
    drawn = samples_png(
        project,
        meta,
        rows,
        [m["row"] for m in mistakes],
        [f"{m['true']} -> {m['predicted']} ({m['confidence']:.2f})" for m in mistakes],
        folder / "mistakes.png",
        title=f"most confident mistakes: {name} (true -> predicted (confidence))",
    )
    if drawn is not None:
        figures["mistakes"] = drawn
    return {key: path.relative_to(project.root).as_posix() for key, path in figures.items()}


def headline(report: dict[str, Any]) -> str:
    metric = report["primary_metric"]
    m = report["metrics"][metric]
    interval = (
        f" ({report['confidence']:.0%} CI {m['low']:.4f}-{m['high']:.4f})"
        if m["low"] is not None
        else ""
    )
    value = f"{m['value']:.4f}" if m["value"] is not None else "undefined"
    return f"{report['split']} {metric} {value}{interval}, n={report['n']}"
