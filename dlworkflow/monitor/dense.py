"""The prediction checks of the dense image tasks (drift.PREDICTION_PLANS), their sentences
(drift.PREDICTION_WORDS) and the live outputs the live metric is scored on
(drift.LIVE_OUTPUTS).

Detection (records: count, boxes [[x1, y1, x2, y2, label, score]] normalised, scores):
- boxes per image: KS + PSI on each record's box count;
- box size: KS + PSI on each image's median box area as a share of the image (images with
  boxes; one number per image, so the images stay the independent units of the test);
- box scores: KS + PSI on each image's mean box score (images with boxes).
Segmentation (records: class_share {class: share of the mask's pixels}):
- predicted class shares: per class, KS on the per-image shares (Bonferroni over the
  classes inside the check); effect = the PSI between the mean class-share distributions
  (reference vs live), against monitor.psi_threshold: PSI weighs a change by the class's
  share, so a small class that vanishes counts although the background holds most pixels
  (the total variation is reported beside it); the classes that moved significantly are
  flagged.

The live metric (`--labels`, the manifest's label text per id) is scored with `task.scores`
on the outputs the records hold: detection every output box when the record keeps them
("detections": `--inputs` keeps them; a server log keeps the boxes it showed, above the
tuned score threshold, which reads lower than the test mAP over all boxes: said in a note);
segmentation the predicted mask ("mask", as a manifest label: `--inputs` keeps it; the
server's class shares alone cannot give an IoU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.monitor import stats as S
from dlworkflow.monitor.logread import Sample

if TYPE_CHECKING:
    from dlworkflow.config import Monitor
    from dlworkflow.monitor.drift import Check, _Plan
    from dlworkflow.runtime.bundle import Bundle

DIGITS = 5


# ---- per-record numbers -------------------------------------------------------------------
def box_rows(record: dict[str, Any]) -> list[list[Any]]:
    """The record's shown boxes as [x1, y1, x2, y2, label, score] rows (malformed rows out)."""
    rows = record.get("boxes")
    if not isinstance(rows, list):
        return []
    out = []
    for row in rows:
        if isinstance(row, dict):  # {"box": [...], "label", "score"}: the serve response
            row = [*(row.get("box") or [])[:4], row.get("label"), row.get("score")]
        if isinstance(row, (list, tuple)) and len(row) >= 6:
            try:
                out.append([*(float(v) for v in row[:4]), str(row[4]), float(row[5])])
            except (TypeError, ValueError):
                continue
    return out


def box_counts(sample: Sample) -> np.ndarray:
    """Boxes per image (the record's "count", else its boxes)."""
    out = []
    for record in sample.dense:
        count = record.get("count")
        ok = isinstance(count, (int, float)) and not isinstance(count, bool)
        out.append(
            float(count) if isinstance(count, (int, float)) and ok else len(box_rows(record))
        )
    return np.array(out, dtype=np.float64)


def box_areas(sample: Sample) -> list[np.ndarray]:
    """Each image's box areas as a share of the image (normalised w x h)."""
    return [
        np.array([max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0) for b in box_rows(r)])
        for r in sample.dense
    ]


def box_scores(sample: Sample) -> list[np.ndarray]:
    return [np.array([b[5] for b in box_rows(r)]) for r in sample.dense]


def per_image(values: list[np.ndarray], reduce: Callable[[np.ndarray], float]) -> np.ndarray:
    """One number per image that has any (NaN for the others: the tests drop them)."""
    return np.array([reduce(v) if len(v) else np.nan for v in values], dtype=np.float64)


def class_shares(sample: Sample, names: list[str]) -> np.ndarray:
    """Float (N, C): each record's predicted share of every class (missing: 0); classes the
    model does not know are left out."""
    index = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(sample.dense), len(names)))
    for i, record in enumerate(sample.dense):
        for name, share in (record.get("class_share") or {}).items():
            if name in index and isinstance(share, (int, float)):
                out[i, index[name]] = float(share)
    return out


# ---- plans --------------------------------------------------------------------------------
def _distribution_plan(
    name: str, shape: str, ref: np.ndarray, cur: np.ndarray, config: Monitor
) -> _Plan:
    from dlworkflow.monitor.drift import _mean, _Plan, _quantiles

    def run(level: float) -> S.Outcome:
        ks = S.ks_test(ref, cur)
        value = S.psi(ref, cur)
        return S.Outcome(
            ks.statistic,
            ks.p_value,
            value,
            {
                **ks.details,
                "shape": shape,
                "ks": ks.statistic,
                "psi": value,
                "reference_mean": _mean(ref),
                "live_mean": _mean(cur),
                "reference_quantiles": _quantiles(ref),
                "live_quantiles": _quantiles(cur),
            },
        )

    return _Plan(
        name,
        "prediction",
        "KS + PSI",
        config.psi_threshold,
        run,
        lambda o: (o.details["reference_mean"], o.details["live_mean"]),
    )


