"""ModelMeta: the typed content of a trained model's model.json (models/saving.py writes and
reads it; `dlw test`, export, the baselines and warm starts read it through this type)."""

from __future__ import annotations

from typing import Any, TypedDict


class ModelMeta(TypedDict, total=False):
    """model.json. Every file has name, params, num_classes, classes and weights_sha256;
    the input arguments of its modality and `preprocessing` rebuild and feed the network;
    the rest records where it came from. Older files lack the keys added later (task,
    target: read as classification and {})."""

    # the network and how to rebuild it (the model's dlw_spec)
    name: str
    params: dict[str, Any]
    num_classes: int
    modality: str  # "image" | "text" | "tabular"
    in_channels: int
    image_size: list[int]
    vocab_size: int
    n_features: int
    preprocessing: dict[str, Any]
    # images' format and the train split's pixel statistics
    channels: int | None
    size: list[int] | None
    mean: list[float]
    std: list[float]
    # what it predicts
    task: str  # dlworkflow.tasks name
    classes: list[str]  # one name per output: classes, labels, or ["value"]
    target: dict[str, Any]  # Task.fit_target + fit_on_validation: scaling, thresholds
    # how it was trained
    metric: str
    val_metric: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]]
    dataset_version: str
    split_hash: str
    seed: int
    ledger_run_id: int
    mlflow_run_id: str
    transfer: dict[str, Any]  # strategy, reason (train/strategies.py)
    init_from: dict[str, Any]
    numerics: dict[str, Any]  # the per-step NaN/inf check (FitResult.numerics)
    spec: dict[str, Any]  # dlworkflow.yaml in git at training (train/step.py spec_record)
    # the weights file
    weights_sha256: str
    weights_file: str
    format_version: int


def image_size(meta: ModelMeta) -> tuple[int, int]:
    """(height, width) an image model takes."""
    height, width = meta["image_size"]
    return int(height), int(width)
