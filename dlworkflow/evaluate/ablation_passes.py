"""What every modality's importance measurement does the same way: a seeded subsample of the
rows within a budget of forward passes, and batched forward passes without gradients.

Shared by dlworkflow.evaluate.importance (tabular, image, text) and
dlworkflow.evaluate.signal_importance (sequence, audio)."""

from __future__ import annotations

from typing import Any

import numpy as np


def subsample(
    n: int, ablations: int, budget: int, rng: np.random.Generator, *, cap: int | None = None
) -> np.ndarray:
    """Sorted indices of a seeded subsample of n rows: at most `budget` single-sample forward
    passes over the `ablations` (and at most `cap` rows)."""
    keep = max(2, budget // max(ablations, 1))
    keep = keep if cap is None else min(keep, cap)
    if n <= keep:
        return np.arange(n)
    return np.sort(rng.choice(n, size=keep, replace=False))


def forward(model: Any, x: Any, *, batch: int) -> np.ndarray:
    """The model's outputs on x (eval mode, no gradients), `batch` rows at a time, float64."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            out.append(model(x[start : start + batch]).float().numpy())
    return np.concatenate(out).astype(np.float64)