def detection_plans(
    reference: Sample, live: Sample, config: Monitor, names: list[str]
) -> list[_Plan]:
    """Boxes per image, box size (median area share per image) and box scores (mean per
    image), each KS + PSI against the reference."""
    if not reference.dense or not live.dense:
        return []
    return [
        _distribution_plan(
            "boxes per image", "count", box_counts(reference), box_counts(live), config
        ),
        _distribution_plan(
            "box size",
            "box_size",
            per_image(box_areas(reference), np.median),
            per_image(box_areas(live), np.median),
            config,
        ),
        _distribution_plan(
            "box scores",
            "score",
            per_image(box_scores(reference), np.mean),
            per_image(box_scores(live), np.mean),
            config,
        ),
    ]


def segmentation_plans(
    reference: Sample, live: Sample, config: Monitor, names: list[str]
) -> list[_Plan]:
    """The predicted class-share distribution: per class KS on the per-image shares
    (Bonferroni over the classes), effect = PSI of the mean shares."""
    from dlworkflow.monitor.drift import _Plan

    if not names or not reference.dense or not live.dense:
        return []
    ref, cur = class_shares(reference, names), class_shares(live, names)

    def run(level: float) -> S.Outcome:
        return share_shift(ref, cur, names, level=level)

    def rule(outcome: S.Outcome, level: float) -> bool:
        return bool(
            outcome.p_value is not None
            and outcome.p_value < level
            and outcome.effect >= config.psi_threshold
        )

    return [
        _Plan(
            "predicted class shares",
            "prediction",
            "KS (per class) + PSI",
            config.psi_threshold,
            run,
            lambda o: (None, None),
            alert_rule=rule,
        )
    ]


def share_shift(ref: np.ndarray, cur: np.ndarray, names: list[str], *, level: float) -> S.Outcome:
    """Per class: mean share reference vs live and the KS p-value of the per-image shares
    times the number of classes (Bonferroni); p = the smallest, effect = the PSI of the mean
    share distributions, statistic = the largest KS D; details keep the total variation
    0.5 * sum |mean live share - mean reference share|. A class is flagged ("moved") when its
    adjusted p < level."""
    k = max(len(names), 1)
    mean_ref = ref.mean(axis=0) if len(ref) else np.zeros(len(names))
    mean_cur = cur.mean(axis=0) if len(cur) else np.zeros(len(names))
    rows, ks_max, p_min = [], 0.0, 1.0
    for j, name in enumerate(names):
        ks = S.ks_test(ref[:, j], cur[:, j])
        p = min(1.0, k * float(ks.p_value if ks.p_value is not None else 1.0))
        ks_max, p_min = max(ks_max, ks.statistic), min(p_min, p)
        rows.append(
            {
                "class": name,
                "reference_share": float(mean_ref[j]),
                "live_share": float(mean_cur[j]),
                "change": float(mean_cur[j] - mean_ref[j]),
                "p_value": p,
                "moved": bool(p < level),
            }
        )
    tv = 0.5 * float(np.abs(mean_cur - mean_ref).sum())
    value = (
        S.psi_of_counts(_normalised(mean_ref), _normalised(mean_cur))
        if len(ref) and len(cur)
        else 0.0
    )
    return S.Outcome(
        ks_max,
        p_min,
        value,
        {
            "shape": "shares",
            "psi": value,
            "total_variation": tv,
            "per_class": rows,
            "moved": [r["class"] for r in rows if r["moved"]],
            "n_reference": int(len(ref)),
            "n_live": int(len(cur)),
        },
    )


def _normalised(shares: np.ndarray) -> np.ndarray:
    total = float(shares.sum())
    return shares / total if total > 0 else shares


# ---- words --------------------------------------------------------------------------------
def _g(value: Any) -> str:
    from dlworkflow.monitor.drift import _g as g

    return g(value)


def _distribution_words(what: str) -> Callable[[Check], str]:
    def words(check: Check) -> str:
        return (
            f"{what}: live mean {_g(check.live)} vs reference {_g(check.reference)}; "
            f"PSI {_g(check.effect)}"
        )

    return words


