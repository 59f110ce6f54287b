"""The Task protocol: a modality and a target kind, and what the steps ask of them."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import ConfigError

if TYPE_CHECKING:
    import torch

MODALITIES = ("image", "text", "tabular", "sequence", "audio")
MISSING = {"", "nan", "none", "null", "na", "n/a"}  # cells that hold no value


class TargetError(Exception):
    """One sample's target cannot be used; `reason` goes to the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MetricSpec:
    """A metric a task reports: its direction, and whether it may be the primary metric (the
    one the success criterion and the gate are written in)."""

    name: str
    higher_is_better: bool = True
    primary: bool = True
    description: str = ""
    bounds: tuple[float | None, float | None] = (0.0, 1.0)  # the values it can take

    def sign(self) -> str:
        return ">=" if self.higher_is_better else "<="

    def criterion(self, target: float) -> str:
        """ "accuracy >= 0.95", "rmse <= 3.5"."""
        return f"{self.name} {self.sign()} {target:g}"

    def check_target(self, target: float) -> None:
        """ConfigError when the target lies outside the values the metric can take."""
        low, high = self.bounds
        if (low is not None and target < low) or (high is not None and target > high):
            span = (
                f"{low:g} to {high:g}"
                if low is not None and high is not None
                else f"at least {low:g}"
                if low is not None
                else f"at most {high:g}"
            )
            raise ConfigError(
                f"problem.target {target:g} is not a possible {self.name}.",
                expected=f"{self.name}: {span}",
                received=f"{target:g}",
                fix="set problem.target (`dlw define --target ...`) within the expected range",
            )

    def better(self, a: float, b: float) -> bool:
        """a is strictly better than b."""
        return a > b if self.higher_is_better else a < b

    def meets(self, value: float, target: float) -> bool:
        """value reaches the target (>= when higher is better, <= when lower is)."""
        return value >= target if self.higher_is_better else value <= target


