"""Step 1, define: the success criterion is written down and recorded before any data."""

from __future__ import annotations

import pytest
import yaml

from dlworkflow.errors import ConfigError, CriterionMissingError
from dlworkflow.fileio import sha256_json
from dlworkflow.problem import render_template
from dlworkflow.project import Project


def test_define_without_criterion_says_how_to_write_one(project):
    before = project.paths.config.read_bytes()
    with pytest.raises(CriterionMissingError) as info:
        project.define()
    err = info.value
    assert "problem.primary_metric and problem.target not set" in str(err)
    assert "dlw define --metric" in err.fix
    assert project.ledger.history("define") == []  # nothing recorded
    assert project.paths.config.read_bytes() == before


def test_define_with_only_a_metric_names_the_missing_target(project):
    with pytest.raises(CriterionMissingError) as info:
        project.define(metric="accuracy")
    assert "problem.target not set" in str(info.value)
    # the metric itself was valid and is kept in the file
    assert Project.load(project.root).config.problem.primary_metric == "accuracy"


def test_define_writes_the_criterion_and_records_a_done_run(project):
    result = project.define(
        metric="macro_f1",
        target=0.9,
        objective="read digits",
        max_latency_ms=20.0,
        constituencies=["postal service"],
    )
    raw = yaml.safe_load(project.paths.config.read_text(encoding="utf-8"))
    assert raw["problem"]["primary_metric"] == "macro_f1"
    assert raw["problem"]["target"] == 0.9
    assert raw["problem"]["objective"] == "read digits"
    assert raw["problem"]["constraints"]["max_latency_ms"] == 20.0
    assert raw["problem"]["constituencies"] == ["postal service"]
    assert "# What is judged" in project.paths.config.read_text()  # comments kept
    record = project.ledger.latest("define")
    assert record.status == "done"
    spec = Project.load(project.root).config.problem.model_dump(mode="json")
    assert record.output_hash == sha256_json(spec)
    assert record.summary["headline"] == "macro_f1 >= 0.9"
    assert record.config_hash == project.config.section_hash("problem")
    assert result.criterion == "macro_f1 >= 0.9 on the sealed test set"
    assert result.constraints == {"max_latency_ms": 20.0}
    assert result.warnings == []
    assert ("success", result.criterion) in result.rows()


def test_define_warns_about_a_missing_objective_and_an_unrealistic_target(project):
    result = project.define(metric="accuracy", target=1.0)
    text = " | ".join(result.warnings)
    assert "no objective" in text
    assert "no constituencies" in text
    assert "target 1.0 leaves no room for label noise" in text


def test_define_validates_the_criterion_already_in_the_file(tmp_path):
    text = (
        render_template(name="p", task="image-classification")
        .replace("primary_metric: null", "primary_metric: auroc")
        .replace("target: null", "target: 0.8")
    )
    (tmp_path / "dlworkflow.yaml").write_text(text)
    project = Project.load(tmp_path)
    result = project.define()
    assert result.criterion.startswith("auroc >= 0.8")
    assert project.ledger.latest("define").status == "done"


@pytest.mark.parametrize(
    ("flags", "path"),
    [
        ({"metric": "f1", "target": 0.9}, "problem.primary_metric"),
        ({"metric": "accuracy", "target": 1.5}, "problem.target"),
        (
            {"metric": "accuracy", "target": 0.9, "data_sensitivity": "secret"},
            "problem.data_sensitivity",
        ),
    ],
)
def test_invalid_values_are_rejected_and_nothing_is_written(project, flags, path):
    before = project.paths.config.read_bytes()
    with pytest.raises(ConfigError) as info:
        project.define(**flags)
    assert info.value.context["errors"][0]["line"].startswith(f"{path}:")
    assert project.paths.config.read_bytes() == before
    assert project.ledger.history("define") == []


def test_unknown_define_field_is_a_type_error(project):
    with pytest.raises(TypeError, match="primary"):
        project.define(primary="accuracy")


def test_redefining_changes_the_recorded_spec(project):
    project.define(metric="accuracy", target=0.9)
    first = project.ledger.latest("define").output_hash
    project.define(target=0.95)  # None fields are unchanged: the metric stays
    second = project.ledger.latest("define")
    assert second.output_hash != first
    assert second.summary["headline"] == "accuracy >= 0.95"
