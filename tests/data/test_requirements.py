"""data.requirements, checked by every ingest: approved sources stop an ingest before any read;
samples per class and imbalance are measured, recorded and printed (a breach with its fix)."""

from __future__ import annotations

import pytest

from dlworkflow.errors import DataError


def test_ingest_records_the_checked_requirements(project, digits_folder):
    project.update_config({"data.requirements.min_samples_per_class": 3})
    result = project.ingest(str(digits_folder(4)), progress=False)
    checked = project.ledger.latest("ingest").summary["requirements"]
    assert checked["min_samples_per_class"] == {
        "required": 3,
        "measured": 4,
        "class": "0",
        "ok": True,
    }
    assert checked["max_imbalance"]["measured"] == 1.0 and checked["max_imbalance"]["ok"]
    assert checked["allowed_sources"] == {
        "patterns": None,
        "sources": [project.config.data.source],
        "ok": True,
    }
    assert checked["violations"] == []
    assert "min_samples_per_class 4 (>= 3: ok)" in result.requirements


def test_a_breach_is_recorded_and_printed_with_its_fix(project, digits_folder):
    folder = digits_folder(4)
    for extra in range(4, 12):  # class 1 gets 12 samples: 3 x class 0's 4
        (folder / "1" / f"d1-{extra:03d}.png").write_bytes(
            (folder / "1" / "d1-000.png").read_bytes()
        )
    project.update_config(
        {"data.requirements.min_samples_per_class": 5, "data.requirements.max_imbalance": 2}
    )
    result = project.ingest(str(folder), progress=False)
    violations = project.ledger.latest("ingest").summary["requirements"]["violations"]
    assert len(violations) == 2
    assert violations[0].startswith("min_samples_per_class: the class '0' has 4 samples")
    assert "data.requirements.min_samples_per_class" in violations[0]
    assert violations[1].startswith("max_imbalance: '1' has 12 samples, 3.0 times the 4 of '0'")
    assert ("  NOT MET", violations[0]) in result.rows()
    assert result.n_samples == 20  # the data is kept: nothing is lost


def test_a_source_outside_the_allowed_patterns_is_never_read(project, digits_folder):
    folder = digits_folder(4)
    project.update_config({"data.requirements.allowed_sources": ["builtin:*", "/approved/*"]})
    with pytest.raises(DataError) as err:
        project.ingest(str(folder), progress=False)
    assert "not an approved data source" in err.value.what
    assert "'builtin:*'" in err.value.expected
    assert "allowed_sources" in err.value.fix
    assert not project.paths.manifest.exists()
    project.update_config({"data.requirements.allowed_sources": [str(folder.parent) + "/*"]})
    project.ingest(str(folder), progress=False)
    matched = project.ledger.latest("ingest").summary["requirements"]["allowed_sources"]
    assert matched["matched"] == {str(folder): str(folder.parent) + "/*"}


def test_regression_says_the_class_requirements_do_not_apply(tmp_path):
    from task_projects import regression_project

    project = regression_project(tmp_path / "proj", until="ingest")
    checked = project.ledger.latest("ingest").summary["requirements"]
    assert checked["min_samples_per_class"].startswith("not applicable to regression")
    assert checked["violations"] == []


def test_multilabel_counts_positives_per_label(tmp_path):
    from task_projects import multilabel_project

    project = multilabel_project(tmp_path / "proj", until="ingest", n=200)
    checked = project.ledger.latest("ingest").summary["requirements"]
    low = checked["min_samples_per_class"]
    assert set(low) == {"required", "measured", "label", "ok"}
    counts = project.ledger.latest("ingest").summary
    assert low["measured"] >= 1 and counts["n_samples"] == 200
