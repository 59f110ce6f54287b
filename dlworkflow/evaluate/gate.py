"""The verdict: PASS only when the primary metric meets the target agreed in step 1."""

from __future__ import annotations

from dataclasses import dataclass

PASS, FAIL = "PASS", "FAIL"


@dataclass(frozen=True)
class Verdict:
    verdict: str
    metric: str
    value: float
    interval: tuple[float, float]
    confidence: float
    target: float

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def sentence(self) -> str:
        lo, hi = self.interval
        relation = ">=" if self.passed else "<"
        return (f"{self.verdict}: test {self.metric} {self.value:.4f} "
                f"({self.confidence:.0%} CI {lo:.4f}-{hi:.4f}) {relation} target {self.target}")


def judge(*, metric: str, value: float, interval: tuple[float, float], confidence: float,
          target: float) -> Verdict:
    verdict = PASS if value >= target else FAIL
    return Verdict(verdict, metric, value, interval, confidence, target)
