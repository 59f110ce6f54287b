"""Train and validation data as in-memory tensors, normalised once with the train statistics.

Only the open splits are read (`store.load_split` refuses the sealed test set by design).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from dlworkflow import store
from dlworkflow.errors import TrainError

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project


@dataclass
class TrainData:
    x_train: torch.Tensor  # float32 (N, C, H, W), normalised
    y_train: torch.Tensor  # int64 class indices into `classes`
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: list[str]
    channels: int
    size: tuple[int, int]
    mean: list[float]  # per channel, of train pixels scaled to 0..1
    std: list[float]


def image_format(project: Project) -> tuple[int, tuple[int, int]]:
    """(channels, (h, w)) the network sees: data.image in the config, else the dataset's own."""
    image = project.config.data.image
    if image.channels is not None and image.size is not None:
        return image.channels, tuple(image.size)
    info = store.read_dataset_info(project)
    channels = image.channels or info.channels
    size = tuple(image.size) if image.size is not None else tuple(info.size)
    return int(channels), (int(size[0]), int(size[1]))


def load_train_val(project: Project, classes: list[str], *, channels: int,
                   size: tuple[int, int], report: object = None,
                   stats: tuple[list[float], list[float]] | None = None) -> TrainData:
    """Decode (or read from the tensor cache) train and val images and normalise them, with
    the train split's per-channel statistics, or with `stats` (a pretrained backbone's)."""
    arrays, labels = {}, {}
    for name in ("train", "val"):
        rows = store.load_split(project, name)
        if rows.empty:
            raise TrainError(
                f"The {name} split is empty: there is nothing to train or validate on.",
                expected=f"at least one sample in {name}",
                received="0 samples",
                fix="ingest more data or change the fractions under `split:`, then `dlw split`",
            )
        arrays[name] = store.image_tensor(project, rows, channels=channels, size=size,
                                          max_pixels=project.config.data.max_image_pixels,
                                          progress=report)
        labels[name] = label_indices(rows, classes)
    mean, std = (list(stats[0])[:channels], list(stats[1])[:channels]) if stats else (
        channel_stats(arrays["train"]))
    return TrainData(
        x_train=normalise(arrays["train"], mean, std), y_train=labels["train"],
        x_val=normalise(arrays["val"], mean, std), y_val=labels["val"],
        classes=list(classes), channels=channels, size=size, mean=mean, std=std,
    )


def label_indices(rows: pd.DataFrame, classes: list[str]) -> torch.Tensor:
    index = {str(c): i for i, c in enumerate(classes)}
    mapped = rows["label"].astype(str).map(index)
    if mapped.isna().any():
        unknown = sorted(set(rows["label"].astype(str)[mapped.isna()]))[:5]
        raise TrainError(
            "Some samples have labels that are not among the split's classes.",
            expected=f"labels in {classes}",
            received=", ".join(unknown),
            fix="run `dlw split` again so the split matches the current dataset",
        )
    return torch.from_numpy(mapped.to_numpy(dtype=np.int64, copy=True))


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 (N, C, H, W) images on the 0..1 scale."""
    flat = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1).astype(np.float64) / 255.0
    mean = flat.mean(axis=1)
    std = flat.std(axis=1)
    std[std < 1e-6] = 1.0  # a constant channel: centre it, do not blow it up
    return mean.tolist(), std.tolist()


def normalise(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 ((x / 255) - mean) / std, once for the whole set."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)
