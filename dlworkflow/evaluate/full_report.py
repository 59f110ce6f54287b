"""The full evaluation of the trained model on one split: metrics with intervals, calibration,
slices, baselines and error analysis, with figures and a metrics JSON in
reports/evaluate/<split>/. Shared by `dlw evaluate` (train/val) and `dlw test` (test)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.baselines import baselines
from dlworkflow.evaluate.calibration import calibration_section, fit_temperature, softmax
from dlworkflow.evaluate.figures import confusion_png, mistakes_png, reliability_png
from dlworkflow.evaluate.mistakes import confident_mistakes, confused_pairs, mistakes_csv
from dlworkflow.evaluate.predict import label_indices, predict_logits
from dlworkflow.evaluate.report import metric_report
from dlworkflow.evaluate.slices import slice_report
from dlworkflow.fileio import atomic_write_json
from dlworkflow.store import image_tensor, load_split

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project

METRICS_FILE = "metrics.json"


def primary_metric(project: Project) -> tuple[str, bool]:
    """(metric, whether it is the problem's agreed one); accuracy when none is agreed yet."""
    metric = project.config.problem.primary_metric
    return (metric, True) if metric else ("accuracy", False)


def report_folder(project: Project, split: str) -> Path:
    return project.paths.reports / "evaluate" / split


def metrics_file(root: str | Path, split: str) -> str:
    """reports/evaluate/<split>/metrics.json of the project in `root`."""
    return str(Path(root) / "reports" / "evaluate" / split / METRICS_FILE)


def validation_temperature(project: Project, model: Any, meta: dict[str, Any]) -> float | None:
    """T fitted on the validation logits when evaluate.temperature_scaling is on, else None."""
    if not project.config.evaluate.temperature_scaling:
        return None
    rows = load_split(project, "val")
    y = label_indices(rows, list(meta["classes"]))
    logits = predict_logits(project, model, meta, rows)
    known = y >= 0
    return fit_temperature(logits[known], y[known])


def full_report(project: Project, model: Any, meta: dict[str, Any], rows: pd.DataFrame, *,
                split: str, temperature: float | None) -> dict[str, Any]:
    """Evaluate on `rows` (the caller reads them: `dlw test` alone reads the test set), write
    the figures and metrics.json, and return the report (JSON-ready; figure paths relative
    to the project folder)."""
    cfg = project.config.evaluate
    classes = list(meta["classes"])
    y_all = label_indices(rows, classes)
    known = y_all >= 0
    rows, y = rows[known].reset_index(drop=True), y_all[known]
    logits = predict_logits(project, model, meta, rows).astype(np.float64)
    proba = softmax(logits)
    metric, agreed = primary_metric(project)
    kw: dict[str, Any] = {"n_resamples": cfg.bootstrap_samples, "confidence": cfg.confidence,
                          "seed": project.config.seed}
    report = metric_report(y, proba, classes, **kw)
    report.update({
        "split": split, "model": str(meta.get("name")), "modality": meta.get("modality", "image"),
        "primary_metric": metric, "primary_metric_agreed": agreed,
        "unknown_labels": int((~known).sum()),
        "calibration": calibration_section(y, logits, temperature=temperature),
        "slices": slice_report(rows, y, proba, cfg.slices, metric=metric,
                               min_samples=cfg.slice_min_samples, **kw) if cfg.slices else [],
        "baselines": baselines(project, meta, rows, y, proba, metric=metric, **kw)
        if cfg.baselines and len(y) else None,
        "mistakes": confident_mistakes(
            rows, y, proba, classes,
            show_content=project.config.problem.data_sensitivity == "none"),
        "confused_pairs": confused_pairs(np.array(report["confusion"]), classes),
    })
    report["figures"] = _figures(project, meta, rows, report, split=split)
    report = json_safe(report)
    atomic_write_json(report_folder(project, split) / METRICS_FILE, report)
    return report


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


def _figures(project: Project, meta: dict[str, Any], rows: pd.DataFrame,
             report: dict[str, Any], *, split: str) -> dict[str, str]:
    folder = report_folder(project, split)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{report['model']} on {split} (n={report['n']})"
    figures = {
        "confusion": confusion_png(np.array(report["confusion"]), report["classes"],
                                   folder / "confusion.png", title=f"confusion: {name}"),
        "reliability": reliability_png(report["calibration"], folder / "reliability.png",
                                       title=f"reliability: {name}"),
    }
    if report["modality"] != "image":
        figures["mistakes_table"] = mistakes_csv(report["mistakes"], folder / "mistakes.csv")
    else:
        mistakes = report["mistakes"]
        images = []
        if mistakes:
            images = list(image_tensor(project, rows.iloc[[m["row"] for m in mistakes]],
                                       channels=int(meta["in_channels"]),
                                       size=tuple(meta["image_size"]),
                                       max_pixels=project.config.data.max_image_pixels))
        captions = [f"{m['true']} -> {m['predicted']} ({m['confidence']:.2f})"
                    for m in mistakes]
        figures["mistakes"] = mistakes_png(images, captions, folder / "mistakes.png",
                                           title=f"most confident mistakes: {name} "
                                           "(true -> predicted (confidence))")
    return {key: path.relative_to(project.root).as_posix() for key, path in figures.items()}


def headline(report: dict[str, Any]) -> str:
    metric = report["primary_metric"]
    m = report["metrics"][metric]
    interval = (f" ({report['confidence']:.0%} CI {m['low']:.4f}-{m['high']:.4f})"
                if m["low"] is not None else "")
    value = f"{m['value']:.4f}" if m["value"] is not None else "undefined"
    return f"{report['split']} {metric} {value}{interval}, n={report['n']}"
