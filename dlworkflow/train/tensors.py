"""Train and validation data as in-memory tensors, in the form the model takes, for each task.

  images  uint8 (N, C, H, W), memory-mapped from the tensor cache (store.image_tensor), with
          the train split's per-channel statistics (or a pretrained backbone's): the trainer
          normalises each batch on the device (train/data.py)
  text    int64 token ids (N, L) of the `text` column (models.tokenize, the shared WordPiece
          tokenizer; pad 0), cached on disk by content hashes, max_len and tokenizer
  tabular float32 (N, F): the `f:` feature columns, numbers standardised with the TRAIN
          statistics (missing -> train mean, i.e. 0), strings one-hot over the train categories
  sequence float32 (N, C, T) raw values, NaN after each series' end (store.series_tensor;
          T: the split's longest); the per-channel mean and std of the TRAIN split's real
          values go into the model (`adopt`: set_normalization), which normalises inside, so
          the saved and exported model takes raw values
  audio   float32 (N, S) mono waveforms at data.audio.sample_rate with its duration policy
          (store.clip_tensor, ClipSettings.from_config); the log-mel front end is inside the
          model

`TrainData.preprocessing` is what the model's `preprocessing` must hold afterwards, so `dlw
test` (models/predict.py) transforms rows exactly as training did. Only the open splits are
read (`store.load_split` refuses the sealed test set by design). After loading, `adopt(model,
data)` gives the model what the data taught: its preprocessing and, for series, the train
split's channel statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlworkflow import store
from dlworkflow.errors import TrainError
from dlworkflow.fileio import atomic_write_with, sha256_json
from dlworkflow.models import TOKENIZER, encode_table, fit_table_encoding, n_features, tokenize
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from dlworkflow.train.data import TensorData
    from dlworkflow.workspace import Workspace

DEFAULT_MAX_LEN = 128
LOADING = {
    "image": "decoding images",
    "text": "tokenizing texts",  # by modality
    "tabular": "encoding features",
    "sequence": "reading series",
    "audio": "decoding audio clips",
}


@dataclass
class TrainData:
    x_train: torch.Tensor  # images uint8 (N, C, H, W) memmap, raw; text int64 (N, L) token
    y_train: torch.Tensor  # ids; tabular float32 (N, F) encoded. y: Task.encode's (int64
    # class indices; detection float32 (N, K, 5) boxes; segmentation uint8 (N, H, W) masks)
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: list[str]
    channels: int | None = None  # images; series: their channels
    size: tuple[int, int] | None = None  # images only
    # images: per channel, of train pixels on 0..1 (the trainer normalises uint8 batches);
    # series: per channel, of the train split's real values (the model normalises, adopt())
    mean: list[float] | None = None
    std: list[float] | None = None
    modality: str = "image"  # "image" | "text" | "tabular" | "sequence" | "audio"
    task: str = "image-classification"
    target: dict[str, Any] = field(default_factory=dict)  # Task.fit_target of y_train
    # what model.preprocessing must be updated with (the transform `dlw test` repeats)
    preprocessing: dict[str, Any] = field(default_factory=dict)

    @property
    def train(self) -> TensorData:
        """The train split for `trainer.fit` (mean/std go along only with uint8 images)."""
        return self._split(self.x_train, self.y_train)

    @property
    def val(self) -> TensorData:
        return self._split(self.x_val, self.y_val)

    def _split(self, x: torch.Tensor, y: torch.Tensor) -> TensorData:
        from dlworkflow.train.data import TensorData

        raw = x.dtype == torch.uint8
        return TensorData(x, y, mean=self.mean if raw else None, std=self.std if raw else None)

    def describe(self) -> dict[str, Any]:
        """Flat MLflow params of the input format (data.*)."""
        prep = self.preprocessing
        if self.modality == "image":
            return {
                "data.channels": self.channels,
                "data.size": f"{self.size[0]}x{self.size[1]}" if self.size else None,
            }
        if self.modality == "text":
            return {
                "data.max_len": prep.get("max_len"),
                "data.tokenizer": prep.get("tokenizer"),
                "data.tokens": int(self.x_train.shape[1]),
            }
        if self.modality == "sequence":
            return {"data.channels": self.channels, "data.length": int(self.x_train.shape[2])}
        if self.modality == "audio":
            return {
                "data.sample_rate": prep.get("sample_rate"),
                "data.duration": prep.get("duration"),
                "data.duration_policy": prep.get("policy"),
                "data.samples": int(self.x_train.shape[1]),
            }
        return {
            "data.features": len(prep.get("features", [])),
            "data.n_features": int(self.x_train.shape[1]),
        }

    def meta(self) -> dict[str, Any]:
        """Keys for model.json besides the model's own: the task and its target facts
        (the scaling of a regression target), and images' format and statistics."""
        out: dict[str, Any] = {"task": self.task, "target": self.target}
        if self.modality == "sequence":  # the statistics the model normalises with
            return {**out, "channel_stats": {"mean": self.mean, "std": self.std}}
        if self.modality != "image":
            return out
        return {
            **out,
            "channels": self.channels,
            "size": list(self.size or ()),
            "mean": self.mean,
            "std": self.std,
        }


