"""Augmentation of dense targets (train/augment_dense.py): boxes and masks move with the
pixels (kornia AugmentationSequential), colour touches the image only, boxes that leave the
image are dropped, the ignore value survives, and mosaic moves boxes into quadrants."""

from __future__ import annotations

import numpy as np
import torch

from dlworkflow.config import Augment
from dlworkflow.train.augment import build
from dlworkflow.train.augment_dense import DenseAugment, keep_boxes, mosaic

SIZE = (64, 80)  # h, w: not square, so x and y mix-ups show


def _scene(boxes: list[list[list[float]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Black RGB images with a white rectangle per box (pixels), and y (B, K, 5)
    normalised with class ids."""
    h, w = SIZE
    k = max(len(b) for b in boxes)
    x = torch.zeros((len(boxes), 3, h, w))
    y = torch.zeros((len(boxes), k, 5))
    y[..., 4] = -1
    for i, image in enumerate(boxes):
        for j, (x1, y1, x2, y2, c) in enumerate(image):
            x[i, :, int(y1) : int(y2), int(x1) : int(x2)] = 1.0
            y[i, j] = torch.tensor([x1 / w, y1 / h, x2 / w, y2 / h, c])
    return x, y


def _white_box(image: torch.Tensor) -> list[float]:
    """The envelope of the bright pixels, in pixels [x1, y1, x2, y2]."""
    ys, xs = np.nonzero(image[0].numpy() > 0.5)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def test_flip_and_shift_move_each_box_with_its_pixels():
    x, y = _scene([[[8, 10, 30, 40, 2]], [[50, 5, 70, 25, 0]]])
    cfg = Augment(flip=1.0, translate=0.1)
    transform = build(cfg, channels=3, size=SIZE, num_classes=3, seed=1, kind="detection")
    assert isinstance(transform, DenseAugment)
    out, moved = transform(x, y)
    h, w = SIZE
    for i in range(len(x)):
        assert int(moved[i, 0, 4]) == int(y[i, 0, 4])  # the class travels unchanged
        box = (moved[i, 0, :4] * torch.tensor([w, h, w, h])).tolist()
        seen = _white_box(out[i])
        assert np.allclose(box, seen, atol=1.5), (box, seen)
        # flipped: the box now lies on the other side of the image
        assert abs((box[0] + box[2]) / 2 - (w - (y[i, 0, 0] + y[i, 0, 2]) * w / 2)) < w * 0.15


def test_colour_jitter_changes_pixels_but_never_boxes_or_masks():
    x, y = _scene([[[8, 10, 30, 40, 1]]])
    x = x * 0.5 + 0.2
    boxes = build(
        Augment(color_jitter=0.5), channels=3, size=SIZE, num_classes=2, seed=3, kind="detection"
    )
    out, same = boxes(x, y)
    assert not torch.allclose(out, x) and torch.equal(same, y)
    mask = (x[:, 0] > 0.5).to(torch.uint8)
    masks = build(
        Augment(color_jitter=0.5), channels=3, size=SIZE, num_classes=2, seed=3, kind="segmentation"
    )
    _, kept = masks(x, mask)
    assert torch.equal(kept, mask)


def test_a_rotated_mask_follows_its_pixels_and_keeps_the_ignore_value():
    x, _ = _scene([[[20, 16, 50, 44, 0]], [[10, 10, 30, 30, 0]]])
    mask = (x[:, 0] > 0.5).to(torch.uint8) * 3  # class 3 where the rectangle is
    mask[:, :4, :] = 255  # an ignored band at the top
    cfg = Augment(rotation=30, flip=0.5, resized_crop=0.3)
    transform = build(cfg, channels=3, size=SIZE, num_classes=4, seed=5, kind="segmentation")
    out, moved = transform(x, mask)
    assert moved.dtype == torch.uint8 and moved.shape == mask.shape
    assert set(moved.unique().tolist()) <= {0, 3, 255} and (moved == 255).any()
    bright, labelled = out[:, 0] > 0.5, moved == 3
    agree = (bright == labelled)[moved != 255].float().mean()
    assert agree > 0.97, float(agree)
    assert not torch.equal(moved, mask)  # it did move


def test_boxes_that_leave_the_image_or_shrink_to_a_sliver_are_dropped():
    h, w = SIZE
    moved = torch.tensor([[[10.0, 10, 30, 30], [-40, 5, -2, 20], [70, 5, 95, 20], [5, 5, 6, 40]]])
    classes = torch.tensor([[1.0, 0, 2, 1]])
    out = keep_boxes(moved, classes, size=SIZE)
    assert out[0, :, 4].tolist() == [1, 2, -1, -1]  # kept boxes first; K unchanged
    assert out[0, 1, :4].tolist() == [70 / w, 5 / h, 1.0, 20 / h]  # clipped at the edge
    assert out[0, 2:, :4].abs().sum() == 0


def test_mosaic_puts_four_images_in_quadrants_with_their_boxes():
    x, y = _scene(
        [[[8, 8, 40, 40, 0]], [[40, 20, 72, 56, 1]], [[0, 0, 80, 64, 2]], [[20, 10, 60, 30, 0]]]
    )
    out, boxes = mosaic(x, y, 1.0, np.random.default_rng(0))
    assert boxes.shape[1] == 4  # four boxes per mosaic now
    h, w = SIZE
    for i in range(len(x)):
        valid = boxes[i][boxes[i, :, 4] >= 0]
        assert len(valid) == 4
        for box in valid:
            x1, y1, x2, y2 = (box[:4] * torch.tensor([w, h, w, h])).round().int().tolist()
            inside = out[i, 0, y1:y2, x1:x2]
            assert inside.mean() > 0.9, (i, box)  # each box covers its white rectangle
        # the first quadrant is the image itself at half size
        assert torch.allclose(valid[0, :4], y[i, 0, :4] / 2)


def test_the_same_seed_augments_boxes_the_same_way():
    x, y = _scene([[[8, 10, 30, 40, 2]], [[50, 5, 70, 25, 0]]])
    cfg = Augment(flip=0.5, translate=0.1, resized_crop=0.3, mosaic=0.5)
    a = build(cfg, channels=3, size=SIZE, num_classes=3, seed=9, kind="detection")
    b = build(cfg, channels=3, size=SIZE, num_classes=3, seed=9, kind="detection")
    assert a is not None and b is not None
    for _ in range(3):
        (xa, ya), (xb, yb) = a(x, y), b(x, y)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_options_dense_targets_cannot_take_are_switched_off():
    assert (
        build(
            Augment(erasing=0.5, mixup=0.2),
            channels=3,
            size=SIZE,
            num_classes=2,
            seed=0,
            kind="segmentation",
        )
        is None
    )
    assert (
        build(
            Augment(rotation=10, mosaic=0.5),
            channels=3,
            size=SIZE,
            num_classes=2,
            seed=0,
            kind="segmentation",
        )
        is not None
    )  # rotation applies to masks
    assert (
        build(Augment(rotation=10), channels=3, size=SIZE, num_classes=2, seed=0, kind="detection")
        is None
    )  # boxes do not rotate