def _shares_words(check: Check) -> str:
    rows = check.details.get("per_class") or []
    top = sorted(rows, key=lambda r: -abs(r.get("change", 0.0)))[:2]
    shown = ", ".join(
        f"{r['class']} {r['reference_share']:.1%} -> {r['live_share']:.1%}" for r in top
    )
    flagged = check.details.get("moved") or []
    return (
        f"Predicted class shares ({'moved: ' + ', '.join(flagged[:4]) + '; ' if flagged else ''}"
        f"largest changes: {shown or 'none'}); PSI {_g(check.effect)}, total variation "
        f"{_g(check.details.get('total_variation'))}"
    )


WORDS: dict[str, Callable[[Check], str]] = {
    "count": _distribution_words("Boxes per image"),
    "box_size": _distribution_words("Box size (median area share of the image)"),
    "score": _distribution_words("Box scores (mean per image)"),
    "shares": _shares_words,
}


# ---- live outputs for the live metric -------------------------------------------------------
def detection_outputs(
    live: Sample, names: list[str], size: tuple[int, int] | None
) -> np.ndarray | None:
    """Float64 (N, K, 6) [x1, y1, x2, y2 normalised, score, class] per record, padded with
    score 0 and class -1: the record's "detections" (every output box) when it has them,
    else its shown boxes."""
    if not live.dense:
        return None
    index = {n: j for j, n in enumerate(names)}
    rows: list[list[list[float]]] = []
    for record in live.dense:
        full = record.get("detections")
        if isinstance(full, list) and all(isinstance(r, list) and len(r) >= 6 for r in full):
            rows.append([[float(v) for v in r[:6]] for r in full])
        else:
            rows.append([[*b[:4], b[5], float(index.get(b[4], -1))] for b in box_rows(record)])
    k = max(1, max(len(r) for r in rows))
    out = np.zeros((len(rows), k, 6))
    out[:, :, 5] = -1.0
    for i, boxes in enumerate(rows):
        if boxes:
            out[i, : len(boxes)] = np.array(boxes)
    return out


def thresholded(live: Sample) -> bool:
    """Whether the records keep only the boxes shown (no "detections")."""
    return bool(live.dense) and not all("detections" in r for r in live.dense)


def segmentation_outputs(
    live: Sample, names: list[str], size: tuple[int, int] | None
) -> np.ndarray | None:
    """Float32 (N, C, H, W) one-hot of each record's predicted "mask" (a manifest label) at
    `size`; None when a record has no mask (server logs keep the class shares only)."""
    from dlworkflow.tasks.masks import label_to_mask

    found = [r.get("mask") for r in live.dense]
    if not found or not all(isinstance(m, str) for m in found):
        return None
    decoded = np.stack([label_to_mask(str(m), names, size=size) for m in found])
    onehot = np.zeros((len(decoded), len(names), *decoded.shape[1:]), dtype=np.float32)
    for c in range(len(names)):
        onehot[:, c] = decoded == c
    return onehot


def _detection_note(live: Sample, target: dict[str, Any]) -> str | None:
    if not thresholded(live):
        return None
    shown = target.get("score_threshold")
    return (
        "The prediction log keeps the boxes the server showed"
        + (f" (score >= {float(shown):.3g})" if isinstance(shown, (int, float)) else "")
        + ", not every output box: the live mAP misses the low-score boxes and reads lower "
        "than the test mAP over all boxes. `dlw monitor --inputs` keeps every box."
    )


# what the live-metric check adds to the notes, per task kind
LIVE_NOTES: dict[str, Callable[[Sample, dict[str, Any]], str | None]] = {
    "detection": _detection_note
}


# ---- --inputs: what the records keep for the live metric ----------------------------------
def _detections_field(out: np.ndarray, bundle: Bundle) -> list[dict[str, Any]]:
    fields = []
    for row in np.asarray(out, dtype=np.float64):
        keep = row[(row[:, 5] >= 0) & (row[:, 4] > 0)]
        fields.append({"detections": np.round(keep, DIGITS).tolist()})
    return fields


def _mask_field(out: np.ndarray, bundle: Bundle) -> list[dict[str, Any]]:
    from dlworkflow.tasks.masks import mask_to_label

    names = list(bundle.classes)
    return [
        {"mask": mask_to_label(np.asarray(p).argmax(axis=0), names, 255)} for p in np.asarray(out)
    ]


# the fields `--inputs` adds to each record from the full outputs, per task kind
INPUT_FIELDS: dict[str, Callable[[np.ndarray, Bundle], list[dict[str, Any]]]] = {
    "detection": _detections_field,
    "segmentation": _mask_field,
}
