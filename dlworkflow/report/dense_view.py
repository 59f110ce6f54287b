"""What the report, the model card and the audit say about the dense image tasks
(task_view.VIEWS "detection" and "segmentation"), read from the keys evaluate's full report
writes (evaluate/dense_report.py):

- detection: per_class [{class, boxes, detections, ap: {value, low, high}, ap50}], AP by box
  size in metrics (ap_small, ap_medium, ap_large: COCO's areas, in pixels of the network's
  input), errors {match_iou, score_threshold, boxes, found, missed, confused,
  false_positives, confused_pairs, worst_images}; figures per_class (AP per class and by box
  size) and errors (the test images with the most errors, the boxes drawn);
- segmentation: per_class [{class, pixels, predicted_pixels, iou, dice}], image_iou {median,
  worst}, worst_images [{sample_id, iou, pixel_accuracy, missed, added}]; figures per_class
  (IoU and Dice per class) and errors (the worst images: truth, prediction, wrong pixels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlworkflow.report.html import figure, paragraph, table

if TYPE_CHECKING:
    from pathlib import Path

    from dlworkflow.tasks.base import Task

SHOWN = 10  # rows of the worst-image tables
SIZES = (
    ("small", "area < 32² px"),
    ("medium", "32² to 96² px"),
    ("large", "area > 96² px"),
)


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _ci(item: Any) -> str:
    if not isinstance(item, dict) or item.get("low") is None:
        return "n/a"
    return f"{_fmt(item.get('low'))} to {_fmt(item.get('high'))}"


def _value(item: Any) -> float | None:
    value = item.get("value") if isinstance(item, dict) else item
    return None if value is None else float(value)


def _not_applicable(task: Task, what: str, why: str) -> str:
    return f"{what}: not applicable to {task.name} ({why})."


# --- detection -------------------------------------------------------------------------------


def detection_before(root: Path, m: dict[str, Any], task: Task) -> str:
    """AP per class and by box size, with their intervals."""
    body = ["<h3>AP per class and by box size</h3>"]
    figs = m.get("figures") or {}
    if figs.get("per_class"):
        body.append(
            figure(root / figs["per_class"], "AP per class and AP by box size on the test set.")
        )
    per_class = m.get("per_class") or []
    body.append(
        table(
            ["class", "true boxes", "detections", "AP", "AP CI", "AP@.5", "AP@.5 CI"],
            [
                (
                    c.get("class"),
                    c.get("boxes"),
                    c.get("detections"),
                    _fmt(_value(c.get("ap"))),
                    _ci(c.get("ap")),
                    _fmt(_value(c.get("ap50"))),
                    _ci(c.get("ap50")),
                )
                for c in per_class
            ],
        )
        if per_class
        else paragraph("No per-class AP was recorded (run `dlw test` again).")
    )
    metrics = m.get("metrics") or {}
    rows = [
        (size, words, _fmt(_value(metrics.get(f"ap_{size}"))), _ci(metrics.get(f"ap_{size}")))
        for size, words in SIZES
        if f"ap_{size}" in metrics
    ]
    if rows:
        body.append(table(["box size", "COCO area (network input)", "AP", "CI"], rows))
        body.append(
            paragraph(
                "AP is COCO's: averaged over IoU thresholds 0.5 to 0.95; a size with no true "
                "box in the test set has no AP (n/a)."
            )
        )
    return "".join(body)


def detection_calibration(root: Path, m: dict[str, Any], task: Task) -> str:
    errors = m.get("errors") or {}
    shown = errors.get("score_threshold")
    return "<h3>Calibration</h3>" + paragraph(
        _not_applicable(
            task,
            "Calibration",
            "box scores rank detections; the score from which a box is shown"
            + (f" ({float(shown):.3g})" if isinstance(shown, (int, float)) else "")
            + " is tuned on validation for F1 at IoU 0.5 instead",
        )
    )


def detection_after(root: Path, m: dict[str, Any], task: Task) -> str:
    """Predictions drawn on the test images with the most errors, and the error counts."""
    errors = m.get("errors") or {}
    figs = m.get("figures") or {}
    body = ["<h3>Predictions on test images</h3>"]
    if figs.get("box_errors"):
        body.append(
            figure(
                root / figs["box_errors"],
                "The test images with the most errors, the predicted boxes drawn: found, "
                "false positives and confused classes, with the true boxes the model missed.",
            )
        )
    if errors:
        shown = errors.get("score_threshold")
        body.append(
            paragraph(
                f"Of {errors.get('boxes', 0):,} true boxes, {errors.get('found', 0):,} were "
                f"found, {errors.get('missed', 0):,} missed and {errors.get('confused', 0):,} "
                f"found with the wrong class; {errors.get('false_positives', 0):,} shown boxes "
                "match no true box (boxes shown: score >= "
                + (f"{float(shown):.3g}" if isinstance(shown, (int, float)) else "the default")
                + f"; a match: IoU >= {errors.get('match_iou', 0.5)})."
            )
        )
    pairs = errors.get("confused_pairs") or []
    if pairs:
        body.append(
            table(
                ["true", "predicted as", "boxes"],
                [(p.get("true"), p.get("predicted"), p.get("count")) for p in pairs],
            )
        )
    worst = errors.get("worst_images") or []
    if worst:
        body.append(
            table(
                ["image", "errors", "missed", "false positives", "confused"],
                [
                    (
                        w.get("sample_id"),
                        w.get("errors"),
                        len(w.get("missed") or []),
                        len(w.get("false_positives") or []),
                        len(w.get("confused") or []),
                    )
                    for w in worst[:SHOWN]
                ],
            )
        )
    if len(body) == 1:
        body.append(paragraph("No error analysis was recorded (run `dlw test` again)."))
    return "".join(body)


def detection_outputs(task: Task, names: list[str], target: dict[str, Any]) -> str:
    shown = target.get("score_threshold")
    return (
        f"boxes: for each object found, its box (x1, y1, x2, y2 in the request image's "
        f"pixels), its class (one of {len(names)}: {', '.join(names[:20])}"
        f"{', ...' if len(names) > 20 else ''}) and a score; at most "
        f"{target.get('max_detections', 100)} boxes per image after per-class non-maximum "
        f"suppression (IoU {target.get('nms_iou', 'n/a')}); the server shows the boxes whose "
        "score reaches "
        + (f"{float(shown):.3g}" if isinstance(shown, (int, float)) else "the score threshold")
        + " (tuned on validation for F1 at IoU 0.5)"
    )


def detection_debug(m: dict[str, Any], task: Task) -> str:
    errors = m.get("errors") or {}
    return (
        f"AP of {len(m.get('per_class') or [])} classes and by box size; found, missed, "
        f"confused and false-positive boxes counted and the "
        f"{len(errors.get('worst_images') or [])} test images with the most errors drawn; "
        + _not_applicable(task, "calibration and confusion matrix", "it predicts boxes")
    )


def detection_card(m: dict[str, Any]) -> list[str]:
    lines = []
    scored = [c for c in m.get("per_class") or [] if _value(c.get("ap")) is not None]
    if scored:
        weak = sorted(scored, key=lambda c: (_value(c.get("ap")), str(c.get("class"))))[:3]
        lines.append(
            "- Weakest classes: "
            + ", ".join(
                f"{c['class']} (AP {_fmt(_value(c['ap']))}, {c.get('boxes')} true boxes)"
                for c in weak
            )
        )
    metrics = m.get("metrics") or {}
    sizes = [
        f"{size} {_fmt(_value(metrics[f'ap_{size}']))}"
        for size, _ in SIZES
        if f"ap_{size}" in metrics
    ]
    if sizes:
        lines.append("- AP by box size: " + ", ".join(sizes))
    errors = m.get("errors") or {}
    if errors.get("boxes"):
        lines.append(
            f"- Test boxes: {errors.get('found', 0)} found, {errors.get('missed', 0)} missed, "
            f"{errors.get('confused', 0)} with the wrong class, "
            f"{errors.get('false_positives', 0)} false positives of the boxes shown"
        )
    return lines


# --- segmentation ----------------------------------------------------------------------------


def segmentation_before(root: Path, m: dict[str, Any], task: Task) -> str:
    """Per-class IoU and Dice with each class's pixel share in the test masks."""
    body = ["<h3>Per-class IoU</h3>"]
    figs = m.get("figures") or {}
    if figs.get("per_class"):
        body.append(figure(root / figs["per_class"], "IoU and Dice per class on the test set."))
    per_class = m.get("per_class") or []
    total = sum(int(c.get("pixels") or 0) for c in per_class) or 1
    predicted = sum(int(c.get("predicted_pixels") or 0) for c in per_class) or 1
    body.append(
        table(
            ["class", "pixel share", "predicted share", "IoU", "IoU CI", "Dice", "Dice CI"],
            [
                (
                    c.get("class"),
                    f"{int(c.get('pixels') or 0) / total:.2%}",
                    f"{int(c.get('predicted_pixels') or 0) / predicted:.2%}",
                    _fmt(_value(c.get("iou"))),
                    _ci(c.get("iou")),
                    _fmt(_value(c.get("dice"))),
                    _ci(c.get("dice")),
                )
                for c in per_class
            ],
        )
        if per_class
        else paragraph("No per-class IoU was recorded (run `dlw test` again).")
    )
    image = m.get("image_iou") or {}
    if image.get("median") is not None:
        body.append(
            paragraph(
                f"Per image, the IoU (mean over the classes present) has median "
                f"{_fmt(image['median'])}; the worst image {_fmt(image.get('worst'))}. Pixels "
                "marked ignore in the masks are not scored."
            )
        )
    return "".join(body)