def modality_of(project: Workspace) -> str:
    return task_of(project.config.task).modality


def loading_label(task: str) -> str:
    """What the progress bar says while the data loads."""
    return LOADING.get(task_of(task).modality, "loading data")


def input_format(project: Workspace) -> dict[str, Any]:
    """create_model's input arguments for the project's data: images in_channels + image_size,
    tabular n_features (the width of the encoded train table), series in_channels (their
    channels), audio sample_rate (data.audio's), text none."""
    modality = modality_of(project)
    if modality == "image":
        channels, size = image_format(project)
        return {"in_channels": channels, "image_size": size}
    if modality == "tabular":
        return {"n_features": n_features(table_encoding(project, _split_rows(project, "train")))}
    if modality == "sequence":
        return {"in_channels": series_channels(_split_rows(project, "train"))}
    if modality == "audio":
        return {"sample_rate": int(project.config.data.audio.sample_rate)}
    return {}


def series_channels(rows: pd.DataFrame) -> int:
    """The channels of the rows' series (ingest keeps one count per dataset: the manifest's
    `channels` column, else the first series' own)."""
    if "channels" in rows and rows["channels"].notna().any():
        counts = sorted({int(c) for c in rows["channels"].dropna()})
        if len(counts) > 1:
            raise TrainError(
                "The series of the train split have different numbers of channels.",
                expected="one channel count for every series",
                received=f"channel counts {counts[:5]}",
                fix="`dlw ingest` again: it quarantines series whose channels do not match",
            )
        return counts[0]
    from dlworkflow.store.series import read_series

    return int(read_series(rows["path"].iloc[0]).shape[0])


def adopt(model: Any, data: TrainData) -> None:
    """Give `model` what the loaded data taught it: the preprocessing `dlw test` and the server
    repeat, and for series the train split's per-channel statistics (set_normalization:
    the model normalises raw values inside, in the saved and the exported model alike)."""
    model.preprocessing.update(data.preprocessing)
    if data.modality == "sequence" and data.mean is not None and data.std is not None:
        setter = getattr(model, "set_normalization", None)
        if setter is not None:
            setter(data.mean, data.std)


def image_format(project: Workspace) -> tuple[int, tuple[int, int]]:
    """(channels, (h, w)) the network sees: data.image in the config, else the dataset's own."""
    image = project.config.data.image
    if image.channels is not None and image.size is not None:
        return image.channels, (image.size[0], image.size[1])
    info = store.read_dataset_info(project)
    channels = image.channels or info.channels
    size = image.size if image.size is not None else info.size
    assert channels is not None and size is not None, "an image dataset has both"
    return int(channels), (int(size[0]), int(size[1]))


