"""The checklist under `audit:` in dlworkflow.yaml: 0.5 for manual, 1 for automated, unknown
ids refused by the strict schema; a fresh project scores 0 with a next step for every test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlworkflow.config import AUDIT_IDS
from dlworkflow.errors import ConfigError
from dlworkflow.project import Project
from dlworkflow.report.audit import SECTIONS, TESTS, audit
from dlworkflow.report.audit.scoring import check_rubric


@pytest.fixture
def fresh(tmp_path: Path) -> Project:
    return Project.init(tmp_path / "proj", name="fresh")


def test_rubric_has_the_28_tests_of_the_paper():
    check_rubric()
    assert len(TESTS) == 28 and tuple(t.id for t in TESTS) == AUDIT_IDS
    for section in SECTIONS:
        assert [t.number for t in TESTS if t.section == section] == list(range(1, 8))


def test_fresh_project_scores_zero_with_next_steps(fresh: Project):
    result = audit(fresh)
    assert result.final == 0 and set(result.sections.values()) == {0}
    assert all(t.points == 0 and t.source == "none" and t.next_step for t in result.tests)
    # automatic judges point to a command, checklist-only tests to their key
    by_id = {t.test.id: t for t in result.tests}
    assert "`dlw ingest SOURCE`" in by_id["feature_schema"].next_step
    assert "`dlw export`" in by_id["rollback_possible"].next_step
    assert by_id["feature_cost"].next_step.startswith("`dlw export`")  # it measures the cost
    assert "or, once done, audit.feature_cost:" in by_id["feature_cost"].next_step
    record = json.loads((fresh.paths.reports / "audit.json").read_text())
    assert record["final"] == 0 and len(record["tests"]) == 28
    assert "more of a research project" in record["level"]
    html = result._repr_html_()
    assert html.count("<table>") == 4 and "feature_cost" in html


def test_checklist_answers_count_half_and_one(fresh: Project):
    fresh.update_config(
        {
            "audit.feature_cost": {"done": "manual", "note": "wiki: feature costs, 2026-11"},
            "audit.feature_requirements": {"done": "automated", "note": "CI checks the sources"},
            "audit.new_features_quickly": {"done": "no"},
        }
    )
    result = audit(fresh)
    by_id = {t.test.id: t for t in result.tests}
    assert by_id["feature_cost"].points == 0.5 and by_id["feature_cost"].source == "checklist"
    assert "automate it" in by_id["feature_cost"].next_step
    assert by_id["feature_requirements"].points == 1
    assert by_id["feature_requirements"].next_step is None
    assert by_id["new_features_quickly"].points == 0
    assert result.sections["Data"] == 1.5 and result.final == 0  # the minimum of the sections


def test_final_score_is_the_minimum_of_the_sections(fresh: Project):
    answers = {}
    for t in TESTS:
        # Data: all automated (7); Model: 3 automated; Infrastructure: 5 manual; Monitoring: 2
        n = {"Data": 7, "Model": 3, "Infrastructure": 5, "Monitoring": 2}[t.section]
        if t.number <= n:
            done = "manual" if t.section == "Infrastructure" else "automated"
            answers[f"audit.{t.id}"] = {"done": done, "note": "documented in docs/ops.md"}
    fresh.update_config(answers)
    result = audit(fresh)
    assert result.sections == {"Data": 7, "Model": 3, "Infrastructure": 2.5, "Monitoring": 2}
    assert result.final == 2 and result.weakest == ["Monitoring"]
    assert "first pass at productionization" in result.level


def test_unknown_id_and_missing_note_are_config_errors(fresh: Project):
    with pytest.raises(ConfigError) as bad:
        fresh.update_config({"audit.feature_cst": {"done": "manual", "note": "x"}})
    assert "did you mean feature_cost" in str(bad.value)
    with pytest.raises(ConfigError, match="needs a note"):
        fresh.update_config({"audit.feature_cost": {"done": "automated"}})
    with pytest.raises(ConfigError):
        fresh.update_config({"audit.feature_cost": {"done": "sometimes", "note": "x"}})
    # written by hand into the file, an unknown id stops the project from loading
    path = fresh.paths.config
    path.write_text(
        path.read_text() + "audit:\n  rollbak_possible:\n    done: manual\n    note: x\n"
    )
    with pytest.raises(ConfigError, match="rollback_possible"):
        Project.load(fresh.root)
