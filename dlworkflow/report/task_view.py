"""How the report, the model card and the audit speak about the model's task, per target kind
(`task.kind`): what dataset.json counts, what the model outputs, the error analysis shown after
the test metrics, the key figure, and which classification-only pieces (calibration, confusion
matrix, class balance) do not apply and why.

Each kind is a `TaskView` in `VIEWS`; the report reads metrics.json generically (every metric
in report["metrics"] with its direction from the task's MetricSpec) and hands the kind's own
keys (per_class, residuals, per_label, ...) to its view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import ConfigError
from dlworkflow.report import dense_view, figures
from dlworkflow.report.html import figure, paragraph, png_figure, table
from dlworkflow.tasks import task_of
from dlworkflow.tasks.base import MetricSpec

if TYPE_CHECKING:
    from pathlib import Path

    from dlworkflow.tasks.base import Task

SHOWN_ERRORS = 10  # largest residuals / most wrong samples listed in the report


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def model_task(config: dict[str, Any], trained: dict[str, Any] | None) -> Task:
    """The trained model's task (model.json `task`), else the configured one."""
    return task_of(str((trained or {}).get("task") or config.get("task")))


def spec(task: Task, metric: str | None) -> MetricSpec:
    """The metric's spec; a higher-is-better spec for a name the task does not know."""
    try:
        return task.metric(str(metric))
    except ConfigError:
        return MetricSpec(str(metric))


def worse(spec_: MetricSpec) -> str:
    """The comparison that misses the target: "<" when higher is better, ">" otherwise."""
    return "<" if spec_.higher_is_better else ">"


def not_applicable(task: Task, what: str, why: str) -> str:
    return f"{what}: not applicable to {task.name} ({why})."


# --- the error analysis in the results section -----------------------------------------------


def _classification_before(root: Path, m: dict[str, Any], task: Task) -> str:
    body = ["<h3>Per class</h3>"]
    bars = figures.per_class_bars(m.get("per_class") or [], "test")
    if bars:
        body.append(png_figure(bars, "Recall and precision per class on the test set."))
    body.append(
        table(
            ["class", "precision", "recall", "F1", "support"],
            [
                (
                    c["class"],
                    fmt(c.get("precision"), 3),
                    fmt(c.get("recall"), 3),
                    fmt(c.get("f1"), 3),
                    c.get("support"),
                )
                for c in m.get("per_class") or []
            ],
        )
    )
    return "".join(body)


def _classification_calibration(root: Path, m: dict[str, Any], task: Task) -> str:
    body = ["<h3>Calibration</h3>"]
    cal = m.get("calibration") or {}
    body.append(
        paragraph(
            f"Expected calibration error {fmt(cal.get('ece'), 3)}, negative "
            f"log-likelihood {fmt(cal.get('nll'), 3)}."
        )
    )
    figs = m.get("figures") or {}
    if figs.get("reliability"):
        body.append(figure(root / figs["reliability"], "Reliability: accuracy against confidence."))
    return "".join(body)


def _classification_after(root: Path, m: dict[str, Any], task: Task) -> str:
    body = ["<h3>Successes and failures</h3>"]
    figs = m.get("figures") or {}
    per_class = sorted(m.get("per_class") or [], key=lambda c: -(c.get("f1") or 0))
    if per_class:
        best = ", ".join(f"{c['class']} (F1 {c['f1']:.3f})" for c in per_class[:3])
        body.append(
            paragraph(
                f"Best recognised classes: {best}. Top-k accuracy: "
                + ", ".join(f"top-{k} {fmt(a, 3)}" for k, a in (m.get("top_k") or {}).items())
                + "."
            )
        )
    pairs = m.get("confused_pairs") or []
    if pairs:
        body.append(
            table(
                ["true", "predicted as", "count", "share of the true class"],
                [
                    (p["true"], p["predicted"], p["count"], f"{p['share_of_true']:.1%}")
                    for p in pairs
                ],
            )
        )
    if figs.get("mistakes"):
        body.append(
            figure(
                root / figs["mistakes"],
                "The most confident mistakes (true -> predicted (confidence)).",
            )
        )
    elif m.get("mistakes"):
        body.append(
            table(
                ["sample", "true", "predicted", "confidence"],
                [
                    (
                        x.get("sample_id"),
                        x.get("true"),
                        x.get("predicted"),
                        fmt(x.get("confidence"), 3),
                    )
                    for x in m["mistakes"][:10]
                ],
            )
        )
    return "".join(body)


