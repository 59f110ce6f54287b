"""`dlw audit`: score the project on the 28 tests of the ML Test Score, from its records and the
`audit:` checklist in dlworkflow.yaml; write reports/audit.json."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dlworkflow.fileio import atomic_write_json
from dlworkflow.report.audit import (  # noqa: F401  (register judges)
    judges_change,
    judges_data,
    judges_data_model,
    judges_evaluate,
    judges_maintain,
    judges_ops,
    judges_train,
    judges_tune,
)
from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import JUDGES
from dlworkflow.report.audit.result import AuditResult
from dlworkflow.report.audit.rubric import SECTIONS, TESTS
from dlworkflow.report.audit.scoring import score, section_scores

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

AUDIT_FILE = "audit.json"


def audit(project: Workspace, *, write: bool = True) -> AuditResult:
    """Judge every test, add the checklist answers, score; reports/audit.json unless
    write=False. Reads the project's records only: it runs nothing and changes nothing else."""
    evidence = Evidence(project)
    answers = project.config.audit
    scores = [score(t, JUDGES[t.id](evidence), getattr(answers, t.id)) for t in TESTS]
    sections = section_scores(scores)
    result = AuditResult(
        project=str(project.root),
        tests=scores,
        sections=sections,
        final=min(sections[s] for s in SECTIONS),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if write:
        path = project.paths.reports / AUDIT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        result.written = str(path)
        atomic_write_json(path, result.record())
    return result