def load_train_val(
    project: Workspace,
    classes: list[str],
    *,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    report: Callable | None = None,
    stats: tuple[list[float], list[float]] | None = None,
    preprocessing: dict[str, Any] | None = None,
) -> TrainData:
    """Train and val inputs for the project's task, with y as class indices.

    `preprocessing` is the model's: images take channels/size from it (unless given) and, for
    a pretrained backbone (fixed_normalisation), its mean/std (unless `stats` is given); text
    takes max_len. Images are normalised with the train split's per-channel statistics
    otherwise.
    """
    prep = preprocessing or {}
    rows = {name: _split_rows(project, name) for name in ("train", "val")}
    task = project.config.task
    dense = task_of(task).dense
    if dense:  # boxes and masks are encoded at the size the network sees
        channels, size = _dense_format(project, prep, channels=channels, size=size)
    labels = {
        name: label_indices(rows[name], classes, task=task, size=size if dense else None)
        for name in rows
    }
    data = _inputs(
        project,
        rows,
        labels,
        classes,
        prep,
        report=report,
        channels=channels,
        size=size,
        stats=stats,
    )
    target = task_of(task).fit_target(labels["train"].numpy())
    if dense and data.size is not None:  # the input size the boxes' pixels refer to
        target = {**target, "input_size": [int(data.size[0]), int(data.size[1])]}
    return dataclasses.replace(data, task=task, target=target)


def _dense_format(
    project: Workspace, prep: dict[str, Any], *, channels: int | None, size: Any
) -> tuple[int, tuple[int, int]]:
    """(channels, (h, w)) of a dense task's inputs, resolved before its targets are encoded:
    as given, else the model's preprocessing, else the data's (image_format)."""
    channels = channels or prep.get("channels")
    size = size or prep.get("size")
    if channels is None or size is None:
        found_channels, found_size = image_format(project)
        channels, size = channels or found_channels, size or found_size
    return int(channels), (int(size[0]), int(size[1]))


def _inputs(
    project: Workspace,
    rows: dict[str, pd.DataFrame],
    labels: dict[str, torch.Tensor],
    classes: list[str],
    prep: dict[str, Any],
    *,
    report: Callable | None,
    channels: int | None,
    size: tuple[int, int] | None,
    stats: tuple[list[float], list[float]] | None,
) -> TrainData:
    modality = modality_of(project)
    if modality == "sequence":
        return _series(project, rows, labels, classes, report=report)
    if modality == "audio":
        return _clips(project, rows, labels, classes, prep, report=report)
    if modality == "text":
        max_len = int(prep.get("max_len") or DEFAULT_MAX_LEN)
        x = {
            name: torch.from_numpy(token_ids(project, rows[name], max_len=max_len, report=report))
            for name in rows
        }
        extra = {"modality": "text", "max_len": max_len, "tokenizer": TOKENIZER}
        return TrainData(
            x["train"],
            labels["train"],
            x["val"],
            labels["val"],
            list(classes),
            modality="text",
            preprocessing=extra,
        )
    if modality == "tabular":
        encoding = table_encoding(project, rows["train"])
        x = {name: torch.from_numpy(encode_table(rows[name], encoding)) for name in rows}
        if report is not None:
            report(len(rows["train"]), len(rows["train"]))
        return TrainData(
            x["train"],
            labels["train"],
            x["val"],
            labels["val"],
            list(classes),
            modality="tabular",
            preprocessing=encoding,
        )
    return _images(
        project,
        rows,
        labels,
        classes,
        channels=channels or prep.get("channels"),
        size=size or prep.get("size"),
        report=report,
        stats=stats or ((prep["mean"], prep["std"]) if prep.get("fixed_normalisation") else None),
    )


def _split_data(
    arrays: dict[str, np.ndarray],
    labels: dict[str, torch.Tensor],
    classes: list[str],
    **fields: Any,
) -> TrainData:
    """TrainData of the train and val arrays (as tensors sharing their memory) and labels."""
    return TrainData(
        x_train=torch.from_numpy(arrays["train"]),
        y_train=labels["train"],
        x_val=torch.from_numpy(arrays["val"]),
        y_val=labels["val"],
        classes=list(classes),
        **fields,
    )


