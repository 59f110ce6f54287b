"""The key numbers of a full report as (label, value) rows, for the terminal and notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro F1",
    "weighted_f1": "weighted F1",
    "auroc": "AUROC (macro OvR)",
    "auprc": "AUPRC (macro OvR)",
    "ece": "ECE (15 bins)",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R^2",
    "mape": "MAPE (fraction)",
    "micro_f1": "micro F1",
    "map": "mAP (mean average precision)",
    "map50": "mAP@.5",
    "map75": "mAP@.75",
    "ap_small": "AP of small boxes",
    "ap_medium": "AP of medium boxes",
    "ap_large": "AP of large boxes",
    "miou": "mIoU (mean IoU over classes)",
    "dice": "Dice (mean over classes)",
    "pixel_accuracy": "pixel accuracy",
    "subset_accuracy": "subset accuracy",
    "hamming_loss": "Hamming loss",
}


def _interval(m: dict[str, Any], confidence: float) -> str:
    if m["value"] is None:
        return "undefined"
    if m["low"] is None:
        return f"{m['value']:.4f}"
    return f"{m['value']:.4f}  ({confidence:.0%} CI {m['low']:.4f} to {m['high']:.4f})"


FIGURE_CAPTIONS = {
    "confusion": "confusion matrix",
    "reliability": "reliability diagram",
    "mistakes": "most confident mistakes",
    "residuals": "predicted against true, and the residuals",
    "per_label": "precision, recall and F1 per label",
    "errors": "the largest errors",
    "per_class": "scores per class with their intervals",
    "box_errors": "false positives (red), missed boxes (orange) and confused classes "
    "(magenta) on the images with the most errors",
    "worst_masks": "the images with the lowest IoU: truth | prediction | wrong pixels",
}


def report_figures(report: dict[str, Any], root: str | Path) -> list[tuple[str, Path]]:
    """The report's PNG figures (paths in the report are relative to the project root)."""
    found = report.get("figures") or {}
    return [
        (caption, Path(root) / found[key])
        for key, caption in FIGURE_CAPTIONS.items()
        if key in found
    ]


def report_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of the report's task kind (reports without a kind: classification)."""
    return ROWS[report.get("kind") or "classification"](report)


def _classification_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    conf = report["confidence"]
    metrics = report["metrics"]
    rows = [(NAMES[name], _interval(metrics[name], conf)) for name in NAMES if name in metrics]
    ece = metrics.get("ece") or {}
    if ece.get("low") == 0.0 and (ece.get("value") or 0.0) > 0.0:
        rows.append(
            (
                "",
                "ECE is biased upward: its interval starts at 0 because values down "
                "to 0 cannot be ruled out",
            )
        )
    topk = [f"top-{k} {v:.4f}" for k, v in report["top_k"].items() if k != "1" and v is not None]
    if topk:
        rows.append(("top-k accuracy", ", ".join(topk)))
    rows.append(("calibration", _calibration(report["calibration"])))
    if report["unknown_labels"]:
        rows.append(
            ("left out", f"{report['unknown_labels']} samples with labels the model does not know")
        )
    if report.get("baselines"):
        rows.extend(_baseline_rows(report["baselines"], conf))
    if report["confused_pairs"]:
        rows.append(
            (
                "most confused",
                "; ".join(
                    f"{p['true']} -> {p['predicted']} x{p['count']}"
                    for p in report["confused_pairs"][:3]
                ),
            )
        )
    if report["mistakes"]:
        rows.append(
            (
                "confident mistakes",
                "; ".join(
                    f"{m['sample_id']}: {m['true']} -> {m['predicted']} ({m['confidence']:.2f})"
                    for m in report["mistakes"][:3]
                ),
            )
        )
    for entry in report["slices"]:
        rows.append((f"slices by {entry['column']}", _slices(entry)))
    rows.append(("figures", _folder(report)))
    return rows


