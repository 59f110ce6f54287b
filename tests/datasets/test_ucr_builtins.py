"""builtin:gunpoint, builtin:basic-motions, builtin:japanese-vowels: sktime's UCR/UEA .ts
pairs, read in place with the archive's own train/test division."""

from __future__ import annotations

import sys

import pytest

from dlworkflow.datasets import get_builtin, ucr
from dlworkflow.errors import DataError
from dlworkflow.project import Project
from dlworkflow.store import read_manifest


def test_cli_ingest_builtin_gunpoint_gives_200_series_with_their_source_split(tmp_path):
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    project = Project.init(tmp_path / "proj", task="sequence-classification")
    out = CliRunner().invoke(app, ["ingest", "builtin:gunpoint", "-p", str(project.root)])
    assert out.exit_code == 0, out.output
    m = read_manifest(project)
    assert len(m) == 200
    assert m["source_split"].value_counts().to_dict() == {"test": 150, "train": 50}
    train, test = ucr.ucr_files("GunPoint")
    assert set(m["origin_path"]) == {str(train), str(test)}  # read in place
    raw = project.paths.raw / "gunpoint"
    assert sorted(p.name for p in raw.iterdir()) == [".complete.json", "DATASET.md"]
    assert "sktime" not in sys.modules  # found, never imported


@pytest.mark.parametrize(
    ("name", "n", "channels", "lengths", "classes"),
    [
        ("basic-motions", 80, {6}, (100, 100), 4),
        ("japanese-vowels", 640, {12}, (7, 29), 9),
    ],
)
def test_the_multivariate_builtins(tmp_path, name, n, channels, lengths, classes):
    project = Project.init(tmp_path / "proj", task="sequence-classification")
    result = project.ingest(f"builtin:{name}", progress=False)
    assert (result.n_samples, result.n_quarantined, len(result.class_counts)) == (n, 0, classes)
    m = read_manifest(project)
    assert set(m["channels"]) == channels
    assert (int(m["length"].min()), int(m["length"].max())) == lengths
    problem = ucr.PROBLEMS[{"basic-motions": "BasicMotions"}.get(name, "JapaneseVowels")]
    assert m["source_split"].value_counts().to_dict() == {
        "train": problem.n_train,
        "test": problem.n_test,
    }


def test_entries_card_and_the_archives_terms(tmp_path):
    for builtin in ucr.UCR_BUILTINS:
        dataset = get_builtin(builtin.name)
        problem = ucr.PROBLEMS[builtin.problem]
        assert dataset.task == "sequence-classification"
        assert dataset.n_samples == problem.n_train + problem.n_test
        assert "cite" in dataset.licence and dataset.reads_from is not None
        assert dataset.reads_from() == ucr.ucr_files(builtin.problem)[0].parent
    assert "Dau" in get_builtin("gunpoint").licence  # UCR archive
    assert "Bagnall" in get_builtin("basic-motions").licence  # UEA archive
    source = get_builtin("japanese-vowels").materialise(tmp_path)
    assert source == ucr.ucr_files("JapaneseVowels")[0]  # the installed TRAIN file itself
    card = (tmp_path / "DATASET.md").read_text()
    assert "270 train and 370 test series" in card and "no licence file ships" in card
    assert "Kudo" in card and "split.use_source_split: true" in card


def test_a_sequence_builtin_in_another_task_is_refused(tmp_path):
    project = Project.init(tmp_path / "proj", task="image-classification")
    with pytest.raises(DataError, match="is a sequence-classification dataset"):
        project.ingest("builtin:gunpoint", progress=False)
