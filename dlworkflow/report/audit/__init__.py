"""Step 8: `dlw audit`, the ML Test Score (Breck et al., 2017) of a project.

    result = audit(project)      # AuditResult: per-test points, sections, final score

Each of the 28 tests is judged from the project's records where they can show it (judges_*.py
say which record each uses); the rest are answered under `audit:` in dlworkflow.yaml."""

from dlworkflow.report.audit.result import AuditResult
from dlworkflow.report.audit.rubric import SECTIONS, TESTS
from dlworkflow.report.audit.scoring import TestScore
from dlworkflow.report.audit.step import audit

__all__ = ["SECTIONS", "TESTS", "AuditResult", "TestScore", "audit"]
