"""Load the trained model and turn manifest rows into class probabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.store import image_tensor, read_trained_pointer

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project


def load_model(project: Project) -> tuple[Any, dict[str, Any]]:
    from dlworkflow.models import load_trained

    return load_trained(read_trained_pointer(project)["folder"])


def predict_proba(project: Project, model: Any, meta: dict[str, Any], rows: pd.DataFrame,
                  *, batch_size: int = 256) -> np.ndarray:
    import torch

    pixels = image_tensor(project, rows, channels=int(meta["in_channels"]),
                          size=tuple(meta["image_size"]),
                          max_pixels=project.config.data.max_image_pixels)
    mean = torch.tensor(meta["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(meta["std"], dtype=torch.float32).view(1, -1, 1, 1)
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            batch = torch.from_numpy(pixels[start:start + batch_size]).float().div_(255.0)
            logits = model((batch - mean) / std)
            out.append(torch.softmax(logits.float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(meta["classes"])))


def label_indices(rows: pd.DataFrame, classes: list[str]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(str(label), -1) for label in rows["label"]], dtype=np.int64)