class Task(ABC):
    """One task: its name (dlworkflow.yaml `task:`), modality and target kind."""

    kind: str  # the target kind, e.g. "classification"
    metrics: tuple[MetricSpec, ...]
    default_metric: str  # the primary metric when the problem agreed none yet
    example_target: str  # for hints: `dlw define --metric <default_metric> --target <this>`
    companion_metric: str  # validation also tracks this one (accuracy for classification)
    single_label = False  # one class per sample: balanced class weights, mixup and cutmix
    # the target is a structure over the image (boxes, a mask), not one value per sample:
    # steps that treat the label as a class name (label issues, per-class grids, class
    # weights, mixup) skip or adapt
    dense = False
    tunes_on_validation = False  # fit_on_validation tunes something (thresholds)

    def __init__(self, modality: str, *, default_model: str, description: str) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        self.modality = modality
        self.default_model = default_model  # what `dlw init --task` writes as model.name
        self.description = description

    @property
    def name(self) -> str:
        return f"{self.modality}-{self.kind}"

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    @abstractmethod
    def parse_target(self, raw: Any, *, column: str) -> str:
        """The target of one sample as the manifest stores it; TargetError with the reason
        (quarantined) when it cannot be used. `column`: where it came from, for the reason."""

    @abstractmethod
    def strata(self, targets: Sequence[str]) -> list[str]:
        """One stratum per target, for the split to keep in proportion."""

    # --- data: what the target is, read at ingest, stratified at split -----------------

    def target_columns(self, data: Any) -> list[str]:
        """The table columns that hold the target (never features); `data`: the config's
        `data:` section."""
        return [data.label_column]

    def read_target(self, record: dict[Any, Any], data: Any) -> str:
        """The target of one table row; TargetError (quarantined) when unusable."""
        return self.parse_target(record.get(data.label_column), column=data.label_column)

    def unknown_labels(self, target: str, allowed: set[str]) -> list[str]:
        """The parts of a parsed target outside `data.classes` (the sample is quarantined)."""
        return [] if target in allowed else [target]

    def target_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """What the ingest and split summaries count, from the count of each distinct target:
        samples per class (multi-label: per label; regression: per value range)."""
        return dict(sorted(counts.items()))

    def output_names(self, targets: Sequence[str]) -> list[str]:
        """One name per network output, from the train/val/test targets: the classes, the
        labels, or the predicted value."""
        return sorted({str(t) for t in targets})

    def fit_target(self, y: np.ndarray) -> dict[str, Any]:
        """What the loss and the outputs need from the training targets (JSON-ready; it
        travels with the model in model.json): the target scaling of regression."""
        return {}

    def fit_on_validation(
        self, y: np.ndarray, out: np.ndarray, target: dict[str, Any]
    ) -> dict[str, Any]:
        """After training: what is tuned on the validation outputs (multi-label thresholds)."""
        return target

    # --- the network's head: targets as arrays, loss, outputs ---------------------------

    @abstractmethod
    def encode(
        self, targets: Sequence[Any], names: Sequence[str], *, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The manifest's targets as the array the loss and the metrics take (classification:
        int64 class index, -1 for an unknown class). Rows with unknown targets are masked out
        by `known`. `size`: the network's input (height, width), for dense targets (masks are
        resized to it); the other tasks ignore it."""

    def known(self, y: np.ndarray) -> np.ndarray:
        """Bool (N,): rows whose target the model can be judged on."""
        return np.ones(len(y), dtype=bool)

    @abstractmethod
    def loss(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: dict[str, Any],
        *,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """The training loss of a batch of network outputs against encoded targets."""

    @abstractmethod
    def outputs(self, logits: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        """What the network's raw outputs mean: class probabilities, label probabilities, or
        values in the target's units (the target scaling undone)."""

    def score(self, name: str, y: np.ndarray, out: np.ndarray, target: dict[str, Any]) -> float:
        """One metric of `outputs` against encoded targets (NaN where undefined): the point
        estimate of `scores` (a task overrides one of the two)."""
        self.metric(name)
        return float(self.scores(y, out, np.ones((1, len(y))), target)[name][0])

    def scores(
        self, y: np.ndarray, out: np.ndarray, weights: np.ndarray, target: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Every metric, one value per row of `weights` (B, N): bootstrap resamples as draw
        counts; a row of ones is the point estimate."""
        return {
            m.name: np.array(
                [
                    self.score(
                        m.name,
                        np.repeat(y, w.astype(int), axis=0),
                        np.repeat(out, w.astype(int), axis=0),
                        target,
                    )
                    for w in weights
                ]
            )
            for m in self.metrics
        }

    def metric_scores(
        self,
        name: str,
        y: np.ndarray,
        out: np.ndarray,
        weights: np.ndarray,
        target: dict[str, Any],
    ) -> np.ndarray:
        """One metric of `scores`, one value per row of `weights` (B,): a task whose metrics
        differ much in cost overrides it to compute only the one asked for."""
        return np.asarray(self.scores(y, out, weights, target)[name], dtype=np.float64)

    def val_metrics(
        self, logits: np.ndarray, y: np.ndarray, target: dict[str, Any], metric: str, loss: float
    ) -> dict[str, float]:
        """The validation row of one epoch: val_loss, val_<metric>, val_<companion>."""
        out = self.outputs(logits, target)
        row = {"val_loss": loss, f"val_{metric}": self.score(metric, y, out, target)}
        if metric != self.companion_metric:
            row[f"val_{self.companion_metric}"] = self.score(self.companion_metric, y, out, target)
        return row

    # --- predictions as the user sees them: serve, `dlw predict`, monitor ---------------

    @abstractmethod
    def prediction(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, Any]:
        """One sample's prediction (JSON-ready) from its row of `outputs`."""

    @abstractmethod
    def prediction_columns(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, list[Any]]:
        """The columns `dlw predict` writes for `outputs` (N rows)."""

    def metric(self, name: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise ConfigError(
            f"The task {self.name} has no metric {name!r}.",
            expected=", ".join(m.name for m in self.metrics),
            received=repr(name),
            fix="set problem.primary_metric to one of the expected metrics",
        )

    def define_hint(self) -> str:
        """The `dlw define` command line the hints show for this task."""
        return f"dlw define --metric {self.default_metric} --target {self.example_target}"

    def check_criterion(self, metric: str, target: float) -> MetricSpec:
        """The success criterion's metric, checked: the task has it, it may be primary, and
        the target is a value it can take."""
        spec = self.metric(metric)
        if not spec.primary:
            raise ConfigError(
                f"{metric} cannot be the primary metric of {self.name}.",
                expected=", ".join(self.primary_metrics()),
                received=metric,
                fix="set problem.primary_metric to one of the expected metrics",
            )
        spec.check_target(target)
        return spec

    def primary_metrics(self) -> list[str]:
        """The metrics the success criterion may be written in."""
        return [m.name for m in self.metrics if m.primary]


def cell_text(value: Any) -> str | None:
    """A table cell as stripped text; None for an empty or missing value (NaN, "n/a")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.lower() in MISSING else text
