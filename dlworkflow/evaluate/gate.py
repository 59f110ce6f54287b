"""The verdict: PASS only when the primary metric meets the target agreed in step 1 and the
deployment constraints hold.

    judge(metric=, value=, interval=, confidence=, target=)   # the metric alone
    judge(..., gate_on="lower_bound", constraints=check_constraints(...))   # `dlw test`

`gate_on`: "value" compares the point estimate with the target; "lower_bound" asks the lower
end of its bootstrap interval to meet it (PASS only when the target is met with confidence).
Constraints (`problem.constraints`: max_latency_ms, max_model_size_mb) are measured on the
exported ONNX model by `dlworkflow.evaluate.constraints.check_constraints`; any that fails
makes the verdict FAIL. The Verdict carries its evidence (`record()` for the ledger).
"""

from __future__ import annotations

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
        label = {"max_latency_ms": "CPU latency p95 (batch 1)",
                 "max_model_size_mb": "ONNX model size"}.get(self.name, self.name)
        relation = "<=" if self.passed else ">"
        return f"{label} {self.measured:.4g} {unit} {relation} limit {self.limit:g} {unit}"

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "measured": self.measured,
                "passed": self.passed, "detail": self.detail}


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

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def judged_value(self) -> float:
        return self.interval[0] if self.gate_on == "lower_bound" else self.value

    @property
    def metric_passed(self) -> bool:
        return self.judged_value >= self.target

    @property
    def failed_constraints(self) -> list[ConstraintCheck]:
        return [c for c in self.constraints if not c.passed]

    def sentence(self) -> str:
        lo, hi = self.interval
        relation = ">=" if self.metric_passed else "<"
        what = (f"the lower bound of the {self.confidence:.0%} CI {lo:.4f}"
                if self.gate_on == "lower_bound" else f"test {self.metric} {self.value:.4f}")
        text = (f"{self.verdict}: test {self.metric} {self.value:.4f} "
                f"({self.confidence:.0%} CI {lo:.4f}-{hi:.4f}) {relation} target {self.target}"
                if self.gate_on == "value" else
                f"{self.verdict}: {what} (test {self.metric} {self.value:.4f}) {relation} "
                f"target {self.target}")
        failed = self.failed_constraints
        if failed:
            text += "; constraint failed: " + "; ".join(c.sentence() for c in failed)
        elif self.constraints:
            text += "; constraints hold"
        return text

    def record(self) -> dict[str, Any]:
        """The verdict with its evidence, JSON-ready (for the ledger and the report)."""
        return {"verdict": self.verdict, "metric": self.metric, "value": self.value,
                "interval": list(self.interval), "confidence": self.confidence,
                "target": self.target, "gate_on": self.gate_on,
                "metric_passed": self.metric_passed,
                "constraints": [c.record() for c in self.constraints]}


def judge(*, metric: str, value: float, interval: tuple[float, float], confidence: float,
          target: float, gate_on: str = "value",
          constraints: tuple[ConstraintCheck, ...] | list[ConstraintCheck] = ()) -> Verdict:
    """PASS when the judged value (the estimate, or its interval's lower bound) meets the
    target and every constraint holds."""
    if gate_on not in GATE_ON:
        raise ValueError(f"gate_on must be one of {', '.join(GATE_ON)}, got {gate_on!r}")
    interval = (float(interval[0]), float(interval[1]))
    judged = interval[0] if gate_on == "lower_bound" else value
    checks = tuple(constraints)
    ok = judged >= target and all(c.passed for c in checks)
    return Verdict(PASS if ok else FAIL, metric, value, interval, confidence, target, gate_on,
                   checks)
