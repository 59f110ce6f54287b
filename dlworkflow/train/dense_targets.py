"""Which augmentation each dense target kind (Task.kind) takes: torch-free, so the tune
space and the config checks can ask without importing torch (train/augment_dense.py does
the work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlworkflow.train import augment_keys

if TYPE_CHECKING:
    from dlworkflow.config import Augment

# the kornia data key of each dense target kind (Task.kind); other kinds are not dense
DATA_KEYS = {"detection": "bbox_xyxy", "segmentation": "mask"}
ROTATES = {"segmentation"}  # kinds whose targets rotate with the image (boxes do not)
MOSAIC = {"detection"}  # kinds that take augment.mosaic
MIN_SIDE = 2.0  # pixels: a box narrower or lower than this after augmentation is dropped
MIN_VISIBLE = 0.3  # share of a moved box's area that must stay inside the image


def applied(cfg: Augment, kind: str) -> list[str]:
    """The switched-on options that a `kind` target takes (the others are skipped)."""
    skip = {"erasing", "mixup", "cutmix"}
    if kind not in ROTATES:
        skip.add("rotation")
    if kind not in MOSAIC:
        skip.add("mosaic")
    return [name for name in augment_keys.applied(cfg, "image") if name not in skip]