def segmentation_calibration(root: Path, m: dict[str, Any], task: Task) -> str:
    return "<h3>Calibration</h3>" + paragraph(
        _not_applicable(
            task,
            "Calibration",
            "not measured for per-pixel probabilities: the metrics score each pixel's most "
            "probable class",
        )
    )


def segmentation_after(root: Path, m: dict[str, Any], task: Task) -> str:
    """Overlays of the worst test images and what they missed or added."""
    figs = m.get("figures") or {}
    worst = m.get("worst_images") or []
    body = ["<h3>Overlays: the test images with the lowest IoU</h3>"]
    if figs.get("worst_masks"):
        body.append(
            figure(
                root / figs["worst_masks"],
                "The test images with the lowest IoU: the true mask, the predicted mask and "
                "the wrong pixels.",
            )
        )
    body.append(
        table(
            ["image", "IoU", "pixel accuracy", "classes missed", "classes added"],
            [
                (
                    w.get("sample_id"),
                    _fmt(w.get("iou")),
                    _fmt(w.get("pixel_accuracy")),
                    ", ".join(w.get("missed") or []),
                    ", ".join(w.get("added") or []),
                )
                for w in worst[:SHOWN]
            ],
        )
        if worst
        else paragraph("No worst images were recorded (run `dlw test` again).")
    )
    return "".join(body)