def _images(
    project: Workspace,
    rows: dict[str, pd.DataFrame],
    labels: dict[str, torch.Tensor],
    classes: list[str],
    *,
    channels: int | None,
    size: Any,
    report: Callable | None,
    stats: tuple[list[float], list[float]] | None,
) -> TrainData:
    if channels is None or size is None:
        channels, size = image_format(project)
    channels, size = int(channels), (int(size[0]), int(size[1]))
    arrays = {
        name: store.image_tensor(
            project,
            rows[name],
            channels=channels,
            size=size,
            max_pixels=project.config.data.max_image_pixels,
            progress=report,
        )
        for name in rows
    }
    mean, std = (
        (list(stats[0])[:channels], list(stats[1])[:channels])
        if stats
        else (channel_stats(arrays["train"]))
    )
    # uint8, memory-mapped: the trainer normalises each batch on the device with mean/std
    return _split_data(
        arrays,
        labels,
        classes,
        channels=channels,
        size=size,
        mean=mean,
        std=std,
        modality="image",
        preprocessing={"mean": mean, "std": std},
    )


def _series(
    project: Workspace,
    rows: dict[str, pd.DataFrame],
    labels: dict[str, torch.Tensor],
    classes: list[str],
    *,
    report: Callable | None,
) -> TrainData:
    """float32 (N, C, T) NaN-padded series of each split, with the train split's per-channel
    statistics over the real values."""
    from dlworkflow.store.series import series_tensor

    channels = series_channels(rows["train"])
    x = {name: series_tensor(project, rows[name], progress=report) for name in rows}
    found = {name: int(x[name].shape[1]) for name in x}
    if set(found.values()) != {channels}:
        raise TrainError(
            "The train and val series do not have the same channels.",
            expected=f"{channels} channels in every split",
            received=", ".join(f"{k}: {v}" for k, v in found.items()),
            fix="`dlw ingest` again (it quarantines series of other channel counts), then "
            "`dlw split`",
        )
    mean, std = series_stats(x["train"])
    return _split_data(
        x,
        labels,
        classes,
        channels=channels,
        mean=mean,
        std=std,
        modality="sequence",
        preprocessing={"modality": "sequence", "channels": channels},
    )


