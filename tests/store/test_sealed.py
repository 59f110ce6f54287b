"""The sealed test set: refused outside `dlw test`, every read logged, tampering detected."""

from __future__ import annotations

import pytest

from dlworkflow.errors import SealedTestSetError
from dlworkflow.store import load_split, read_assignments, read_manifest, read_split_info
from dlworkflow.store.sealed import open_test_set


def _test_ids(project) -> set[str]:
    table = read_assignments(project)
    return set(table.loc[table["split"] == "test", "sample_id"])


def test_load_split_refuses_the_test_set(split_project):
    with pytest.raises(SealedTestSetError) as info:
        load_split(split_project, "test")
    assert "sealed" in str(info.value)
    assert "dlw test" in info.value.fix
    assert split_project.ledger.test_reads() == []


def test_open_test_set_outside_a_step_is_refused_and_not_logged(split_project):
    with pytest.raises(SealedTestSetError) as info:
        open_test_set(split_project, purpose="peek")
    assert info.value.received == "outside any step"
    assert split_project.ledger.test_reads() == []


def test_open_test_set_inside_train_is_refused_and_not_logged(split_project):
    with (
        pytest.raises(SealedTestSetError) as info,
        split_project.step("train", inputs={"split": split_project.upstream_hash("split")}),
    ):
        open_test_set(split_project, purpose="early stopping on test")
    assert "step 'train'" in str(info.value)
    assert split_project.ledger.test_reads() == []
    failed = split_project.ledger.latest("train", status=None)
    assert failed.status == "failed" and "SealedTestSetError" in failed.message


def test_open_test_set_inside_test_returns_labelled_rows_and_logs_one_read(split_project):
    info = read_split_info(split_project)
    with split_project.step("test") as run:
        rows = open_test_set(split_project, purpose="verdict")
    assert set(rows["sample_id"]) == _test_ids(split_project)
    assert len(rows) == info.counts["test"] == 9
    assert "split" not in rows.columns
    assert rows["label"].notna().all()
    assert rows.groupby("label").size().to_dict() == info.class_counts["test"]
    manifest = read_manifest(split_project).set_index("sample_id")
    assert (
        rows.set_index("sample_id")["content_hash"]
        == manifest.loc[rows["sample_id"], "content_hash"]
    ).all()
    reads = split_project.ledger.test_reads()
    assert len(reads) == 1
    read = reads[0]
    assert (read.step, read.purpose, read.run_id) == ("test", "verdict", run.run_id)
    assert read.n_samples == 9
    assert read.seal_hash == info.seal_hash
    assert len(split_project.ledger.test_reads(info.seal_hash)) == 1
    assert split_project.status().test_reads == 1


def test_tampered_test_image_breaks_the_seal(split_project, real_digit, save_png):
    victim = sorted(_test_ids(split_project))[0]
    manifest = read_manifest(split_project).set_index("sample_id")
    path = manifest.loc[victim, "path"]
    label = int(manifest.loc[victim, "label"])
    save_png(path, real_digit(label, 100))  # same name and label, other pixels
    split_project.ingest(progress=False)  # the config remembers the source
    with pytest.raises(SealedTestSetError) as info, split_project.step("test"):
        open_test_set(split_project, purpose="verdict")
    assert "no longer matches its seal" in str(info.value)
    assert info.value.expected == f"seal {read_split_info(split_project).seal_hash[:12]}"
    assert split_project.ledger.test_reads() == []


def test_changing_a_train_image_keeps_the_seal(split_project, real_digit, save_png):
    train = load_split(split_project, "train")
    row = train.iloc[0]
    save_png(row["path"], real_digit(int(row["label"]), 100))
    split_project.ingest(progress=False)
    with split_project.step("test"):
        rows = open_test_set(split_project, purpose="verdict")
    assert len(rows) == 9
    assert len(split_project.ledger.test_reads()) == 1