def _calibration(cal: dict[str, Any]) -> str:
    text = f"ECE {cal['ece']:.4f}, NLL {cal['nll']:.4f}"
    if cal.get("scaled"):
        text += (
            f"; temperature T={cal['temperature']:.3f} (fitted on val): "
            f"ECE {cal['scaled']['ece']:.4f}, NLL {cal['scaled']['nll']:.4f}"
        )
    return text


def _baseline_rows(b: dict[str, Any], conf: float) -> list[tuple[str, str]]:
    metric = b["metric"]
    maj, simple = b["majority"], b["simple"]
    rows = [
        ("majority baseline", f"{metric} {maj['value']:.4f} (always {maj['class']!r})"),
        ("simple model", f"{metric} " + _interval(simple, conf) + f"; {_described(simple)}"),
    ]
    euclid = b.get("nn_euclidean")  # sequences: 1-NN Euclidean beside 1-NN DTW
    if euclid:
        rows.append(("1-NN Euclidean", f"{metric} " + _interval(euclid, conf)))
    d = b["difference"]
    return [*rows, _network_vs_simple(b, d, metric, conf, worse=d["high"] < 0)]


def _described(entry: dict[str, Any]) -> str:
    """A baseline's model, with how it was capped (its note) and the samples it was scored
    on when not all of them."""
    text = str(entry["model"])
    return f"{text} ({entry['note']})" if entry.get("note") else text


def _slices(entry: dict[str, Any]) -> str:
    parts = []
    for s in entry["slices"]:
        if s["low"] is not None:
            parts.append(
                f"{s['value']}: {s['metric']:.3f} [{s['low']:.3f}, {s['high']:.3f}] n={s['n']}"
            )
        else:
            parts.append(f"{s['value']}: n={s['n']} ({s['note']})")
    return "; ".join(parts)


def _folder(report: dict[str, Any]) -> str:
    figures = list((report.get("figures") or {}).values())
    if not figures:
        return "(none)"
    folder = figures[0].rsplit("/", 1)[0]
    names = ", ".join(f.rsplit("/", 1)[-1] for f in figures)
    return f"{folder}/ ({names}, metrics.json)"


def _task_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Regression and multi-label: every metric with its interval, the baselines, the kind's
    error analysis, slices and figures."""
    from dlworkflow.tasks import task_of

    conf = report["confidence"]
    task = task_of(report["task"])
    rows = [
        (
            NAMES.get(name, name)
            + ("" if task.metric(name).higher_is_better else " (lower is better)"),
            _interval(m, conf),
        )
        for name, m in report["metrics"].items()
    ]
    rows.append(("calibration", "not computed: it applies to single-label class probabilities"))
    if report["unknown_labels"]:
        rows.append(
            (
                "left out",
                f"{report['unknown_labels']} samples whose target the model cannot be judged on",
            )
        )
    if report.get("baselines"):
        rows.extend(_task_baseline_rows(report["baselines"], conf))
    rows.extend(ANALYSIS_ROWS[report["kind"]](report))
    for entry in report["slices"]:
        rows.append((f"slices by {entry['column']}", _slices(entry)))
    rows.append(("figures", _folder(report)))
    return rows


def _task_baseline_rows(b: dict[str, Any], conf: float) -> list[tuple[str, str]]:
    metric = b["metric"]
    rows = []
    for name, entry in b.items():
        if name in ("network", "simple", "difference") or not isinstance(entry, dict):
            continue
        what = (
            f"always {entry['prediction']:.4g}"
            if "prediction" in entry
            else "each label at its train prevalence"
            if "prevalence" in entry
            else name
        )
        value = "undefined" if entry["value"] is None else f"{entry['value']:.4f}"
        rows.append((f"{name} baseline", f"{metric} {value} ({what})"))
    simple = b["simple"]
    rows.append(("simple model", f"{metric} " + _interval(simple, conf) + f"; {simple['model']}"))
    d = b["difference"]
    if d["low"] is None:
        return rows
    worse = d["high"] < 0 if b["higher_is_better"] else d["low"] > 0
    return [*rows, _network_vs_simple(b, d, metric, conf, worse=worse)]


def _network_vs_simple(
    b: dict[str, Any], d: dict[str, Any], metric: str, conf: float, *, worse: bool
) -> tuple[str, str]:
    """The verdict row of the network against the simple model; `worse`: the interval of
    the difference lies on the network's worse side."""
    span = f"network - simple {metric}: {d['low']:+.4f} to {d['high']:+.4f} ({conf:.0%} CI)"
    if b["simple_as_good"] and worse:
        return ("WARNING", f"the simple model is BETTER than the network; {span}")
    if b["simple_as_good"]:
        return (
            "WARNING",
            f"the simple model is as good as the network (the interval of the "
            f"difference includes 0); {span}",
        )
    return ("network vs simple", f"the network is better; {span}")


