"""What a judge hands back, and the registry of judges by test id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlworkflow.report.audit.evidence import Evidence


@dataclass(frozen=True)
class Judgement:
    points: float  # 0, 0.5 or 1
    evidence: str  # what the records show (or that they cannot show it)
    next_step: str | None = None  # how to earn the missing points from evidence
    failed: bool = False  # the check ran and the property does not hold: no checklist override


JUDGES: dict[str, Callable[[Evidence], Judgement]] = {}


def judge(
    test_id: str,
) -> Callable[[Callable[[Evidence], Judgement]], Callable[[Evidence], Judgement]]:
    def register(fn: Callable[[Evidence], Judgement]) -> Callable[[Evidence], Judgement]:
        JUDGES[test_id] = fn
        return fn

    return register


def checklist_only(what: str) -> Judgement:
    return Judgement(0.0, f"the project's records cannot show this: {what}")
