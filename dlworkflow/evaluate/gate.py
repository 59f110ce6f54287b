"""The verdict: PASS only when the primary metric meets the target agreed in step 1 and the
deployment constraints hold.

    judge(metric=, value=, interval=, confidence=, target=)   # the metric alone
    judge(..., gate_on="lower_bound", constraints=check_constraints(...))   # `dlw test`

`gate_on`: "value" compares the point estimate with the target; "lower_bound" asks the
pessimistic end of its bootstrap interval to meet it (PASS only when the target is met with
confidence). The metric's direction comes from the task (`higher_is_better`): a metric where
lower is better (RMSE, ECE) meets its target at or below it, and its pessimistic end is the
interval's upper end.
Constraints (`problem.constraints`: max_latency_ms, max_model_size_mb) are measured on the
exported ONNX model by `dlworkflow.evaluate.constraints.check_constraints`; any that fails
makes the verdict FAIL. The Verdict carries its evidence (`record()` for the ledger).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL = "PASS", "FAIL"
GATE_ON = ("value", "lower_bound")


@dataclass(frozen=True)
class ConstraintCheck:
    """One deployment constraint, measured: passed when measured <= limit."""

    name: str  # "max_latency_ms" | "max_model_size_mb"
    limit: float
    measured: float
    passed: bool
    detail: str = ""  # how it was measured

    def sentence(self) -> str:
        unit = "ms" if self.name.endswith("_ms") else "MB"
        label = {
            "max_latency_ms": "CPU latency p95 (batch 1)",
            "max_model_size_mb": "ONNX model size",
        }.get(self.name, self.name)
        relation = "<=" if self.passed else ">"
        return f"{label} {self.measured:.4g} {unit} {relation} limit {self.limit:g} {unit}"

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "limit": self.limit,
            "measured": self.measured,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    verdict: str
    metric: str
    value: float
    interval: tuple[float, float]
    confidence: float
    target: float
    gate_on: str = "value"
    constraints: tuple[ConstraintCheck, ...] = field(default=())
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def judged_value(self) -> float:
        if self.gate_on != "lower_bound":
            return self.value
        return self.interval[0] if self.higher_is_better else self.interval[1]

    @property
    def metric_passed(self) -> bool:
        if self.higher_is_better:
            return self.judged_value >= self.target
        return self.judged_value <= self.target

    @property
    def failed_constraints(self) -> list[ConstraintCheck]:
        return [c for c in self.constraints if not c.passed]

    def sentence(self) -> str:
        lo, hi = self.interval
        meets, misses = (">=", "<") if self.higher_is_better else ("<=", ">")
        relation = meets if self.metric_passed else misses
        bound, end = ("lower", lo) if self.higher_is_better else ("upper", hi)
        what = (
            f"the {bound} bound of the {self.confidence:.0%} CI {end:.4f}"
            if self.gate_on == "lower_bound"
            else f"test {self.metric} {self.value:.4f}"
        )
        text = (
            f"{self.verdict}: test {self.metric} {self.value:.4f} "
            f"({self.confidence:.0%} CI {lo:.4f}-{hi:.4f}) {relation} target {self.target}"
            if self.gate_on == "value"
            else f"{self.verdict}: {what} (test {self.metric} {self.value:.4f}) {relation} "
            f"target {self.target}"
        )
        failed = self.failed_constraints
        if failed:
            text += "; constraint failed: " + "; ".join(c.sentence() for c in failed)
        elif self.constraints:
            text += "; constraints hold"
        return text

    def record(self) -> dict[str, Any]:
        """The verdict with its evidence, JSON-ready (for the ledger and the report)."""
        return {
            "verdict": self.verdict,
            "metric": self.metric,
            "value": self.value,
            "interval": list(self.interval),
            "confidence": self.confidence,
            "target": self.target,
            "gate_on": self.gate_on,
            "higher_is_better": self.higher_is_better,
            "metric_passed": self.metric_passed,
            "constraints": [c.record() for c in self.constraints],
        }


def judge(
    *,
    metric: str,
    value: float,
    interval: tuple[float, float],
    confidence: float,
    target: float,
    gate_on: str = "value",
    constraints: tuple[ConstraintCheck, ...] | list[ConstraintCheck] = (),
    higher_is_better: bool = True,
) -> Verdict:
    """PASS when the judged value (the estimate, or its interval's pessimistic end) meets the
    target in the metric's direction and every constraint holds."""
    if gate_on not in GATE_ON:
        raise ValueError(f"gate_on must be one of {', '.join(GATE_ON)}, got {gate_on!r}")
    interval = (float(interval[0]), float(interval[1]))
    checks = tuple(constraints)
    verdict = Verdict(
        PASS, metric, value, interval, confidence, target, gate_on, checks, higher_is_better
    )
    ok = verdict.metric_passed and all(c.passed for c in checks)
    return verdict if ok else dataclasses.replace(verdict, verdict=FAIL)
