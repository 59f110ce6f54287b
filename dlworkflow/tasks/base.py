"""The Task protocol: a modality and a target kind, and what the steps ask of them."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dlworkflow.errors import ConfigError

MODALITIES = ("image", "text", "tabular")
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

    def metric(self, name: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise ConfigError(
            f"The task {self.name} has no metric {name!r}.",
            expected=", ".join(m.name for m in self.metrics), received=repr(name),
            fix="set problem.primary_metric to one of the expected metrics")

    def primary_metrics(self) -> list[str]:
        """The metrics the success criterion may be written in."""
        return [m.name for m in self.metrics if m.primary]


def cell_text(value: Any) -> str | None:
    """A table cell as stripped text; None for an empty or missing value (NaN, "n/a")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.lower() in MISSING else text