def _regression_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    r = report.get("residuals") or {}
    if r.get("mean") is not None:
        rows.append(
            (
                "residuals",
                f"mean {r['mean']:+.4g} (positive: predicted too little), "
                f"sd {r['std']:.4g}, median |r| {r['median_abs']:.4g}, "
                f"max |r| {r['max_abs']:.4g}",
            )
        )
    if report.get("largest_errors"):
        rows.append(
            (
                "largest errors",
                "; ".join(
                    f"{e['sample_id']}: true {e['true']:.4g}, predicted {e['predicted']:.4g}"
                    for e in report["largest_errors"][:3]
                ),
            )
        )
    return rows


def _multilabel_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    labels = report.get("per_label") or []
    if labels:
        rows.append(
            (
                "F1 per label (support)",
                ", ".join(
                    f"{x['label']} {'-' if x['f1'] is None else format(x['f1'], '.2f')} "
                    f"({x['support']})"
                    for x in labels
                ),
            )
        )
    if report.get("most_wrong"):
        rows.append(
            (
                "most wrong labels",
                "; ".join(
                    f"{w['sample_id']}: {w['wrong']} wrong"
                    + (f", missed {', '.join(w['missed'])}" if w["missed"] else "")
                    + (f", extra {', '.join(w['extra'])}" if w["extra"] else "")
                    for w in report["most_wrong"][:3]
                ),
            )
        )
    return rows


def _detection_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    conf = report["confidence"]
    rows = [
        (
            "AP per class (true boxes)",
            "; ".join(
                f"{e['class']} {_interval(e['ap'], conf)} ({e['boxes']})"
                for e in report.get("per_class") or []
            ),
        )
    ]
    e = report.get("errors") or {}
    if e:
        rows.append(
            (
                "errors",
                f"of {e['boxes']} true boxes {e['found']} found, {e['missed']} missed, "
                f"{e['confused']} with the wrong class; {e['false_positives']} false "
                f"positives among {e['shown']} boxes shown ("
                + (
                    "the task's default score threshold"
                    if e["score_threshold"] is None
                    else f"score >= {e['score_threshold']:.2f}"
                )
                + f", IoU >= {e['match_iou']})",
            )
        )
    if e.get("confused_pairs"):
        rows.append(
            (
                "most confused",
                "; ".join(
                    f"{p['true']} -> {p['predicted']} x{p['count']}"
                    for p in e["confused_pairs"][:3]
                ),
            )
        )
    return rows


def _segmentation_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    conf = report["confidence"]
    rows = [
        (
            "IoU per class (pixels)",
            "; ".join(
                f"{e['class']} {_interval(e['iou'], conf)} ({e['pixels']:,})"
                for e in report.get("per_class") or []
            ),
        )
    ]
    worst = report.get("worst_images") or []
    if worst:
        rows.append(
            (
                "lowest IoU",
                "; ".join(
                    f"{w['sample_id']}: {w['iou']:.3f}"
                    + (f", missed {', '.join(w['missed'])}" if w["missed"] else "")
                    for w in worst[:3]
                ),
            )
        )
    return rows


ROWS = {
    "classification": _classification_rows,
    "regression": _task_rows,
    "multilabel": _task_rows,
    "detection": _task_rows,
    "segmentation": _task_rows,
}  # by task kind
ANALYSIS_ROWS = {
    "regression": _regression_rows,
    "multilabel": _multilabel_rows,
    "detection": _detection_rows,
    "segmentation": _segmentation_rows,
}
