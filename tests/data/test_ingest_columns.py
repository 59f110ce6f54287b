"""`dlw ingest SOURCE --label-column C ...` on a table of one's own (scikit-learn's wine, its
label column named `cultivar`): the missing column is named with the flag that fixes it and
the columns that could be it, and the options go into dlworkflow.yaml, shown as a diff."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project


@pytest.fixture
def wine(tmp_path):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame.insert(0, "bottle", [f"b{i:03d}" for i in range(len(frame))])
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    project = Project.init(tmp_path / "proj", task="tabular-classification")
    return path, project


def _dlw(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_a_missing_label_column_names_the_flag_and_the_columns_that_could_be_it(wine):
    path, project = wine
    result = _dlw("ingest", path, "-p", project.root)
    assert result.exit_code == 2
    assert "lacks the column 'label'" in result.output
    assert "--label-column cultivar" in result.output  # the 3-valued column, first
    assert "label" in yaml.safe_load(project.paths.config.read_text())["data"]["label_column"]


def test_column_options_are_written_shown_and_used(wine):
    path, project = wine
    features = "alcohol, ash,hue"
    result = _dlw(
        "ingest", path, "-p", project.root, "--label-column", "cultivar",
        "--id-column", "bottle", "--feature-columns", features,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "-  label_column: label" in result.output  # the diff
    assert "+  label_column: cultivar" in result.output
    data = yaml.safe_load(project.paths.config.read_text())["data"]
    assert data["label_column"] == "cultivar" and data["id_column"] == "bottle"
    assert data["feature_columns"] == ["alcohol", "ash", "hue"]
    assert "178 in 3 classes" in result.output and "3 feature columns" in result.output
    again = _dlw("ingest", path, "-p", project.root, "--label-column", "cultivar")
    assert again.exit_code == 0 and "label_column" not in again.output.split("Step 2")[0]


def test_set_columns_refuses_what_is_not_a_column_setting(wine):
    from dlworkflow.errors import ConfigError

    _, project = wine
    with pytest.raises(ConfigError, match="Not a column setting: label"):
        project.set_columns(label="cultivar")
    before = project.paths.config.read_text()
    assert project.set_columns(label_column=None) == ""
    assert project.paths.config.read_text() == before
