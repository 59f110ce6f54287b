"""Step 6: batched data augmentation on the training device (kornia), mixup and cutmix.

`build(cfg.augment, ...)` returns a `batch_transform` for `trainer.fit`: a callable
`(x, y) -> (x, y)` applied to every training batch where the batch already lives (CPU or
GPU). Batches arrive normalised; the transform takes them back to 0..1 pixels (kornia's
colour ops clip to 0..1), applies the geometric and colour ops, erases, renormalises and
finally mixes: with mixup / cutmix on, `y` comes back as soft targets, float [B, K], each row
summing to 1, and the trainer uses soft-target cross entropy.

The ops, in order (0 in the config switches one off):
  flip          RandomHorizontalFlip(p=flip)
  resized_crop  RandomResizedCrop(size, scale=(1 - resized_crop, 1)), back to the data's size
  rotation,     one RandomAffine(degrees=rotation, translate=(translate, translate)), p=1,
  translate     reflection padding (one warp instead of two: sharper, faster)
  color_jitter  ColorJitter(brightness=c, contrast=c) (+ saturation=c for RGB), p=1
  erasing       RandomErasing(p=erasing), value 0 (black)
  mixup/cutmix  alpha of Beta(alpha, alpha); with both on, each batch uses one of them
                at random (probability 1/2 each, as timm's switch)

Determinism: kornia draws its parameters from torch's global RNG. Each batch runs inside
`torch.random.fork_rng` seeded with a seed derived from (seed, epoch, batch number in the
epoch), so the same seed gives the same augmented batches, the training RNG stream (shuffles,
dropout) is exactly the one it would be without augmentation, and a resumed run augments
exactly as an uninterrupted one: the trainer calls `start_epoch` (through an
`on_epoch_start` callback) before each epoch. Without it, batches are numbered from the first
call on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlworkflow.errors import ConfigError
from dlworkflow.tasks import task_names, task_of
from dlworkflow.train import augment_dense, augment_keys
from dlworkflow.train.augment_dense import DenseAugment

if TYPE_CHECKING:
    from pathlib import Path

    from dlworkflow.config import Augment
    from dlworkflow.workspace import Workspace

BatchTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
PREVIEW_FILE = "augment_preview.png"
PREVIEW_VERSIONS = 5  # augmented versions shown beside each original


def enabled(cfg: Augment) -> list[str]:
    """The names of the switched-on options, in config order (of any kind of data:
    augment_keys.applied tells which apply to a modality)."""
    return augment_keys.switched_on(cfg)


def build(
    cfg: Augment,
    *,
    channels: int,
    size: tuple[int, int] | Sequence[int],
    num_classes: int,
    seed: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    kind: str | None = None,
) -> BatchAugment | DenseAugment | None:
    """The batch transform for `cfg` (None when every option is 0).

    `mean` / `std` (per channel, on 0..1 pixels) are the normalisation of the batches the
    trainer passes; None: the batches are 0..1 pixels already. `kind`: the task's target
    kind; a dense one (boxes, masks) gets the transform that moves its targets with the
    pixels (train/augment_dense.py).
    """
    if kind in augment_dense.DATA_KEYS:
        if not augment_dense.applied(cfg, kind):
            return None
        size = (int(size[0]), int(size[1]))
        return augment_dense.DenseAugment(
            augment_dense.pipeline(cfg, kind=kind, channels=channels, size=size),
            kind=kind,
            mosaic=cfg.mosaic,
            seed=seed,
            channels=channels,
            mean=mean,
            std=std,
        )
    if not augment_keys.applied(cfg, "image"):  # series / audio options are not for images
        return None
    pipeline = _pipeline(cfg, channels=channels, size=(int(size[0]), int(size[1])))
    return BatchAugment(
        pipeline,
        mixup=cfg.mixup,
        cutmix=cfg.cutmix,
        num_classes=num_classes,
        seed=seed,
        channels=channels,
        mean=mean,
        std=std,
    )


def _pipeline(cfg: Augment, *, channels: int, size: tuple[int, int]) -> nn.Sequential | None:
    import kornia.augmentation as K

    ops: list[nn.Module] = []
    if cfg.flip:
        ops.append(K.RandomHorizontalFlip(p=cfg.flip))
    if cfg.resized_crop:
        ops.append(K.RandomResizedCrop(size, scale=(1.0 - cfg.resized_crop, 1.0), p=1.0))
    if cfg.rotation or cfg.translate:
        translate = (cfg.translate, cfg.translate) if cfg.translate else None
        ops.append(
            K.RandomAffine(
                degrees=cfg.rotation, translate=translate, padding_mode="reflection", p=1.0
            )
        )
    if cfg.color_jitter:
        colour = cfg.color_jitter if channels == 3 else 0.0  # saturation needs colour
        ops.append(
            K.ColorJitter(
                brightness=cfg.color_jitter, contrast=cfg.color_jitter, saturation=colour, p=1.0
            )
        )
    if cfg.erasing:
        ops.append(K.RandomErasing(p=cfg.erasing, value=0.0))
    return nn.Sequential(*ops) if ops else None


def _derived_seed(seed: int, epoch: int, batch: int) -> int:
    state = np.random.SeedSequence([int(seed), int(epoch), int(batch)]).generate_state(1, np.uint64)
    return int(state[0] % (2**63 - 1))


def batch_generator(device: torch.device, seed: int, epoch: int, batch: int) -> torch.Generator:
    """A generator on `device` of its own for one batch (seeded by seed, epoch and batch
    number), so an augmentation draws the same for a resumed run and never touches torch's
    global RNG."""
    return torch.Generator(device=device).manual_seed(_derived_seed(seed, epoch, batch))


class BatchAugment:
    """`(x, y) -> (x, y)`: the configured augmentation of one normalised training batch."""

    def __init__(
        self,
        pipeline: nn.Module | None,
        *,
        mixup: float,
        cutmix: float,
        num_classes: int,
        seed: int,
        channels: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        self.pipeline = pipeline
        self.mixup, self.cutmix = float(mixup), float(cutmix)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.mean = [0.0] * channels if mean is None else [float(m) for m in mean]
        self.std = [1.0] * channels if std is None else [float(s) for s in std]
        self.epoch, self.calls = 0, 0

    @property
    def mixes(self) -> bool:
        return bool(self.mixup or self.cutmix)

    def start_epoch(self, epoch: int, model: object = None, optimizer: object = None) -> None:
        """Called at each epoch's start (a callback): batches of `epoch` are numbered from 1
        again."""
        self.epoch, self.calls = int(epoch), 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        seed = _derived_seed(self.seed, self.epoch, self.calls)
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if self.pipeline is not None:
                x = self._augment(x)
            if self.mixes:
                x, y = self._mix(x, y, np.random.default_rng(seed))
        return x, y

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        assert self.pipeline is not None  # __call__ checks
        dtype = x.dtype
        mean = torch.tensor(self.mean, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
        pixels = (x.float() * std + mean).clamp_(0.0, 1.0)
        out = self.pipeline(pixels)
        return ((out - mean) / std).to(dtype)

    def _mix(
        self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if y.dtype in (torch.int64, torch.int32):
            y = nn.functional.one_hot(y.long(), self.num_classes).to(torch.float32)
        use_cutmix = self.cutmix and (not self.mixup or rng.random() < 0.5)
        alpha = self.cutmix if use_cutmix else self.mixup
        lam = float(rng.beta(alpha, alpha))
        perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
        if use_cutmix:
            x, lam = _cutmix(x, perm, lam, rng)
        else:
            x = x * lam + x[perm] * (1.0 - lam)
        return x, y * lam + y[perm] * (1.0 - lam)


def _cutmix(
    x: torch.Tensor, perm: torch.Tensor, lam: float, rng: np.random.Generator
) -> tuple[torch.Tensor, float]:
    """Paste a box of area ~(1 - lam) from the permuted batch; lam is corrected to the exact
    share of pixels kept."""
    h, w = x.shape[-2:]
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(round(h * cut)), int(round(w * cut))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
    out = x.clone()
    out[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    return out, 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)


# ---------------------------------------------------------------- the preview (step 4 / 6)


def augment_preview(
    project: Workspace, *, n: int = 16, seed: int = 0, versions: int = PREVIEW_VERSIONS
) -> Path:
    """reports/augment_preview.png: `n` train samples (first column) and `versions` augmented
    versions of each, exactly as the trainer would produce them (train split only). Series
    and audio projects: train/augment_preview_signals.py."""
    from dlworkflow import store
    from dlworkflow.train.tensors import channel_stats, image_format, normalise

    cfg = project.config
    modality = task_of(cfg.task).modality
    if modality in ("sequence", "audio"):
        from dlworkflow.train.augment_preview_signals import signal_preview

        return signal_preview(project, modality=modality, n=n, seed=seed)
    if modality != "image":
        raise ConfigError(
            f"augment-preview shows augmentation; this project's task is {cfg.task}, whose "
            "data has none.",
            expected="a task on images, series or audio: "
            + ", ".join(n for n in task_names() if task_of(n).modality in augment_keys.BY_MODALITY),
            received=f"task: {cfg.task}",
            fix="augmentation (augment:) applies to image, series and audio projects",
        )
    channels, size = image_format(project)
    rows = store.load_split(project, "train")
    if not augment_keys.applied(cfg.augment, "image"):
        raise ConfigError(
            "There is nothing to preview: every image option under augment: is 0 (off).",
            expected="at least one non-zero option under augment:",
            received=str(cfg.augment.model_dump()),
            fix="set e.g. augment: {flip: 0.5, rotation: 10} in dlworkflow.yaml",
        )
    picked = rows.sample(n=min(n, len(rows)), random_state=seed).sort_index()
    images = store.image_tensor(
        project, picked, channels=channels, size=size, max_pixels=cfg.data.max_image_pixels
    )
    mean, std = channel_stats(images)
    x = normalise(images, mean, std)
    classes = [str(c) for c in store.read_split_info(project).classes]
    task = task_of(cfg.task)
    labels = [str(v) for v in picked["label"]]
    if task.dense:  # the boxes / masks at the network's size, drawn over each version
        y = torch.from_numpy(np.ascontiguousarray(task.encode(labels, classes, size=size)))
    else:
        y = torch.tensor([classes.index(v) for v in labels], dtype=torch.int64)
    transform = build(
        cfg.augment,
        channels=channels,
        size=size,
        num_classes=len(classes),
        seed=seed,
        mean=mean,
        std=std,
        kind=task.kind,
    )
    if transform is None:  # every switched-on option is one this task's targets skip
        raise ConfigError(
            f"There is nothing to preview: none of {enabled(cfg.augment)} applies to "
            f"{cfg.task} targets.",
            expected="flip, resized_crop, translate, color_jitter"
            + (", rotation (masks)" if task.kind in augment_dense.ROTATES else "")
            + (", mosaic (boxes)" if task.kind in augment_dense.MOSAIC else ""),
            received=str(enabled(cfg.augment)),
            fix="set e.g. augment: {flip: 0.5, translate: 0.1} in dlworkflow.yaml",
        )
    columns, targets = [images], [y.numpy()]
    for _ in range(versions):
        out, moved = transform(x, y)
        columns.append(_to_uint8(out, mean, std))
        targets.append(moved.numpy())
    overlay = augment_dense.OVERLAYS.get(task.kind)
    return _write_grid(
        project.paths.reports / PREVIEW_FILE,
        columns,
        overlay=(lambda img, j, i: overlay(img, targets[j][i])) if overlay else None,
    )


def _to_uint8(x: torch.Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x * s + m).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def _write_grid(
    path: Path,
    columns: list[np.ndarray],
    *,
    cell: int = 96,
    gap: int = 4,
    overlay: Callable[[Any, int, int], Any] | None = None,
) -> Path:
    """One row per sample: the original, a wider gap, then its augmented versions.
    `overlay(cell image, column, row)` draws the target over each cell (boxes, masks)."""
    from PIL import Image

    from dlworkflow.fileio import atomic_write_with

    n = len(columns[0])
    grid = Image.new(
        "RGB", (len(columns) * (cell + gap) + 3 * gap, n * (cell + gap) + gap), "white"
    )
    for j, column in enumerate(columns):
        for i, arr in enumerate(column):
            img = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
            img = img.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST)
            if overlay is not None:
                img = overlay(img, j, i)
            left = gap + j * (cell + gap) + (2 * gap if j else 0)
            grid.paste(img, (left, gap + i * (cell + gap)))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda p: grid.save(p, format="PNG"))
    return path
