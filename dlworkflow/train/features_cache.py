"""Frozen-backbone features, computed once and cached on disk (the `frozen` transfer strategy).

The backbone's `features(x)` for every train and val image is computed in batches under
`torch.inference_mode` (eval mode: batch norm uses its running statistics, dropout is off)
and stored as one safetensors file under `.dlw/cache/features/`. The file name is a hash of
everything the features depend on:

  - the dataset version and the split hash (which samples, in which order);
  - the model's registry name and `model.params`, and a fingerprint of the backbone's
    weights (every tensor of the state dict outside the head);
  - the preprocessing: channels, size, mean and std the images were normalised with (for
    text and tables: the tokenizer and max_len, the feature encoding);
  - the number of train and val samples and FORMAT (this module's version).

Change any of them and the features are recomputed; otherwise training the head again (new
learning rate, more epochs) costs seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlworkflow.fileio import atomic_write_with, sha256_json

if TYPE_CHECKING:
    from dlworkflow.models.base import Classifier
    from dlworkflow.train.data import TensorData
    from dlworkflow.train.tensors import TrainData
    from dlworkflow.workspace import Workspace

FORMAT = 1
FOLDER = "features"
Report = Callable[[int, int], None]

#: Feature extractions actually run (not read from the cache) in this process; for tests.
COMPUTED = {"count": 0}


@dataclass
class Features:
    train: torch.Tensor  # float32 (N_train, F)
    val: torch.Tensor  # float32 (N_val, F)
    path: Path
    from_cache: bool
    seconds: float


def backbone_fingerprint(model: nn.Module) -> str:
    """sha256 over the names, shapes and bytes of every state tensor outside the head."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("head."):
            continue
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def feature_key(
    model: nn.Module, data: TrainData, *, dataset_version: str, split_hash: str
) -> dict[str, Any]:
    """Everything the cached features depend on (hashed into the file name)."""
    spec = getattr(model, "dlw_spec", {})
    return {
        "format": FORMAT,
        "dataset_version": dataset_version,
        "split_hash": split_hash,
        "model": spec.get("name", type(model).__name__),
        "params": spec.get("params", {}),
        "backbone": backbone_fingerprint(model),
        "modality": getattr(data, "modality", "image"),
        "channels": data.channels,
        "size": list(data.size) if data.size else None,
        "mean": data.mean,
        "std": data.std,
        "preprocessing": getattr(data, "preprocessing", {}),
        "n_train": len(data.y_train),
        "n_val": len(data.y_val),
    }


def cached_features(
    project: Workspace,
    model: Classifier,
    data: TrainData,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    report: Report | None = None,
) -> Features:
    """The backbone features of data.x_train and data.x_val, from the cache or computed now."""
    import time

    from safetensors.torch import load_file, save_file

    started = time.perf_counter()
    path, key = _cache_entry(project, model, data)
    if path.is_file():
        try:
            tensors = load_file(str(path))
            return Features(
                tensors["train"], tensors["val"], path, True, time.perf_counter() - started
            )
        except Exception:  # a damaged cache file is recomputed
            pass
    total = len(data.y_train) + len(data.y_val)
    train = extract(
        model, data.train, device=device, batch_size=batch_size, report=_offset(report, 0, total)
    )
    val = extract(
        model,
        data.val,
        device=device,
        batch_size=batch_size,
        report=_offset(report, len(data.y_train), total),
    )
    COMPUTED["count"] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(
        path,
        lambda p: save_file(
            {"train": train, "val": val}, str(p), metadata={"key": sha256_json(key)}
        ),
    )
    return Features(train, val, path, False, time.perf_counter() - started)


def cache_file(project: Workspace, model: nn.Module, data: TrainData) -> Path:
    """Where the features of `model` on `data` are (or would be) cached."""
    return _cache_entry(project, model, data)[0]


def _cache_entry(
    project: Workspace, model: nn.Module, data: TrainData
) -> tuple[Path, dict[str, Any]]:
    from dlworkflow import store

    info = store.read_split_info(project)
    key = feature_key(model, data, dataset_version=info.dataset_version, split_hash=info.hash)
    name = f"{key['model']}-{sha256_json(key)[:24]}.safetensors"
    return project.paths.cache / FOLDER / name, key


def extract(
    model: Classifier,
    data: TensorData | torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    report: Report | None = None,
) -> torch.Tensor:
    """`model.features` of every sample, batched, eval mode, inference mode; float32 on the
    CPU. `data`: a TensorData (uint8 images are normalised per batch on the device, as the
    trainer does) or a float tensor already normalised."""
    from dlworkflow.train.data import TensorData

    if isinstance(data, torch.Tensor):
        data = TensorData(data, torch.zeros(len(data), dtype=torch.int64))
    device = torch.device(device)
    was_training = model.training
    original = next(model.parameters()).device
    model.eval().to(device)
    chunks, done = [], 0
    order = _by_length(data.x)
    try:
        with torch.inference_mode():
            for xb, _ in data.place(device).batches(order, batch_size):
                chunks.append(model.features(xb).float().cpu())
                done += len(xb)
                if report is not None:
                    report(done, len(data))
    finally:
        model.to(original).train(was_training)
    if not chunks:
        return torch.empty(0, 0)
    out = torch.cat(chunks)
    if order is not None:  # back to the samples' order
        out = torch.empty_like(out).index_copy_(0, order, out)
    return out.contiguous()


def _by_length(x: torch.Tensor | Any) -> torch.Tensor | None:
    """Token ids (N, L) int64, 0 the padding on the right: the samples shortest first, so
    each batch is trimmed to texts of about one length (a text model's batch costs what its
    longest text costs; on Rotten Tomatoes 2-3x faster than in the split's order). None for
    other inputs (images, tables, signals): their order as it is."""
    if len(x.shape) != 2 or str(x.dtype) not in ("int64", "torch.int64", "int32", "torch.int32"):
        return None
    lengths = (torch.as_tensor(x) != 0).sum(1)
    return torch.argsort(lengths, stable=True)


def _offset(report: Report | None, done: int, total: int) -> Report | None:
    if report is None:
        return None
    return lambda i, _n: report(done + i, total)
