"""Object detection: boxes and their classes in each image.

The manifest stores each image's boxes as compact JSON in pixels of the stored image (a tile
when tiled): `{"size":[W,H],"boxes":[[x1,y1,x2,y2,"class"],...]}` (`dump_boxes`,
`load_boxes`); `"boxes":[]` is a valid negative image. `encode` gives float32 (N, K, 5)
[x1, y1, x2, y2 normalised to 0..1, class index], padded with class -1.

The network is CenterNet-style (Zhou et al. 2019): one output (N, C + 4, h, w) of C class
heatmap logits, log box width and height in feature-map cells, and the centre's offset in its
cell. The loss is the focal loss on Gaussian heatmaps drawn around each box centre (built on
the device from the padded boxes) plus L1 on the log size and the offset at the centre cells.
`outputs` decodes the 3x3 heatmap peaks and runs per-class NMS (numpy, tasks/boxes.py):
float64 (N, max_detections, 6) [x1, y1, x2, y2 normalised, score, class], padded with score 0
and class -1. The metrics are COCO's box AP (tasks/box_ap.py), over every detection; the
serving threshold (`score_threshold`, the score of the best F1 at IoU 0.5 on validation)
only decides which boxes a prediction shows.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.tasks import box_ap, boxes
from dlworkflow.tasks.base import MetricSpec, TargetError, Task, cell_text
from dlworkflow.tasks.boxes import box_prior_fit, box_prior_outputs

__all__ = ["Detection", "box_prior_fit", "box_prior_outputs", "dump_boxes", "load_boxes"]

if TYPE_CHECKING:
    import torch

Box = tuple[float, float, float, float, str]
MAX_LABEL_CHARS = 2_000_000  # one image's boxes as JSON
MAX_BOXES = 10_000  # per image
NO_BOXES = "(none)"  # the stratum of an image without boxes
DEFAULTS = {"max_detections": 100, "nms_iou": 0.5, "score_threshold": 0.3}
HEATMAP_ALPHA = 0.54  # TTFNet's Gaussian: sigma = alpha * box side / 6 (in cells)


def dump_boxes(size: Sequence[int], boxes_: Sequence[Sequence[Any]]) -> str:
    """The manifest's label: size (W, H) and boxes [x1, y1, x2, y2, class] in pixels, rounded
    to 2 decimals and sorted, as compact JSON."""
    rows = sorted([*(_number(v) for v in box[:4]), str(box[4])] for box in boxes_)
    return json.dumps(
        {"size": [int(size[0]), int(size[1])], "boxes": rows},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _number(value: Any) -> float | int:
    v = round(float(value), 2)
    return int(v) if v.is_integer() else v


def load_boxes(label: str) -> tuple[tuple[int, int], list[Box]]:
    """((W, H), [(x1, y1, x2, y2, class), ...]) of a label; TargetError with the reason when
    it is not valid JSON of that shape, or a box is degenerate or outside the image."""
    text = cell_text(label)
    if text is None:
        raise TargetError('no boxes label (empty); an image without boxes has "boxes":[]')
    if len(text) > MAX_LABEL_CHARS:
        raise TargetError(f"boxes label of {len(text):,} characters (at most {MAX_LABEL_CHARS:,})")
    try:
        data = json.loads(text)
    except ValueError:
        raise TargetError(f"boxes label is not JSON: {text[:40]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("boxes"), list):
        raise TargetError('boxes label is not {"size":[W,H],"boxes":[...]}')
    size = data.get("size")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in size)
        or min(size) <= 0
    ):
        raise TargetError(f"boxes label has no image size [W, H] (got {str(size)[:30]})")
    if len(data["boxes"]) > MAX_BOXES:
        raise TargetError(f"{len(data['boxes']):,} boxes in one image (at most {MAX_BOXES:,})")
    w, h = int(size[0]), int(size[1])
    return (w, h), [_box(raw, w, h) for raw in data["boxes"]]


def _box(raw: Any, w: int, h: int) -> Box:
    if not isinstance(raw, list) or len(raw) != 5:
        raise TargetError(f"box {str(raw)[:40]} is not [x1, y1, x2, y2, class]")
    label = cell_text(raw[4]) if isinstance(raw[4], str | int) else None
    if label is None:
        raise TargetError(f"box {str(raw)[:40]} has no class")
    try:
        x1, y1, x2, y2 = (float(v) for v in raw[:4])
    except (TypeError, ValueError):
        raise TargetError(f"box {str(raw)[:40]} has a coordinate that is not a number") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise TargetError(f"box {str(raw)[:40]} has a coordinate that is not finite")
    if x2 <= x1 or y2 <= y1:
        raise TargetError(f"degenerate box {[x1, y1, x2, y2]} of {label!r} (zero width or height)")
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        raise TargetError(f"box {[x1, y1, x2, y2]} of {label!r} lies outside the {w}x{h} image")
    return (x1, y1, x2, y2, label)


def _classes(target: str) -> list[str]:
    return [b[4] for b in load_boxes(target)[1]]


class Detection(Task):
    """Boxes and their classes in each image; metrics are COCO's box AP."""

    kind = "detection"
    default_metric = "map"
    example_target = "0.3"
    companion_metric = "map50"
    dense = True
    tunes_on_validation = True
    metrics = (
        MetricSpec("map", description="COCO mean average precision over IoU .50:.05:.95"),
        MetricSpec("map50", description="mean average precision at IoU .50 (Pascal VOC's)"),
        MetricSpec("map75", primary=False, description="mean average precision at IoU .75"),
        MetricSpec("ap_small", primary=False, description="mAP of boxes under 32x32 input pixels"),
        MetricSpec("ap_medium", primary=False, description="mAP of boxes of 32x32 to 96x96 pixels"),
        MetricSpec("ap_large", primary=False, description="mAP of boxes over 96x96 pixels"),
    )

    @property
    def name(self) -> str:
        return "object-detection"

    # --- reading targets ------------------------------------------------------------------

    def parse_target(self, raw: Any, *, column: str) -> str:
        try:
            size, found = load_boxes(raw if isinstance(raw, str) else str(raw or ""))
        except TargetError as err:
            raise TargetError(f"{err.reason} ({column})") from None
        return dump_boxes(size, found)

    def unknown_labels(self, target: str, allowed: set[str]) -> list[str]:
        return sorted({c for c in _classes(target) if c not in allowed})

    def target_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """Boxes per class."""
        out: Counter[str] = Counter()
        for target, n in counts.items():
            for c in _classes(str(target)):
                out[c] += n
        return dict(sorted(out.items()))

    def strata(self, targets: Sequence[str]) -> list[str]:
        """Each image's most frequent box class (the first by name of ties), "(none)"
        without boxes."""
        result = []
        for t in targets:
            counts = Counter(_classes(str(t)))
            result.append(min(counts, key=lambda c: (-counts[c], c)) if counts else NO_BOXES)
        return result

    def output_names(self, targets: Sequence[str]) -> list[str]:
        return sorted({c for t in targets for c in _classes(str(t))})

    def encode(
        self, targets: Sequence[Any], names: Sequence[str], *, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """(N, K, 5) float32 normalised boxes + class index; class -1 pads, -2 marks a box
        of a class the model does not know (the image is not judged: `known`)."""
        index = {c: i for i, c in enumerate(names)}
        parsed = [load_boxes(str(t)) for t in targets]
        k = max([len(b) for _, b in parsed] + [1])
        y = np.zeros((len(parsed), k, 5), dtype=np.float32)
        y[:, :, 4] = -1
        for i, ((w, h), found) in enumerate(parsed):
            for j, (x1, y1, x2, y2, c) in enumerate(found):
                y[i, j] = (x1 / w, y1 / h, x2 / w, y2 / h, index.get(c, -2))
        return y

    def known(self, y: np.ndarray) -> np.ndarray:
        mask: np.ndarray = ~(np.asarray(y)[:, :, 4] == -2).any(axis=1)
        return mask

    def fit_target(self, y: np.ndarray) -> dict[str, Any]:
        """NMS and output settings; the input size (`input_size` [H, W], for the area
        ranges) is added by whoever knows it."""
        return dict(DEFAULTS)

    def fit_on_validation(
        self, y: np.ndarray, out: np.ndarray, target: dict[str, Any]
    ) -> dict[str, Any]:
        """score_threshold: the score of the best F1 at IoU 0.5 on validation."""
        keep = self.known(y)
        return {**target, "score_threshold": boxes.best_f1_threshold(y[keep], out[keep])}

    # --- the head ---------------------------------------------------------------------------

    def loss(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: dict[str, Any],
        *,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """CenterNet: focal loss on the class heatmaps + L1 on log size and offset."""
        import torch

        classes = logits.shape[1] - 4
        y = y.to(device=logits.device, dtype=torch.float32)
        heat, cells, size_t, offset_t, valid = _heat_targets(y, classes, logits.shape[2:])
        heat_logits = logits[:, :classes].float()
        n_pos = valid.sum().clamp(min=1).float()
        pos = heat >= 1.0
        log_p = torch.nn.functional.logsigmoid(heat_logits)
        log_not_p = torch.nn.functional.logsigmoid(-heat_logits)
        p = log_p.exp()
        focal = (
            torch.where(
                pos,
                (1 - p) ** 2 * log_p,
                (1 - heat) ** 4 * p**2 * log_not_p,
            ).sum()
            / -n_pos
        )
        reg = logits[:, classes:].float().flatten(2)  # (N, 4, h*w)
        picked = torch.gather(reg, 2, cells[:, None, :].expand(-1, 4, -1))  # (N, 4, K)
        mask = valid[:, None, :].float()
        size_loss = ((picked[:, :2] - size_t).abs() * mask).sum() / n_pos
        offset_loss = ((picked[:, 2:] - offset_t).abs() * mask).sum() / n_pos
        return focal + 0.1 * size_loss + offset_loss

    def outputs(self, logits: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        settings = {**DEFAULTS, **target}
        classes = np.asarray(logits).shape[1] - 4
        k = int(settings["max_detections"])
        dets = boxes.decode(logits, classes=classes, top_k=k)
        return boxes.suppress(dets, iou=float(settings["nms_iou"]), max_detections=k)

    # --- metrics --------------------------------------------------------------------------

    def scores(
        self, y: np.ndarray, out: np.ndarray, weights: np.ndarray, target: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        ap, sized = self._ap(y, out, weights, target)
        result = box_ap.summary(ap)
        if not sized:  # area ranges need the input size in pixels
            for name in ("ap_small", "ap_medium", "ap_large"):
                result[name] = np.full(len(np.atleast_2d(weights)), np.nan)
        return result

    def class_scores(
        self, y: np.ndarray, out: np.ndarray, weights: np.ndarray, target: dict[str, Any]
    ) -> np.ndarray:
        """(B, classes): each class's AP over IoU .50:.05:.95 (NaN: no box of it)."""
        return box_ap.class_ap(self._ap(y, out, weights, target)[0])

    def _ap(
        self, y: np.ndarray, out: np.ndarray, weights: np.ndarray, target: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], bool]:
        y, out = np.asarray(y, dtype=np.float64), np.asarray(out, dtype=np.float64)
        keep = self.known(y)
        size = target.get("input_size") or target.get("size")
        classes = max(int(y[..., 4].max(initial=-1)), int(out[..., 5].max(initial=-1))) + 1
        table = box_ap.match_images(
            y[keep],
            out[keep],
            size=(float(size[0]), float(size[1])) if size else (1.0, 1.0),
            classes=classes,
        )
        return box_ap.average_precision(table, np.atleast_2d(weights)[:, keep]), bool(size)

    # --- predictions ------------------------------------------------------------------------

    def _shown(self, out: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        threshold = float(target.get("score_threshold", DEFAULTS["score_threshold"]))
        rows = np.asarray(out, dtype=np.float64).reshape(-1, 6)
        return rows[(rows[:, 5] >= 0) & (rows[:, 4] > 0) & (rows[:, 4] >= threshold)]

    def prediction(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, Any]:
        """The boxes at or above the serving threshold, normalised 0..1 (serve scales them
        to the request image's pixels)."""
        shown = self._shown(out, target)
        found = [
            {
                "box": [round(float(v), 6) for v in row[:4]],
                "label": names[int(row[5])],
                "score": round(float(row[4]), 6),
            }
            for row in shown
        ]
        return {"boxes": found, "count": len(found)}

    def prediction_columns(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, list[Any]]:
        """One row per image: the box count and the boxes as JSON (`dlw predict` writes one
        row per box from them)."""
        shown = [self.prediction(row, names, target)["boxes"] for row in np.asarray(out)]
        return {
            "count": [len(b) for b in shown],
            "boxes": [json.dumps(b, separators=(",", ":")) for b in shown],
        }


def _heat_targets(y: torch.Tensor, classes: int, shape: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """From padded normalised boxes (N, K, 5) at a (h, w) feature map: the class heatmaps
    (N, C, h, w) (a Gaussian around each box centre, 1 at its cell), each box's centre cell
    index (N, K), log size and offset targets (N, 2, K), and which boxes are real (N, K)."""
    import torch

    h, w = int(shape[0]), int(shape[1])
    n, k = y.shape[:2]
    valid = (y[:, :, 4] >= 0) & (y[:, :, 2] > y[:, :, 0]) & (y[:, :, 3] > y[:, :, 1])
    scale = y.new_tensor([w, h, w, h])
    b = y[:, :, :4] * scale  # in cells
    cx, cy = (b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2
    bw, bh = (b[..., 2] - b[..., 0]).clamp(min=1e-3), (b[..., 3] - b[..., 1]).clamp(min=1e-3)
    ix = cx.floor().clamp(0, w - 1)
    iy = cy.floor().clamp(0, h - 1)
    sx = (HEATMAP_ALPHA * bw / 6).clamp(min=0.35)
    sy = (HEATMAP_ALPHA * bh / 6).clamp(min=0.35)
    xs = torch.arange(w, device=y.device, dtype=y.dtype)
    ys = torch.arange(h, device=y.device, dtype=y.dtype)
    gx = torch.exp(-((xs[None, None, :] - ix[..., None]) ** 2) / (2 * sx[..., None] ** 2))
    gy = torch.exp(-((ys[None, None, :] - iy[..., None]) ** 2) / (2 * sy[..., None] ** 2))
    g = (gy[..., :, None] * gx[..., None, :]).flatten(2) * valid[..., None]  # (N, K, h*w)
    channel = torch.where(
        valid, y[:, :, 4].long(), torch.full_like(valid, classes, dtype=torch.long)
    )
    heat = y.new_zeros((n, classes + 1, h * w))
    heat.scatter_reduce_(1, channel[..., None].expand(-1, -1, h * w), g, reduce="amax")
    cells = (iy * w + ix).long()
    size_t = torch.stack([bw.log(), bh.log()], dim=1)
    offset_t = torch.stack([cx - ix, cy - iy], dim=1)
    return heat[:, :classes].reshape(n, classes, h, w), cells, size_t, offset_t, valid
