"""Single-label classification: one class per sample, any modality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlworkflow.tasks.base import MetricSpec, TargetError, Task, cell_text


class Classification(Task):
    """The target is a class name (text). The split stratifies on the class itself."""

    kind = "classification"
    metrics = (
        MetricSpec("accuracy", description="share of samples whose top class is right"),
        MetricSpec("balanced_accuracy", description="mean recall over the classes"),
        MetricSpec("macro_f1", description="mean F1 over the classes"),
        MetricSpec("auroc", description="macro one-vs-rest area under the ROC curve"),
        MetricSpec("weighted_f1", primary=False, description="F1 weighted by class support"),
        MetricSpec("auprc", primary=False, description="macro one-vs-rest average precision"),
        MetricSpec("ece", higher_is_better=False, primary=False,
                   description="expected calibration error (15 bins)"),
    )

    def parse_target(self, raw: Any, *, column: str) -> str:
        label = cell_text(raw)
        if label is None:
            raise TargetError(f"no label (empty or NaN {column})")
        return label

    def strata(self, targets: Sequence[str]) -> list[str]:
        return [str(t) for t in targets]
