"""Each test's score: the automatic judgement, or the checklist answer in dlworkflow.yaml when
it is worth more (unless the evidence contradicts it); sections and the final score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlworkflow.report.audit.judge import Judgement
from dlworkflow.report.audit.rubric import SECTIONS, TESTS, Test

if TYPE_CHECKING:
    from dlworkflow.config import AuditAnswer

POINTS = {"no": 0.0, "manual": 0.5, "automated": 1.0}


@dataclass(frozen=True)
class TestScore:
    test: Test
    points: float
    source: str  # "evidence", "checklist" or "none"
    evidence: str
    checklist: str | None  # the answer in dlworkflow.yaml, as written
    next_step: str | None  # None when the point is earned

    def record(self) -> dict[str, Any]:
        t = self.test
        return {
            "id": t.id,
            "section": t.section,
            "number": t.number,
            "title": t.title,
            "points": self.points,
            "source": self.source,
            "evidence": self.evidence,
            "checklist": self.checklist,
            "next_step": self.next_step,
        }


def score(test: Test, judgement: Judgement, answer: AuditAnswer | None) -> TestScore:
    written = (
        None if answer is None else (f"{answer.done}" + (f": {answer.note}" if answer.note else ""))
    )
    claimed = POINTS[answer.done] if answer is not None else 0.0
    key = f"audit.{test.id}"
    if judgement.failed or claimed <= judgement.points:
        points = judgement.points
        source = "evidence" if points > 0 or judgement.failed else "none"
        if judgement.failed and answer is not None and claimed > points:
            written = f"{written} (not counted: the evidence contradicts it)"
    else:
        points, source = claimed, "checklist"
    return TestScore(
        test,
        points,
        source,
        judgement.evidence,
        written,
        None if points >= 1 else _next(judgement, key, points, answer),
    )


def _next(judgement: Judgement, key: str, points: float, answer: AuditAnswer | None) -> str:
    fill = f'{key}: {{done: manual|automated, note: "..."}} in dlworkflow.yaml'
    if judgement.failed:
        return judgement.next_step or "fix what the evidence shows"
    if answer is not None and answer.done == "manual" and points == 0.5:
        return f"automate it, then set {key}.done: automated"
    if judgement.next_step:
        return f"{judgement.next_step}; or, once done, {fill}"
    return f"once done, {fill}"


def section_scores(scores: list[TestScore]) -> dict[str, float]:
    return {s: sum(x.points for x in scores if x.test.section == s) for s in SECTIONS}


def check_rubric() -> None:
    """The rubric and the config's checklist keys must be the same 28 ids."""
    from dlworkflow.config import AUDIT_IDS

    assert tuple(t.id for t in TESTS) == AUDIT_IDS
