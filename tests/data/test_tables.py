"""Table sources: text and tabular tasks from CSV, JSONL and Parquet; unknown labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlworkflow.errors import DataError
from dlworkflow.project import Project
from dlworkflow.store import read_dataset_info, read_manifest, read_quarantine


@pytest.fixture
def text_project(tmp_path):
    return Project.init(tmp_path / "text", task="text-classification")


def test_text_jsonl_ingest(text_project, tmp_path):
    rows = [{"text": f"a truly wonderful film number {i}", "label": "fresh"} for i in range(5)]
    rows += [{"text": f"a dull and tedious film number {i}", "label": "rotten"} for i in range(5)]
    rows += [{"text": "   ", "label": "fresh"}, {"text": "no label here", "label": None}]
    path = tmp_path / "reviews.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = text_project.ingest(str(path), progress=False)
    assert result.n_samples == 10 and result.class_counts == {"fresh": 5, "rotten": 5}
    assert result.data_format == "text"
    manifest = read_manifest(text_project)
    assert manifest["text"].str.contains("film").all()
    assert manifest["content_hash"].nunique() == 10
    reasons = sorted(read_quarantine(text_project)["reason"])
    assert reasons == ["row 11: empty text", "row 12: no label (empty or NaN label)"]
    assert read_dataset_info(text_project).size is None


def test_tabular_parquet_and_csv_ingest(tmp_path):
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.head(60).copy()
    frame["label"] = np.where(bunch.target.head(60) == 0, "malignant", "benign")
    frame = frame.drop(columns="target")
    frame["mean radius"] = frame["mean radius"].astype(object)
    frame.loc[3, "mean radius"] = "oops"  # a typo in a numeric column
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    good = frame.drop(index=3).astype({"mean radius": float})
    good.to_parquet(tmp_path / "cancer.parquet", index=False)

    for name, expected in (("cancer.parquet", 59), ("cancer.csv", 59)):
        project = Project.init(tmp_path / name.replace(".", "-"), task="tabular-classification")
        result = project.ingest(str(tmp_path / name), progress=False)
        assert result.n_samples == expected
        manifest = read_manifest(project)
        assert (
            "f:mean radius" in manifest.columns
            and len([c for c in manifest.columns if c.startswith("f:")]) == 30
        )
        assert result.data_format == "30 feature columns"
    reasons = list(read_quarantine(project)["reason"])
    assert reasons == ["row 4: non-numeric value 'oops' in numeric column 'mean radius'"]


def test_tabular_feature_columns_can_be_chosen_and_must_exist(tmp_path):
    table = pd.DataFrame(
        {
            "a": [1.0, 2.0, 3.0, 4.0],
            "b": [0, 1, 0, 1],
            "id": list("wxyz"),
            "label": ["p", "q", "p", "q"],
        }
    )
    table.to_csv(tmp_path / "t.csv", index=False)
    project = Project.init(tmp_path / "p", task="tabular-classification")
    project.update_config({"data.feature_columns": ["a"], "data.id_column": "id"})
    project.ingest(str(tmp_path / "t.csv"), progress=False)
    manifest = read_manifest(project)
    assert list(manifest["sample_id"]) == list("wxyz")
    assert [c for c in manifest.columns if c.startswith("f:")] == ["f:a"]
    project.update_config({"data.feature_columns": ["a", "c"]})
    with pytest.raises(DataError) as info:
        project.ingest(str(tmp_path / "t.csv"), progress=False)
    assert "'c'" in str(info.value)


def test_unknown_label_values_are_quarantined(project, digits_folder):
    folder = digits_folder(3, classes=(0, 1, 2))
    project.update_config({"data.classes": ["0", "1"]})
    result = project.ingest(str(folder), progress=False)
    assert result.class_counts == {"0": 3, "1": 3}
    reasons = set(read_quarantine(project)["reason"])
    assert reasons == {"unknown label value '2' (data.classes allows ['0', '1'])"}


def test_folder_source_for_a_text_task_is_refused(text_project, digits_folder):
    with pytest.raises(DataError) as info:
        text_project.ingest(str(digits_folder(2)), progress=False)
    assert "text-classification" in str(info.value)


def test_remote_source_through_fsspec(project, digits_folder):
    import fsspec

    folder = digits_folder(3, classes=(0, 1))
    fs = fsspec.filesystem("memory")
    for file in folder.rglob("*.png"):
        fs.pipe(f"/bucket/digits/{file.relative_to(folder).as_posix()}", file.read_bytes())
    result = project.ingest("memory://bucket/digits", progress=False)
    assert result.n_samples == 6 and result.class_counts == {"0": 3, "1": 3}
    assert all(
        p.startswith(str(project.paths.state / "remote")) for p in read_manifest(project)["path"]
    )
    with pytest.raises(DataError) as info:
        project.ingest("nosuchproto://bucket/x", progress=False)
    assert "nosuchproto://" in str(info.value)