def segmentation_outputs(task: Task, names: list[str], target: dict[str, Any]) -> str:
    return (
        f"a class for every pixel (a mask, returned as a PNG) out of {len(names)} "
        f"({', '.join(names[:20])}{', ...' if len(names) > 20 else ''}), with each class's "
        "share of the mask; the network gives every pixel a probability per class (softmax) "
        "and the mask holds the most probable one"
    )


def segmentation_debug(m: dict[str, Any], task: Task) -> str:
    return (
        f"IoU and Dice of {len(m.get('per_class') or [])} classes, the "
        f"{len(m.get('worst_images') or [])} test images with the lowest IoU drawn as "
        "overlays; "
        + _not_applicable(
            task, "calibration and confusion matrix", "it predicts a class for every pixel"
        )
    )


def segmentation_card(m: dict[str, Any]) -> list[str]:
    lines = []
    scored = [c for c in m.get("per_class") or [] if _value(c.get("iou")) is not None]
    if scored:
        weak = sorted(scored, key=lambda c: (_value(c.get("iou")), str(c.get("class"))))[:3]
        lines.append(
            "- Weakest classes: "
            + ", ".join(f"{c['class']} (IoU {_fmt(_value(c['iou']))})" for c in weak)
        )
    image = m.get("image_iou") or {}
    if image.get("median") is not None:
        lines.append(
            f"- IoU per image: median {_fmt(image['median'])}, worst {_fmt(image.get('worst'))}"
        )
    return lines


# --- the data section: what explore measured of the targets ------------------------------------


def detection_data(target: dict[str, Any]) -> str:
    """Images, boxes, boxes per image, negatives and duplicate boxes (explore's record)."""
    if not target.get("boxes") and not target.get("images"):
        return ""
    rows = [
        ("images", f"{int(target.get('images') or 0):,}"),
        ("boxes", f"{int(target.get('boxes') or 0):,}"),
        ("boxes per image (mean)", _fmt(target.get("boxes_per_image"), 2)),
        ("images without boxes (negatives)", f"{int(target.get('negatives') or 0):,}"),
        ("duplicate boxes within an image", f"{int(target.get('duplicate_boxes') or 0):,}"),
    ]
    if target.get("small_share") is not None:
        rows.append(("small boxes (shorter side < 16 px)", f"{float(target['small_share']):.1%}"))
    return "<h3>Boxes (explore)</h3>" + table(None, rows)


def segmentation_data(target: dict[str, Any]) -> str:
    """Each class's share of the pixels, mask coverage and ignored pixels (explore's
    record)."""
    shares = target.get("pixel_share") or {}
    if not shares:
        return ""
    body = [
        "<h3>Pixel share per class (explore)</h3>",
        table(
            ["class", "share of the pixels"],
            [(k, f"{float(v):.2%}") for k, v in shares.items()],
        ),
    ]
    notes = []
    if target.get("coverage_mean") is not None:
        notes.append(
            f"the classes other than the background cover {float(target['coverage_mean']):.1%}"
            " of an image on average"
        )
    if target.get("ignored_share"):
        notes.append(f"{float(target['ignored_share']):.2%} of the pixels are marked ignore")
    if notes:
        body.append(paragraph("In the masks, " + "; ".join(notes) + "."))
    return "".join(body)