def _no_calibration(why: str) -> Callable[[Path, dict[str, Any], Task], str]:
    def render(root: Path, m: dict[str, Any], task: Task) -> str:
        return "<h3>Calibration</h3>" + paragraph(not_applicable(task, "Calibration", why))

    return render


def _regression_before(root: Path, m: dict[str, Any], task: Task) -> str:
    r = m.get("residuals") or {}
    body = [
        "<h3>Residuals (predicted - true, in the target's units)</h3>",
        table(
            None,
            [
                ("mean (bias)", fmt(r.get("mean"), 3)),
                ("std", fmt(r.get("std"), 3)),
                ("median |residual|", fmt(r.get("median_abs"), 3)),
                ("largest |residual|", fmt(r.get("max_abs"), 3)),
            ],
        ),
    ]
    figs = m.get("figures") or {}
    if figs.get("residuals"):
        body.append(
            figure(
                root / figs["residuals"],
                "Residual plot: residual against the predicted value on the test "
                "set (a pattern means the errors depend on the value).",
            )
        )
    return "".join(body)


def _regression_after(root: Path, m: dict[str, Any], task: Task) -> str:
    errors = m.get("largest_errors") or []
    body = ["<h3>Largest residuals</h3>"]
    figs = m.get("figures") or {}
    if figs.get("errors"):
        body.append(figure(root / figs["errors"], "The largest errors (true -> predicted)."))
    body.append(
        table(
            ["sample", "true", "predicted", "residual"],
            [
                (
                    e.get("sample_id"),
                    fmt(e.get("true"), 4),
                    fmt(e.get("predicted"), 4),
                    fmt(e.get("residual"), 4),
                )
                for e in errors[:SHOWN_ERRORS]
            ],
        )
        if errors
        else paragraph("No errors were recorded.")
    )
    return "".join(body)


def _multilabel_before(root: Path, m: dict[str, Any], task: Task) -> str:
    body = ["<h3>Per label</h3>"]
    figs = m.get("figures") or {}
    if figs.get("per_label"):
        body.append(
            figure(root / figs["per_label"], "Precision, recall and F1 per label on the test set.")
        )
    body.append(
        table(
            ["label", "support", "predicted", "precision", "recall", "F1", "threshold"],
            [
                (
                    c.get("label"),
                    c.get("support"),
                    c.get("predicted"),
                    fmt(c.get("precision"), 3),
                    fmt(c.get("recall"), 3),
                    fmt(c.get("f1"), 3),
                    fmt(c.get("threshold"), 2),
                )
                for c in m.get("per_label") or []
            ],
        )
    )
    body.append(
        paragraph(
            "A label is predicted where its probability reaches its threshold, "
            "tuned on validation for the label's F1."
        )
    )
    return "".join(body)


def _multilabel_after(root: Path, m: dict[str, Any], task: Task) -> str:
    wrong = m.get("most_wrong") or []
    body = ["<h3>Samples with the most wrong labels</h3>"]
    figs = m.get("figures") or {}
    if figs.get("errors"):
        body.append(figure(root / figs["errors"], "Most wrong samples (-missed +extra)."))
    body.append(
        table(
            ["sample", "true", "predicted", "missed", "extra"],
            [
                (
                    w.get("sample_id"),
                    w.get("true"),
                    w.get("predicted"),
                    ", ".join(w.get("missed") or []),
                    ", ".join(w.get("extra") or []),
                )
                for w in wrong[:SHOWN_ERRORS]
            ],
        )
        if wrong
        else paragraph("No sample has a wrong label.")
    )
    return "".join(body)


# --- the model card and the audit ------------------------------------------------------------


def _classification_outputs(task: Task, names: list[str], target: dict[str, Any]) -> str:
    return (
        f"one class of the {len(names)} ({', '.join(names[:20])}"
        f"{', ...' if len(names) > 20 else ''}) with the probability of every class "
        "(softmax)"
    )


def _regression_outputs(task: Task, names: list[str], target: dict[str, Any]) -> str:
    scaling = (
        f"; the network predicts the standardised target and its outputs are scaled "
        f"back with the train split's mean {target['mean']:.6g} and standard deviation "
        f"{target['std']:.6g}"
        if {"mean", "std"} <= set(target)
        else ""
    )
    return "one number per sample, in the target's units" + scaling


def _multilabel_outputs(task: Task, names: list[str], target: dict[str, Any]) -> str:
    thresholds = target.get("thresholds") or []
    tuned = (
        ", ".join(f"{n} {t:g}" for n, t in zip(names, thresholds))
        if thresholds
        else "0.5 for every label"
    )
    return (
        f"a set of labels out of {len(names)}, with each label's probability (sigmoid); a "
        f"label is predicted where its probability reaches its threshold, tuned on "
        f"validation: {tuned}"
    )


