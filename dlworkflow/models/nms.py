"""Non-maximum suppression in torch, batched over classes by the coordinate-offset trick.

    keep = batched_nms(boxes, scores, classes, iou=0.5)   # indices, best score first

Every box is shifted by (its class x (the largest coordinate + 1)), so boxes of different
classes never overlap and one greedy pass suppresses within each class only (as
torchvision's batched_nms does; no torchvision here). The result is the same as
tasks/boxes.py's numpy `nms`, which serve uses without torch.
"""

from __future__ import annotations

import torch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, N) IoU of boxes a (M, 4) and b (N, 4), [x1, y1, x2, y2]; 0 where the union is
    empty."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)


def nms(boxes: torch.Tensor, scores: torch.Tensor, *, iou: float) -> torch.Tensor:
    """Indices (int64) of the boxes greedy NMS keeps, best score first (ties: the earlier
    box first): a box is dropped when it overlaps a kept box by more than `iou`."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    overlaps = (box_iou(boxes[order], boxes[order]) > iou).cpu()
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, *, iou: float
) -> torch.Tensor:
    """NMS within each class: indices kept, best score first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.to(torch.float64)
    offset = classes.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes - boxes.min() + offset, scores, iou=iou)
