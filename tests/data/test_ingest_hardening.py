"""Issue 14, ingest hardening: the manifest is committed last (a late failure leaves the old one
byte-identical), split refuses a manifest that changed since the ingest it records, tabular
values that are not finite or overflow float32 are quarantined, and the class count is capped
(data.max_classes: more distinct labels look like an id column)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dlworkflow.errors import DataError, StepOrderError
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine


def tabular_csv(folder: Path, rows: list[dict], name: str = "data.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def plain_rows(n: int) -> list[dict]:
    return [{"x1": str(0.5 * i), "x2": str(10 - i), "label": "ab"[i % 2]} for i in range(n)]


# ---- the manifest is committed last ------------------------------------------------------------
def test_a_late_failure_leaves_the_old_manifest_byte_identical(project, digits_folder):
    project.ingest(str(digits_folder(4)), progress=False)
    before = project.paths.manifest.read_bytes()
    one_class = digits_folder(4, classes=(5,), name="one")  # read in full, then refused
    with pytest.raises(DataError, match="Only one target value"):
        project.ingest(str(one_class), progress=False)
    assert project.paths.manifest.read_bytes() == before
    assert not list(project.paths.manifest.parent.glob(f".{project.paths.manifest.name}*"))


def test_the_class_cap_failure_leaves_the_old_manifest_byte_identical(tmp_path):
    project = Project.init(tmp_path / "p", task="tabular-classification")
    project.ingest(str(tabular_csv(tmp_path / "ok", plain_rows(20))), progress=False)
    before = project.paths.manifest.read_bytes()
    project.update_config({"data.max_classes": 10})
    ids = [{**row, "label": f"patient-{i:04d}"} for i, row in enumerate(plain_rows(30))]
    with pytest.raises(DataError, match="this looks like an id column"):
        project.ingest(str(tabular_csv(tmp_path / "ids", ids)), progress=False)
    assert project.paths.manifest.read_bytes() == before


def test_split_refuses_a_manifest_that_changed_since_ingest(project, digits_folder):
    project.ingest(str(digits_folder(6)), progress=False)
    manifest = read_manifest(project)
    manifest.iloc[1:].to_parquet(project.paths.manifest, index=False)  # not by `dlw ingest`
    with pytest.raises(StepOrderError, match="manifest changed since") as err:
        project.split()
    assert "dlw ingest" in err.value.fix
    assert project.ledger.latest("split", status=None) is None  # refused before any work


def test_split_accepts_the_manifest_of_the_last_ingest(project, digits_folder):
    result = project.ingest(str(digits_folder(6)), progress=False)
    split = project.split()
    assert sum(split.counts.values()) == result.n_samples


def test_train_refuses_a_split_made_on_another_dataset_version(split_project, digits_folder):
    from dlworkflow.errors import SplitError
    from dlworkflow.store import load_split

    project = split_project
    assert len(load_split(project, "train")) > 0
    more = digits_folder(21, name="images")  # the same folder, one more image per class
    result = project.ingest(str(more), progress=False)
    assert result.changed
    for read in (lambda: load_split(project, "val"), lambda: project.train(progress=False)):
        with pytest.raises(SplitError, match="manifest changed since the split") as err:
            read()
        assert "dlw split" in err.value.fix
    project.split()
    assert len(load_split(project, "train")) > 0


def test_the_manifest_carries_its_dataset_version(project, digits_folder):
    import pyarrow.parquet as pq

    result = project.ingest(str(digits_folder(3)), progress=False)
    footer = pq.read_metadata(project.paths.manifest).metadata
    assert footer[b"dlw.dataset_version"].decode() == result.dataset_version


# ---- non-finite and overflowing tabular values -------------------------------------------------
def test_non_finite_and_float32_overflowing_values_are_quarantined(tmp_path):
    rows = plain_rows(20)
    rows[2]["x1"] = "inf"
    rows[4]["x2"] = "-inf"
    rows[6]["x1"] = "1e39"  # finite as float64, inf as float32
    rows[8]["x2"] = "-3.5e38"
    rows[10]["x1"] = ""  # missing: kept (imputed later), as before
    project = Project.init(tmp_path / "p", task="tabular-classification")
    result = project.ingest(str(tabular_csv(tmp_path / "t", rows)), progress=False)
    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert set(reasons) == {f"data.csv:row {k}" for k in (3, 5, 7, 9)}
    assert "non-finite" in reasons["data.csv:row 3"] and "'x1'" in reasons["data.csv:row 3"]
    assert "non-finite" in reasons["data.csv:row 5"] and "'x2'" in reasons["data.csv:row 5"]
    assert "float32" in reasons["data.csv:row 7"] and "'x1'" in reasons["data.csv:row 7"]
    assert "float32" in reasons["data.csv:row 9"] and "'x2'" in reasons["data.csv:row 9"]
    assert result.n_samples == 16 and result.n_quarantined == 4
    assert "data.csv:row 11" in set(read_manifest(project)["sample_id"])


def test_a_regression_target_that_overflows_float32_is_quarantined(tmp_path):
    rows = [{"x1": str(i), "x2": str(i % 3), "y": str(1.5 * i)} for i in range(20)]
    rows[3]["y"] = "1e39"
    project = Project.init(tmp_path / "p", task="tabular-regression")
    project.update_config({"data.label_column": "y"})
    project.ingest(str(tabular_csv(tmp_path / "t", rows)), progress=False)
    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert list(reasons) == ["data.csv:row 4"] and "float32" in reasons["data.csv:row 4"]
    assert "'y'" in reasons["data.csv:row 4"]


# ---- the class cap -----------------------------------------------------------------------------
def test_a_unique_id_label_column_is_refused_as_an_id_column(tmp_path):
    assert Project.init(tmp_path / "d").config.data.max_classes == 1000
    rows = [{**row, "label": f"patient-{i:04d}"} for i, row in enumerate(plain_rows(40))]
    project = Project.init(tmp_path / "p", task="tabular-classification")
    project.update_config({"data.max_classes": 25})
    with pytest.raises(DataError, match="this looks like an id column") as err:
        project.ingest(str(tabular_csv(tmp_path / "t", rows)), progress=False)
    text = f"{err.value} {err.value.expected} {err.value.received} {err.value.fix}"
    assert "'label'" in text and "data.max_classes" in text and "25" in text
    assert "26" in err.value.received  # the count found
    assert not project.paths.manifest.exists()


def test_a_multilabel_table_counts_labels_not_label_sets(tmp_path):
    rows = [
        {"x1": str(i), "x2": str(i % 5), "tags": "|".join(sorted({"abcd"[i % 4], "abcd"[i % 3]}))}
        for i in range(30)
    ]
    project = Project.init(tmp_path / "p", task="tabular-multilabel")
    project.update_config({"data.label_column": "tags", "data.max_classes": 4})
    result = project.ingest(str(tabular_csv(tmp_path / "t", rows)), progress=False)
    assert len(result.class_counts) == 4  # more than 4 label sets, 4 labels: accepted
    project.update_config({"data.max_classes": 3})
    with pytest.raises(DataError, match="this looks like an id column"):
        project.ingest(progress=False)


def test_regression_targets_are_never_capped(tmp_path):
    rows = [{"x1": str(i), "x2": str(i % 3), "y": str(1.5 * i)} for i in range(40)]
    project = Project.init(tmp_path / "p", task="tabular-regression")
    project.update_config({"data.label_column": "y", "data.max_classes": 5})
    result = project.ingest(str(tabular_csv(tmp_path / "t", rows)), progress=False)
    assert result.n_samples == 40