def _classification_debug(m: dict[str, Any], task: Task) -> str:
    return (
        f"{len(m.get('mistakes') or [])} most confident mistakes, "
        f"{len(m.get('confused_pairs') or [])} confused pairs, calibration"
    )


def _regression_debug(m: dict[str, Any], task: Task) -> str:
    return (
        f"residual summary and plot, the {len(m.get('largest_errors') or [])} largest "
        "residuals; "
        + not_applicable(
            task, "calibration and confusion matrix", "it predicts a value, not class probabilities"
        )
    )


def _multilabel_debug(m: dict[str, Any], task: Task) -> str:
    return (
        f"per-label precision/recall/F1 of {len(m.get('per_label') or [])} labels with "
        f"their thresholds, the {len(m.get('most_wrong') or [])} samples with the most "
        "wrong labels; "
        + not_applicable(
            task, "calibration and confusion matrix", "each label is decided on its own"
        )
    )


def _classification_card(m: dict[str, Any]) -> list[str]:
    return []  # weakest classes: model_card._quantitative


def _regression_card(m: dict[str, Any]) -> list[str]:
    r = m.get("residuals") or {}
    lines = [
        f"- Residuals (predicted - true): mean {fmt(r.get('mean'), 3)}, std "
        f"{fmt(r.get('std'), 3)}, median |residual| {fmt(r.get('median_abs'), 3)}, "
        f"largest {fmt(r.get('max_abs'), 3)}"
    ]
    errors = m.get("largest_errors") or []
    if errors:
        lines.append(
            "- Largest residuals: "
            + ", ".join(
                f"{e.get('sample_id')} (true {fmt(e.get('true'), 4)}, predicted "
                f"{fmt(e.get('predicted'), 4)})"
                for e in errors[:3]
            )
        )
    return lines


def _multilabel_card(m: dict[str, Any]) -> list[str]:
    labels = [c for c in m.get("per_label") or [] if c.get("f1") is not None]
    if not labels:
        return []
    weak = sorted(labels, key=lambda c: (c["f1"], str(c.get("label"))))[:3]
    return [
        "- Weakest labels: "
        + ", ".join(
            f"{c['label']} (F1 {c['f1']:.3f}, n={c.get('support')}, threshold "
            f"{fmt(c.get('threshold'), 2)})"
            for c in weak
        )
    ]


Render = Callable[["Path", dict[str, Any], "Task"], str]


@dataclass(frozen=True)
class TaskView:
    counted: str  # what dataset.json's class_counts counts, singular
    counted_plural: str
    by_value: bool  # class_counts are value ranges, listed in the order of their values
    imbalance: str | None  # what an imbalance ratio compares ("classes"); None: not applicable
    classes_declared: bool  # data.classes can declare the expected targets
    key_figures: tuple[tuple[str, str], ...]  # (metrics.json figure key, caption)
    before: Render  # after the metrics table
    calibration: Render
    after: Render  # after the baselines
    outputs: Callable[[Task, list[str], dict[str, Any]], str]  # what the model answers
    debug: Callable[[dict[str, Any], Task], str]  # the audit's error-analysis evidence
    predicted: str  # what `dlw predict` shows for an input
    card: Callable[[dict[str, Any]], list[str]]  # model card: quantitative analyses
    reported: str  # model card: what else is reported besides the metrics
    count_unit: str = "samples"  # what dataset.json's class_counts count per class
    count_total: str | None = None  # the class_counts add up to a total of these (boxes)
    count_note: str = ""  # how the class_counts count, when it needs saying
    # the data section's part from explore's record of the targets (summary["target"])
    data_extra: Callable[[dict[str, Any]], str] | None = None


