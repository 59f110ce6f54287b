"""Every test the records cannot (yet) give its point names what would earn it: a `dlw`
command or a dlworkflow.yaml key, not only the checklist."""

from __future__ import annotations

import re
from pathlib import Path

from dlworkflow.project import Project
from dlworkflow.report.audit import audit
from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import JUDGES

NAMES_A_WAY = re.compile(r"`dlw [a-z-]+|\b[a-z]+\.[a-z_]+(\.[a-z_]+)?\b")


def test_on_a_new_project_every_missing_point_names_a_command_or_a_key(tmp_path: Path):
    project = Project.init(tmp_path / "p", name="p")
    evidence = Evidence(project)
    silent = {}
    for test_id, judge in JUDGES.items():
        judgement = judge(evidence)
        if judgement.points < 1 and not NAMES_A_WAY.search(judgement.next_step or ""):
            silent[test_id] = judgement.evidence
    assert not silent, silent
    scores = audit(project, write=False).tests
    assert all(s.next_step for s in scores if s.points < 1)
