"""Single-label classification: one class per sample, any modality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow import metrics as metrics_mod
from dlworkflow.tasks.base import MetricSpec, TargetError, Task, cell_text

if TYPE_CHECKING:
    import torch


class Classification(Task):
    """The target is a class name (text). The split stratifies on the class itself; the
    network outputs one logit per class; outputs are softmax probabilities."""

    kind = "classification"
    default_metric = "accuracy"
    example_target = "0.95"
    companion_metric = "accuracy"
    single_label = True
    metrics = (
        MetricSpec("accuracy", description="share of samples whose top class is right"),
        MetricSpec("balanced_accuracy", description="mean recall over the classes"),
        MetricSpec("macro_f1", description="mean F1 over the classes"),
        MetricSpec("auroc", description="macro one-vs-rest area under the ROC curve"),
        MetricSpec("weighted_f1", primary=False, description="F1 weighted by class support"),
        MetricSpec("auprc", primary=False, description="macro one-vs-rest average precision"),
        MetricSpec(
            "ece",
            higher_is_better=False,
            primary=False,
            description="expected calibration error (15 bins)",
        ),
    )

    def parse_target(self, raw: Any, *, column: str) -> str:
        label = cell_text(raw)
        if label is None:
            raise TargetError(f"no label (empty or NaN {column})")
        return label

    def strata(self, targets: Sequence[str]) -> list[str]:
        return [str(t) for t in targets]

    def encode(
        self, targets: Sequence[Any], names: Sequence[str], *, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        index = {str(c): i for i, c in enumerate(names)}
        return np.array([index.get(str(t), -1) for t in targets], dtype=np.int64)

    def known(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y) >= 0

    def loss(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: dict[str, Any],
        *,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        from torch import nn

        return nn.functional.cross_entropy(
            logits, y, weight=weight, label_smoothing=label_smoothing
        )

    def outputs(self, logits: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        proba: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return proba

    def score(self, name: str, y: np.ndarray, out: np.ndarray, target: dict[str, Any]) -> float:
        return metrics_mod.compute(name, y, out)

    def prediction(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, Any]:
        best = int(out.argmax())
        return {
            "label": names[best],
            "confidence": float(out[best]),
            "probabilities": {c: float(p) for c, p in zip(names, out)},
        }

    def prediction_columns(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, list[Any]]:
        best = out.argmax(axis=1) if len(out) else np.zeros(0, dtype=int)
        columns: dict[str, list[Any]] = {
            "label": [names[k] for k in best],
            "confidence": [f"{float(out[i, k]):.6f}" for i, k in enumerate(best)],
        }
        for j, c in enumerate(names):
            columns[f"p_{c}"] = [f"{float(p):.6f}" for p in out[:, j]]
        return columns