VIEWS: dict[str, TaskView] = {
    "classification": TaskView(
        counted="class",
        counted_plural="classes",
        by_value=False,
        imbalance="classes",
        classes_declared=True,
        key_figures=(
            (
                "confusion",
                "Confusion matrix on the sealed test set: rows are the true "
                "classes, the diagonal the correct predictions.",
            ),
        ),
        before=_classification_before,
        calibration=_classification_calibration,
        after=_classification_after,
        outputs=_classification_outputs,
        debug=_classification_debug,
        card=_classification_card,
        predicted="every class's probability",
        reported="expected calibration error, per-class precision/recall/F1, the confusion "
        "matrix and the most confident mistakes",
    ),
    "regression": TaskView(
        counted="value range",
        counted_plural="value ranges",
        by_value=True,
        imbalance=None,
        classes_declared=False,
        key_figures=(("residuals", "Residuals against predicted values on the sealed test set."),),
        before=_regression_before,
        calibration=_no_calibration("it predicts a value, not class probabilities"),
        after=_regression_after,
        outputs=_regression_outputs,
        debug=_regression_debug,
        predicted="the predicted value in the target's units",
        card=_regression_card,
        reported="residuals (bias, spread, residual plot) and the largest residuals; "
        "calibration and the confusion matrix do not apply to a predicted value",
    ),
    "multilabel": TaskView(
        counted="label",
        counted_plural="labels",
        by_value=False,
        imbalance="labels",
        classes_declared=True,
        key_figures=(("per_label", "Precision, recall and F1 per label on the sealed test set."),),
        before=_multilabel_before,
        calibration=_no_calibration(
            "each label is decided by its own threshold; the "
            "thresholds are tuned on validation instead"
        ),
        after=_multilabel_after,
        outputs=_multilabel_outputs,
        debug=_multilabel_debug,
        predicted="the predicted labels and every label's probability",
        card=_multilabel_card,
        reported="per-label precision/recall/F1 with each label's threshold and the samples "
        "with the most wrong labels; a confusion matrix and softmax calibration do not "
        "apply to independent per-label decisions",
    ),
    "detection": TaskView(
        counted="class",
        counted_plural="classes",
        by_value=False,
        imbalance="classes",
        classes_declared=True,
        key_figures=(
            (
                "box_errors",
                "Predictions on the sealed test set: the images with the most errors, "
                "the predicted and the missed boxes drawn.",
            ),
            ("per_class", "AP per class and by box size on the sealed test set."),
        ),
        before=dense_view.detection_before,
        calibration=dense_view.detection_calibration,
        after=dense_view.detection_after,
        outputs=dense_view.detection_outputs,
        debug=dense_view.detection_debug,
        predicted="the boxes found, each with its class and score",
        card=dense_view.detection_card,
        reported="AP per class and by box size (small, medium, large), the found, missed, "
        "confused and false-positive boxes, and the test images with the most errors drawn; "
        "a confusion matrix and calibration do not apply to boxes",
        count_unit="boxes",
        count_total="boxes",
        data_extra=dense_view.detection_data,
    ),
    "segmentation": TaskView(
        counted="class",
        counted_plural="classes",
        by_value=False,
        imbalance="classes",
        classes_declared=True,
        key_figures=(
            (
                "worst_masks",
                "The test images with the lowest IoU on the sealed test set: the true "
                "mask, the predicted mask and the wrong pixels.",
            ),
            ("per_class", "IoU and Dice per class on the sealed test set."),
        ),
        before=dense_view.segmentation_before,
        calibration=dense_view.segmentation_calibration,
        after=dense_view.segmentation_after,
        outputs=dense_view.segmentation_outputs,
        debug=dense_view.segmentation_debug,
        predicted="a class for every pixel (a mask) and each class's share of it",
        card=dense_view.segmentation_card,
        reported="IoU and Dice per class with each class's pixel share, the IoU per image, "
        "and overlays of the test images with the lowest IoU; a confusion matrix and "
        "calibration of per-pixel probabilities are not reported",
        count_unit="images",
        count_note="An image counts once for every class its mask shows.",
        data_extra=dense_view.segmentation_data,
    ),
}


def view(task: Task) -> TaskView:
    return VIEWS.get(task.kind, VIEWS["classification"])


def metric_rows(task: Task, metrics: dict[str, Any]) -> list[tuple[str, MetricSpec, Any]]:
    """(name, spec, {value, low, high}) of every metric metrics.json reports: in the task's
    order (classification: in the file's order, as before), unknown names last."""
    rows = [
        (name, spec(task, name), item)
        for name, item in (metrics or {}).items()
        if isinstance(item, dict)
    ]
    if task.single_label:
        return rows
    order = {m.name: i for i, m in enumerate(task.metrics)}
    return sorted(rows, key=lambda r: order.get(r[0], len(order)))


def range_start(name: str) -> float:
    """The first number of a value range ("25 to 59" -> 25.0); inf when there is none."""
    try:
        return float(name.split(" to ")[0])
    except ValueError:
        return float("inf")


def metric_label(name: str, spec_: MetricSpec) -> str:
    return name if spec_.higher_is_better else f"{name} (lower is better)"
