"""Issue 14, item 10: the sealed test set stays sealed.

The split's public readers never return a test label (only `store/sealed.py` can), and after a
split `dlw explore` works on train and validation only, unless `--include-test`, which reads
the test set through the sealed reader and logs the read, with its purpose, in the ledger.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlworkflow.project import Project
from dlworkflow.store import read_split_info, splits
from dlworkflow.store.splits import OPEN_SPLITS


def _test_ids(project) -> set[str]:
    table = splits.read_assignments(project)
    return set(table.loc[table["split"] == "test", "sample_id"].astype(str))


def _label_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c == "label" or c.startswith("label")]


def test_no_public_function_of_splits_returns_a_test_label(split_project):
    test_ids = _test_ids(split_project)
    assert test_ids
    public = [
        (name, fn)
        for name, fn in inspect.getmembers(splits, inspect.isfunction)
        if not name.startswith("_") and fn.__module__ == splits.__name__
    ]
    called = []
    for name, fn in public:
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].name != "project":
            continue  # helpers of names and hashes: they take no project
        required = [
            p
            for p in params[1:]
            if p.default is inspect.Parameter.empty and p.kind != p.VAR_KEYWORD
        ]
        if name == "load_split":
            results = [fn(split_project, s) for s in OPEN_SPLITS]
        elif required:
            continue  # a writer (write_split) or another function that needs more than a project
        else:
            results = [fn(split_project)]
        called.append(name)
        for result in results:
            if not isinstance(result, pd.DataFrame):
                continue
            labelled = _label_columns(result)
            if not labelled or "sample_id" not in result.columns:
                continue
            leaked = sorted(set(result["sample_id"].astype(str)) & test_ids)
            assert not leaked, f"splits.{name}() returns labels of {len(leaked)} test samples"
    assert {"read_assignments", "load_split", "read_split_info"} <= set(called)


def test_the_sealed_reader_still_gets_labelled_test_rows(split_project):
    from dlworkflow.store.sealed import open_test_set

    with split_project.step("test"):
        rows = open_test_set(split_project, purpose="verdict")
    assert set(rows["sample_id"].astype(str)) == _test_ids(split_project)
    assert rows["label"].notna().all()


# ---- dlw explore after a split ---------------------------------------------------------------


def _iris_project(tmp_path: Path) -> Project:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["label"] = iris.target_names[frame.pop("target")]
    frame["note"] = [f"flower {i}" for i in range(len(frame))]
    data = tmp_path / "data"
    data.mkdir()
    frame.to_csv(data / "iris.csv", index=False)
    project = Project.init(tmp_path / "proj", task="tabular-classification")
    project.define(metric="accuracy", target=0.9)
    project.ingest(str(data / "iris.csv"), progress=False)
    project.split()
    return project


@pytest.fixture
def iris_split(tmp_path) -> Project:
    return _iris_project(tmp_path)


def test_explore_after_a_split_leaves_the_test_set_out(iris_split):
    info = read_split_info(iris_split)
    assert info.counts["test"] > 0
    result = iris_split.explore(progress=False)
    open_n = info.counts["train"] + info.counts["val"]
    assert result.n_samples == open_n  # not the 150 of the whole manifest
    assert sum(result.class_counts.values()) == open_n
    expected = {
        c: info.class_counts["train"].get(c, 0) + info.class_counts["val"].get(c, 0)
        for c in info.classes
    }
    assert result.class_counts == expected
    text = Path(result.report).read_text(encoding="utf-8")
    assert f"{open_n:,} samples" in text and "150 samples" not in text
    n_test = info.counts["test"]
    assert f"the sealed test set ({n_test:,} samples) is left out" in text
    leakage = text[text.index("<section id='leakage'>") :]
    counts = f"Split: train {info.counts['train']:,}, val {info.counts['val']:,}."
    assert counts in leakage and "test " + str(n_test) not in leakage  # per-split counts
    assert iris_split.ledger.test_reads() == []


def test_explore_include_test_reads_through_the_seal_and_logs_it(iris_split):
    info = read_split_info(iris_split)
    result = iris_split.explore(include_test=True, progress=False)
    assert result.n_samples == info.counts["train"] + info.counts["val"] + info.counts["test"]
    reads = iris_split.ledger.test_reads()
    assert len(reads) == 1
    read = reads[0]
    assert read.step == "explore" and read.n_samples == info.counts["test"]
    assert read.seal_hash == info.seal_hash
    assert "explore" in read.purpose and read.purpose.strip()
    text = Path(result.report).read_text(encoding="utf-8")
    assert "includes the sealed test set" in text
    assert iris_split.status().test_reads == 1


def test_the_cli_option_include_test_reaches_explore(iris_split):
    from dlworkflow.cli import app

    out = CliRunner().invoke(
        app,
        ["explore", "--include-test", "--project", str(iris_split.root)],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert out.exit_code == 0, out.output
    assert [r.step for r in iris_split.ledger.test_reads()] == ["explore"]


def test_the_sealed_reader_refuses_explore_without_the_option(iris_split):
    """Only an explore run asked to include the test set may read it."""
    from dlworkflow.errors import SealedTestSetError
    from dlworkflow.store.sealed import open_test_set

    with pytest.raises(SealedTestSetError), iris_split.step("explore"):
        open_test_set(iris_split, purpose="peek")
    assert iris_split.ledger.test_reads() == []
    assert np.isfinite(read_split_info(iris_split).counts["test"])