def series_stats(batch: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over the real (non-NaN) values of a NaN-padded (N, C, T)
    batch, in float64 chunks of series; a constant channel gets std 1."""
    channels = batch.shape[1]
    count, total, squares = np.zeros(channels), np.zeros(channels), np.zeros(channels)
    chunk = max(1, (32 << 20) // max(1, batch[0].size * 8))
    for i in range(0, len(batch), chunk):
        part = batch[i : i + chunk].astype(np.float64)
        real = ~np.isnan(part)
        count += real.sum(axis=(0, 2))
        total += np.where(real, part, 0.0).sum(axis=(0, 2))
    mean = total / np.maximum(count, 1)
    for i in range(0, len(batch), chunk):
        part = batch[i : i + chunk].astype(np.float64) - mean[None, :, None]
        squares += np.where(np.isnan(part), 0.0, part * part).sum(axis=(0, 2))
    std = np.sqrt(squares / np.maximum(count, 1))
    std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean.tolist(), std.tolist()


def _clips(
    project: Workspace,
    rows: dict[str, pd.DataFrame],
    labels: dict[str, torch.Tensor],
    classes: list[str],
    prep: dict[str, Any],
    *,
    report: Callable | None,
) -> TrainData:
    """float32 (N, S) waveforms of each split at data.audio's rate and duration policy."""
    from dlworkflow.store.clips import ClipSettings, clip_tensor

    settings = ClipSettings.from_config(project.config.data.audio)
    rate = prep.get("sample_rate")
    if rate is not None and int(rate) != settings.sample_rate:
        raise TrainError(
            "The model's sample rate is not the data's.",
            expected=f"data.audio.sample_rate {settings.sample_rate} Hz",
            received=f"a model built for {rate} Hz",
            fix="build the model with sample_rate=data.audio.sample_rate (dlw train does)",
        )
    x = {name: clip_tensor(project, rows[name], settings, progress=report) for name in rows}
    return _split_data(
        x,
        labels,
        classes,
        modality="audio",
        preprocessing={"modality": "audio", **settings.as_dict()},
    )


def _split_rows(project: Workspace, name: str) -> pd.DataFrame:
    rows = store.load_split(project, name)
    if rows.empty:
        raise TrainError(
            f"The {name} split is empty: there is nothing to train or validate on.",
            expected=f"at least one sample in {name}",
            received="0 samples",
            fix="ingest more data or change the fractions under `split:`, then `dlw split`",
        )
    return rows


def token_ids(
    project: Workspace, rows: pd.DataFrame, *, max_len: int, report: Callable | None = None
) -> np.ndarray:
    """int64 (N, L) token ids of the rows' `text`, in row order; cached on disk by the texts'
    content hashes, max_len and the tokenizer (as store.image_tensor caches pixels)."""
    key = sha256_json([rows["content_hash"].tolist(), max_len, TOKENIZER])[:24]
    path = project.paths.cache / f"tokens-{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    ids = tokenize(rows["text"].fillna("").astype(str).tolist(), max_len)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda p: _save_npy(p, ids))
    if report is not None:
        report(len(rows), len(rows))
    return ids


def table_encoding(project: Workspace, train_rows: pd.DataFrame) -> dict[str, Any]:
    """The feature encoding learnt on the train rows (models.fit_table_encoding)."""
    features = store.read_dataset_info(project).features
    if not features:
        raise TrainError(
            "The dataset has no feature columns to train a tabular model on.",
            expected="feature columns recorded by `dlw ingest` (name -> number | string)",
            received="none",
            fix="check data.feature_columns, then `dlw ingest` again",
        )
    return fit_table_encoding(train_rows, features)


def _save_npy(path: Any, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def label_indices(
    rows: pd.DataFrame,
    classes: list[str],
    *,
    task: str = "image-classification",
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The rows' targets encoded by the task (classification: int64 class indices;
    regression: float32 values; multi-label: float32 (N, labels) 0/1; detection: float32
    (N, K, 5) normalised boxes; segmentation: uint8 (N, H, W) masks at `size`, the network's
    (height, width)); TrainError when a target is outside the split's classes or labels."""
    kind = task_of(task)
    targets = rows["label"].astype(str).tolist()
    y = kind.encode(targets, classes, size=size)
    known = kind.known(y)
    if not known.all():
        unknown = sorted({t for t, ok in zip(targets, known) if not ok})[:5]
        raise TrainError(
            "Some samples have labels that are not among the split's classes.",
            expected=f"labels in {classes}",
            received=", ".join(unknown),
            fix="run `dlw split` again so the split matches the current dataset",
        )
    return torch.from_numpy(np.ascontiguousarray(y))


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 (N, C, H, W) images on the 0..1 scale, in chunks of
    samples (a memory-mapped split is never loaded whole, nor converted whole to float)."""
    n, channels = images.shape[0], images.shape[1]
    chunk = max(1, (64 << 20) // max(1, images[0].size))  # ~64 MB of uint8 at a time
    total = np.zeros(channels)
    for i in range(0, n, chunk):
        total += images[i : i + chunk].sum(axis=(0, 2, 3), dtype=np.float64)
    count = n * images.shape[2] * images.shape[3]
    mean = total / count / 255.0
    squares = np.zeros(channels)
    for i in range(0, n, chunk):
        part = images[i : i + chunk].astype(np.float64) / 255.0 - mean[None, :, None, None]
        squares += (part * part).sum(axis=(0, 2, 3))
    std = np.sqrt(squares / count)
    std[std < 1e-6] = 1.0  # a constant channel: centre it, do not blow it up
    return mean.tolist(), std.tolist()


def normalise(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 ((x / 255) - mean) / std, once for the whole set."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)
