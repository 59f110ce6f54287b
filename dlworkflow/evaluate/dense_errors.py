"""Error analysis of the dense tasks.

Detection: the boxes shown (the task's `prediction` of each image: the boxes at or above
its tuned score threshold, as serve shows them) are matched to the true boxes image by
image, highest score first, at IoU >= MATCH_IOU: a detection on an unmatched true box of
its class is found; else one on an unmatched true box of another class is a confused class
(that box is used up); else it is a false positive (nothing there, a duplicate, or a box too
far off). A true box nothing was matched to is missed. Counted per class and per image; the
images with the most errors keep their boxes (normalised x1, y1, x2, y2) for the figure.

Segmentation: the images with the lowest IoU (dlworkflow.evaluate.dense_scores), with the
classes each one missed (in its truth, never predicted) and added (predicted, not in it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.tasks.boxes import iou_matrix

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.tasks import Task

MATCH_IOU = 0.5
N_WORST = 8  # images shown


def match_image(
    truth: np.ndarray, shown: np.ndarray, *, iou: float = MATCH_IOU
) -> dict[str, list[Any]]:
    """One image: true boxes (t, 5) [x1 y1 x2 y2 class] against shown detections (d, 6)
    [x1 y1 x2 y2 score class]: indices of found (truth, detection) pairs, confused pairs,
    false-positive detections and missed true boxes."""
    overlap = iou_matrix(shown[:, :4], truth[:, :4]) if len(truth) and len(shown) else None
    used = np.zeros(len(truth), dtype=bool)
    found: list[tuple[int, int]] = []
    confused: list[tuple[int, int]] = []
    false_positives: list[int] = []
    for d in np.argsort(-shown[:, 4], kind="stable") if len(shown) else []:
        if overlap is None:
            false_positives.append(int(d))
            continue
        ok = (overlap[d] >= iou) & ~used
        same = ok & (truth[:, 4] == shown[d, 5])
        pool, into = (same, found) if same.any() else (ok, confused)
        if not pool.any():
            false_positives.append(int(d))
            continue
        t = int(np.argmax(np.where(pool, overlap[d], -1.0)))
        used[t] = True
        into.append((t, int(d)))
    missed = [int(t) for t in np.flatnonzero(~used)]
    return {
        "found": found,
        "confused": confused,
        "false_positives": false_positives,
        "missed": missed,
    }


def shown_boxes(
    task: Task, out_row: np.ndarray, names: Sequence[str], target: dict[str, Any]
) -> np.ndarray:
    """(d, 6) [x1 y1 x2 y2 score class] of the boxes the task shows for one image."""
    index = {name: i for i, name in enumerate(names)}
    found = task.prediction(out_row, names, target)["boxes"]
    return np.array(
        [[*b["box"], b["score"], index[b["label"]]] for b in found], dtype=np.float64
    ).reshape(len(found), 6)


def detection_errors(
    task: Task,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    names: Sequence[str],
    target: dict[str, Any],
    *,
    n: int = N_WORST,
) -> dict[str, Any]:
    """Counts of found, missed, false-positive and confused boxes (in all and per class),
    the most confused class pairs, and the n images with the most errors."""
    per_class = {
        name: Counter({"boxes": 0, "found": 0, "missed": 0, "confused": 0, "false_positives": 0})
        for name in names
    }
    pairs: Counter[tuple[str, str]] = Counter()
    images = []
    for i in range(len(y)):
        truth = y[i][y[i][:, 4] >= 0]
        shown = shown_boxes(task, out[i], names, target)
        m = match_image(truth, shown)
        label = [names[int(c)] for c in truth[:, 4]]
        for name in label:
            per_class[name]["boxes"] += 1
        for t, _ in m["found"]:
            per_class[label[t]]["found"] += 1
        for t in m["missed"]:
            per_class[label[t]]["missed"] += 1
        for t, d in m["confused"]:
            per_class[label[t]]["confused"] += 1
            pairs[(label[t], names[int(shown[d, 5])])] += 1
        for d in m["false_positives"]:
            per_class[names[int(shown[d, 5])]]["false_positives"] += 1
        images.append(_image_record(rows, i, truth, shown, m, names))
    totals = {k: sum(c[k] for c in per_class.values()) for k in ("boxes", "found", "missed")}
    totals["confused"] = sum(pairs.values())
    totals["false_positives"] = sum(c["false_positives"] for c in per_class.values())
    totals["shown"] = totals["found"] + totals["confused"] + totals["false_positives"]
    worst = sorted(images, key=lambda r: (-r["errors"], r["row"]))
    return {
        "match_iou": MATCH_IOU,
        "score_threshold": target.get("score_threshold"),  # None: the task's default
        **totals,
        "per_class": [{"class": name, **dict(c)} for name, c in per_class.items()],
        "confused_pairs": [
            {"true": t, "predicted": p, "count": k} for (t, p), k in pairs.most_common(5)
        ],
        "worst_images": [r for r in worst[:n] if r["errors"]],
    }


def _image_record(
    rows: pd.DataFrame,
    i: int,
    truth: np.ndarray,
    shown: np.ndarray,
    m: dict[str, list[Any]],
    names: Sequence[str],
) -> dict[str, Any]:
    def box(b: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in b[:4]]

    return {
        "row": i,
        "sample_id": str(rows.iloc[i]["sample_id"]),
        "errors": len(m["missed"]) + len(m["confused"]) + len(m["false_positives"]),
        "found": [box(truth[t]) for t, _ in m["found"]],
        "missed": [{"box": box(truth[t]), "label": names[int(truth[t, 4])]} for t in m["missed"]],
        "false_positives": [
            {
                "box": box(shown[d]),
                "label": names[int(shown[d, 5])],
                "score": round(float(shown[d, 4]), 4),
            }
            for d in m["false_positives"]
        ],
        "confused": [
            {
                "box": box(shown[d]),
                "true": names[int(truth[t, 4])],
                "predicted": names[int(shown[d, 5])],
                "score": round(float(shown[d, 4]), 4),
            }
            for t, d in m["confused"]
        ],
    }


def worst_masks(
    rows: pd.DataFrame,
    conf: np.ndarray,
    iou: np.ndarray,
    accuracy: np.ndarray,
    names: Sequence[str],
    *,
    n: int = N_WORST,
) -> list[dict[str, Any]]:
    """The n images with the lowest IoU: their IoU, pixel accuracy, and the classes missed
    (in the truth, never predicted) and added (predicted, absent from the truth)."""
    scored = np.flatnonzero(~np.isnan(iou))
    order = scored[np.argsort(iou[scored], kind="stable")][:n]
    out = []
    for i in order:
        truth, pred = conf[i].sum(axis=1), conf[i].sum(axis=0)
        out.append(
            {
                "row": int(i),
                "sample_id": str(rows.iloc[int(i)]["sample_id"]),
                "iou": float(iou[i]),
                "pixel_accuracy": float(accuracy[i]),
                "missed": [names[c] for c in range(len(names)) if truth[c] and not pred[c]],
                "added": [names[c] for c in range(len(names)) if pred[c] and not truth[c]],
            }
        )
    return out
