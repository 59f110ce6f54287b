"""Regression: one number per sample, any modality.

The manifest stores the target as text (repr of a finite float). The network has one output,
trained on the standardised target (mean 0, standard deviation 1 over the train split, so the
learning rate does not depend on the target's units); `outputs` undoes the scaling, which
travels with the model (model.json `target`, metadata.json of an export). Metrics: RMSE, MAE,
R^2 and MAPE, lower is better for all but R^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.tasks.base import MetricSpec, TargetError, Task, cell_text

if TYPE_CHECKING:
    import torch

MAX_BINS = 10  # quantile bins the split stratifies on
MIN_PER_BIN = 10  # fewer bins on small data: at least this many samples in each


class Regression(Task):
    kind = "regression"
    default_metric = "rmse"
    example_target = "3.5"
    companion_metric = "mae"
    metrics = (
        MetricSpec(
            "rmse",
            higher_is_better=False,
            bounds=(0.0, None),
            description="root mean squared error",
        ),
        MetricSpec(
            "mae", higher_is_better=False, bounds=(0.0, None), description="mean absolute error"
        ),
        MetricSpec(
            "r2", bounds=(None, 1.0), description="coefficient of determination (1 - SSE / SST)"
        ),
        MetricSpec(
            "mape",
            higher_is_better=False,
            bounds=(0.0, None),
            description="mean absolute percentage error, as a fraction (0.1 = 10%); "
            "samples whose target is 0 are left out",
        ),
    )

    def parse_target(self, raw: Any, *, column: str) -> str:
        text = cell_text(raw)
        if text is None:
            raise TargetError(f"no target value (empty or NaN {column})")
        try:
            value = float(text)
        except ValueError:
            raise TargetError(f"target {text[:30]!r} in {column} is not a number") from None
        if math.isnan(value):
            raise TargetError(f"target in {column} is NaN")
        if math.isinf(value):
            raise TargetError(f"target in {column} is infinite ({text[:30]})")
        return repr(value)

    def strata(self, targets: Sequence[str]) -> list[str]:
        """Quantile bins of the target (up to 10, each of at least 10 samples), so train,
        validation and test cover the same range of values."""
        values = np.array([float(t) for t in targets], dtype=np.float64)
        bins = max(1, min(MAX_BINS, len(values) // MIN_PER_BIN))
        if bins == 1:
            return ["all"] * len(values)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        return [f"q{int(b)}" for b in np.searchsorted(edges, values, side="right")]

    def unknown_labels(self, target: str, allowed: set[str]) -> list[str]:
        return []  # data.classes lists class names; a number is never one

    def target_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """Samples per value range: the split's quantile bins, named by their ranges."""
        values = np.repeat(
            np.array([float(v) for v in counts], dtype=np.float64),
            np.array(list(counts.values()), dtype=np.int64),
        )
        if not len(values):
            return {}
        bins = np.array(
            [int(b[1:]) if b != "all" else 0 for b in self.strata([repr(float(v)) for v in values])]
        )
        out = {}
        for b in np.unique(bins):
            inside = values[bins == b]
            out[f"{inside.min():.4g} to {inside.max():.4g}"] = int(len(inside))
        return out

    def output_names(self, targets: Sequence[str]) -> list[str]:
        return ["value"]

    def fit_target(self, y: np.ndarray) -> dict[str, Any]:
        y = np.asarray(y, dtype=np.float64)
        y = y[np.isfinite(y)]
        mean = float(y.mean()) if len(y) else 0.0
        std = float(y.std()) if len(y) > 1 else 1.0
        return {"mean": mean, "std": std if std > 1e-12 else 1.0}

    def encode(
        self, targets: Sequence[Any], names: Sequence[str], *, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        out = np.empty(len(targets), dtype=np.float32)
        for i, t in enumerate(targets):
            try:
                out[i] = float(t)
            except (TypeError, ValueError):
                out[i] = np.nan
        return out

    def known(self, y: np.ndarray) -> np.ndarray:
        return np.isfinite(np.asarray(y, dtype=np.float64))

    def loss(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: dict[str, Any],
        *,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """Mean squared error on the standardised scale."""
        z = (y.to(logits.dtype) - float(target.get("mean", 0.0))) / float(target.get("std", 1.0))
        return ((logits[:, 0] - z) ** 2).mean()

    def outputs(self, logits: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        """(N, 1) predictions in the target's units."""
        logits = np.asarray(logits, dtype=np.float64)
        return logits[:, :1] * float(target.get("std", 1.0)) + float(target.get("mean", 0.0))

    def scores(
        self, y: np.ndarray, out: np.ndarray, weights: np.ndarray, target: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        y = np.asarray(y, dtype=np.float64)
        pred = np.asarray(out, dtype=np.float64).reshape(len(y), -1)[:, 0]
        err = pred - y
        total = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sse = weights @ (err**2)
            mean_y = weights @ y / total
            sst = weights @ (y**2) - total * mean_y**2
            nonzero = y != 0
            w_nz = weights[:, nonzero]
            mape = w_nz @ (np.abs(err[nonzero]) / np.abs(y[nonzero])) / w_nz.sum(axis=1)
            return {
                "rmse": np.sqrt(sse / total),
                "mae": weights @ np.abs(err) / total,
                "r2": np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.nan),
                "mape": mape,
            }

    def prediction(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, Any]:
        return {"value": float(np.asarray(out).reshape(-1)[0])}

    def prediction_columns(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, list[Any]]:
        return {"value": [f"{float(v):.9g}" for v in np.asarray(out).reshape(len(out), -1)[:, 0]]}
