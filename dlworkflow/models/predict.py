"""Load the trained model and turn manifest rows into its outputs: raw logits, class
probabilities (classification), or what the task makes of the logits (`predict_outputs`:
probabilities, label probabilities, values in the target's units).

The rows become the network's input as in training: images decoded and normalised, texts
tokenized, tables encoded, series read from their stored arrays (store.series.series_tensor:
NaN after each series' end, every batch cut to its longest series), clips decoded with the
model's ClipSettings (store.clips.clip_tensor: mono waveforms at its sample rate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.models.meta import image_size
from dlworkflow.store import image_tensor, read_trained_pointer

DENSE_BATCH = 32  # images decoded and run at once for a dense task's outputs

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.tasks import Task
    from dlworkflow.workspace import Workspace


def load_model(project: Workspace) -> tuple[Any, ModelMeta]:
    from dlworkflow.models import load_trained

    return load_trained(read_trained_pointer(project)["folder"])


def predict_proba(
    project: Workspace, model: Any, meta: ModelMeta, rows: pd.DataFrame, *, batch_size: int = 256
) -> np.ndarray:
    """Class probabilities (N, classes) for manifest rows: the softmax of predict_logits."""
    import torch

    logits = predict_logits(project, model, meta, rows, batch_size=batch_size)
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def model_task(project: Workspace, meta: ModelMeta) -> Task:
    """The task the model was trained for (model.json `task`; older models: the project's)."""
    from dlworkflow.tasks import task_of

    return task_of(str(meta.get("task") or project.config.task))


def predict_outputs(
    project: Workspace, model: Any, meta: ModelMeta, rows: pd.DataFrame, *, batch_size: int = 256
) -> np.ndarray:
    """What the network's outputs mean for its task, float64: class probabilities (N, K),
    label probabilities (N, L), or values in the target's units (N, 1); the target's
    settings (scaling, thresholds) come from model.json `target`. Dense tasks: see
    dense_outputs."""
    task = model_task(project, meta)
    if task.dense:
        return dense_outputs(project, model, meta, rows, task)
    logits = predict_logits(project, model, meta, rows, batch_size=batch_size)
    return np.asarray(
        task.outputs(logits.astype(np.float64), meta.get("target") or {}), dtype=np.float64
    )


def dense_outputs(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    task: Task,
    *,
    batch_size: int = DENSE_BATCH,
) -> np.ndarray:
    """A dense task's outputs in the task's own dtype: detection boxes float64 (N, K, 6),
    segmentation probabilities float32 (N, C, H, W). The task turns each batch's raw maps
    into outputs as it comes (the images stay a memory map of the cache), so no (N, C, H, W)
    logits, nor a float64 copy of them, are ever held for the whole set."""
    target = meta.get("target") or {}
    return predict_logits(
        project,
        model,
        meta,
        rows,
        batch_size=batch_size,
        each=lambda logits: np.asarray(task.outputs(logits, target)),
    )


def predict_logits(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    *,
    batch_size: int = 256,
    each: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Logits (N, classes) float32 for manifest rows, transformed exactly as in training
    from the saved model.json: images decoded at the model's format and normalised with its
    mean/std, texts tokenized with its tokenizer and max_len, tables encoded with the train
    statistics and categories. `each`: applied to each batch's logits as they come (a dense
    task's outputs: see dense_outputs); with no rows, the outputs have its shape with no
    row."""
    import torch

    modality = meta.get("modality", "image")
    if modality == "text":
        inputs, order = _text_inputs(rows, meta)
    elif modality == "tabular":
        inputs, order = _table_inputs(rows, meta), None
    elif modality == "sequence":
        inputs, order = _series_inputs(project, rows)
    elif modality == "audio":
        inputs, order = _clip_inputs(project, rows, meta), None
    else:
        inputs, order = _image_inputs(project, rows, meta), None
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            logits = model(inputs(start, start + batch_size)).float().numpy()
            out.append(logits if each is None else each(logits))
        if each is not None and not out:  # no rows: one blank image gives the output's shape
            blank = torch.zeros((1, int(meta["in_channels"]), *image_size(meta)))
            out.append(each(model(blank).float().numpy())[:0])
    logits = np.concatenate(out) if out else np.zeros((0, len(meta["classes"])), dtype=np.float32)
    if order is not None:  # back from length order to row order
        restored = np.empty_like(logits)
        restored[order] = logits
        logits = restored
    return logits


def image_pixels(project: Workspace, rows: pd.DataFrame, meta: ModelMeta) -> np.ndarray:
    """The rows' images as the model takes them: uint8 (N, C, H, W) at its size and channels."""
    return image_tensor(
        project,
        rows,
        channels=int(meta["in_channels"]),
        size=image_size(meta),
        max_pixels=project.config.data.max_image_pixels,
    )


def image_normaliser(meta: ModelMeta) -> Callable[[np.ndarray], Any]:
    """uint8 pixels (N, C, H, W) -> the float tensor the model takes (the train split's
    per-channel mean and std)."""
    import torch

    mean = torch.tensor(meta["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(meta["std"], dtype=torch.float32).view(1, -1, 1, 1)
    return lambda pixels: (torch.from_numpy(pixels).float().div_(255.0) - mean) / std


def _image_inputs(project: Workspace, rows: pd.DataFrame, meta: ModelMeta) -> Any:
    pixels = image_pixels(project, rows, meta)
    normalised = image_normaliser(meta)

    def batch(start: int, stop: int) -> Any:
        return normalised(pixels[start:stop])

    return batch


def _series_inputs(project: Workspace, rows: pd.DataFrame) -> tuple[Any, np.ndarray]:
    """NaN-padded series (N, C, T) in order of length (batches carry little padding), each
    batch cut to its longest series, and that order."""
    import torch

    from dlworkflow.store.series import lengths_of, series_tensor

    batch = series_tensor(project, rows)
    lengths = lengths_of(batch)
    order = np.argsort(lengths, kind="stable")

    def inputs(start: int, stop: int) -> Any:
        chosen = order[start:stop]
        longest = int(lengths[chosen].max()) if len(chosen) else 1
        return torch.from_numpy(np.ascontiguousarray(batch[chosen, :, :longest]))

    return inputs, order


def clip_settings_of(project: Workspace, meta: ModelMeta) -> Any:
    """The ClipSettings an audio model was trained with: its preprocessing, the project's
    data.audio for any field it lacks."""
    from dlworkflow.store.clips import ClipSettings

    base = ClipSettings.from_config(project.config.data.audio).as_dict()
    return ClipSettings.from_dict({**base, **(meta.get("preprocessing") or {})})


def _clip_inputs(project: Workspace, rows: pd.DataFrame, meta: ModelMeta) -> Any:
    import torch

    from dlworkflow.store.clips import clip_tensor

    waves = clip_tensor(project, rows, clip_settings_of(project, meta))
    return lambda start, stop: torch.from_numpy(np.ascontiguousarray(waves[start:stop]))


def _text_inputs(rows: pd.DataFrame, meta: ModelMeta) -> tuple[Any, np.ndarray]:
    """Token ids in order of length (batches carry little padding), and that order."""
    import torch

    from dlworkflow.models import TOKENIZER, ModelFileError, tokenize

    prep = meta["preprocessing"]
    if prep.get("tokenizer", TOKENIZER) != TOKENIZER:
        raise ModelFileError(
            f"The model was trained with the tokenizer {prep.get('tokenizer')!r}, which this "
            "version of dlworkflow does not have.",
            expected=TOKENIZER,
            received=repr(prep.get("tokenizer")),
            fix="run `dlw train` again",
        )
    ids = tokenize(rows["text"].fillna("").astype(str).tolist(), int(prep["max_len"]))
    order = np.argsort((ids != 0).sum(1), kind="stable")
    batch = torch.from_numpy(np.ascontiguousarray(ids[order]))
    return (lambda start, stop: batch[start:stop]), order


def _table_inputs(rows: pd.DataFrame, meta: ModelMeta) -> Any:
    import torch

    from dlworkflow.models import encode_table

    x = torch.from_numpy(encode_table(rows, meta["preprocessing"]))
    return lambda start, stop: x[start:stop]


def label_indices(rows: pd.DataFrame, classes: list[str]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(str(label), -1) for label in rows["label"]], dtype=np.int64)
