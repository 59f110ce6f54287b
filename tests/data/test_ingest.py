"""Step 2, ingest: counts, classes, content hashes, dataset versions, quarantine, read-only."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from dlworkflow.errors import DataError
from dlworkflow.store import read_dataset_info, read_manifest, read_quarantine


def test_folder_ingest_counts_classes_and_hashes(project, digits_folder, sha256_of):
    folder = digits_folder(5, classes=(3, 7))
    result = project.ingest(str(folder), progress=False)
    assert result.n_samples == 10
    assert result.class_counts == {"3": 5, "7": 5}
    assert result.n_quarantined == 0 and result.n_skipped == 0
    assert result.data_format.startswith("images, 16x16, 1 channel")
    assert result.changed is True
    manifest = read_manifest(project)
    assert len(manifest) == 10
    assert sorted(manifest["sample_id"]) == sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*.png")
    )
    for row in manifest.itertuples():
        assert row.content_hash == sha256_of(row.path)
        assert row.label == row.sample_id.split("/")[0]
        assert (row.width, row.height, row.mode) == (16, 16, "L")
    info = read_dataset_info(project)
    assert info.version == result.dataset_version
    assert (info.n_samples, info.classes, info.channels, info.size) == (10, ["3", "7"], 1, (16, 16))
    assert project.config.data.source == str(folder)  # remembered for `dlw run`
    record = project.ledger.latest("ingest")
    assert record.output_hash == result.dataset_version
    assert record.summary["n_samples"] == 10


def test_dataset_version_is_stable_and_changes_with_content(
    project, digits_folder, real_digit, save_png
):
    folder = digits_folder(4)
    first = project.ingest(str(folder), progress=False)
    again = project.ingest(str(folder), progress=False)
    assert again.dataset_version == first.dataset_version
    assert again.changed is False
    # same pixels of a different digit: one file's content changes, the names do not
    save_png(folder / "0" / "d0-000.png", real_digit(0, 50))
    changed = project.ingest(str(folder), progress=False)
    assert changed.n_samples == first.n_samples
    assert changed.dataset_version != first.dataset_version
    assert changed.changed is True
    # a label change (file moved to another class folder) also changes the version
    (folder / "0" / "d0-001.png").rename(folder / "1" / "d0-001.png")
    moved = project.ingest(str(folder), progress=False)
    assert moved.dataset_version not in (first.dataset_version, changed.dataset_version)


def test_same_data_gives_the_same_version_in_another_project(tmp_path, digits_folder):
    from dlworkflow.project import Project

    folder = digits_folder(4)
    a = Project.init(tmp_path / "a").ingest(str(folder), progress=False)
    b = Project.init(tmp_path / "b").ingest(str(folder), progress=False)
    assert a.dataset_version == b.dataset_version


def test_bad_files_are_quarantined_with_reasons_never_a_crash(
    project, digits_folder, real_digit, save_png
):
    folder = digits_folder(4)
    good = (folder / "0" / "d0-000.png").read_bytes()
    (folder / "0" / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "1" / "empty.png").write_bytes(b"")
    (folder / "2" / "text.jpg").write_text("this is not a jpeg\n")
    save_png(folder / "2" / "huge.png", np.kron(real_digit(2, 9), np.ones((2, 2), np.uint8)))
    save_png(folder / "rootlevel.png", real_digit(1, 9))
    project.update_config({"data.max_image_pixels": 300})  # 16x16=256 passes, 32x32 does not
    result = project.ingest(str(folder), progress=False)
    assert result.n_samples == 12
    assert result.n_quarantined == 5
    quarantine = read_quarantine(project)
    reasons = dict(zip(quarantine["sample_id"], quarantine["reason"]))
    assert reasons["0/truncated.png"].startswith("corrupt or truncated image")
    assert reasons["1/empty.png"] == "empty file (0 bytes)"
    assert reasons["2/text.jpg"] == "not an image Pillow can identify"
    assert reasons["2/huge.png"].startswith("too many pixels: 32x32 = 1,024 > limit 300")
    assert reasons["rootlevel.png"].startswith("no label")
    assert result.quarantine_reasons == {
        "corrupt or truncated image": 1,
        "empty file": 1,
        "not an image Pillow can identify": 1,
        "too many pixels": 1,
        "no label": 1,
    }
    labels = dict(zip(quarantine["sample_id"], quarantine["label"]))
    assert labels["1/empty.png"] == "1" and pd.isna(labels["rootlevel.png"])
    assert set(read_manifest(project)["sample_id"]).isdisjoint(reasons)
    assert read_dataset_info(project).n_quarantined == 5


def test_non_image_files_are_skipped_and_counted(project, digits_folder):
    folder = digits_folder(3)
    (folder / "README.txt").write_text("digits\n")
    (folder / "1" / "notes.csv").write_text("a,b\n")
    (folder / ".DS_Store").write_bytes(b"\0\0")  # hidden: ignored, not even listed
    result = project.ingest(str(folder), progress=False)
    assert result.n_samples == 9
    assert result.n_skipped == 2
    assert result.n_quarantined == 0
    assert ("skipped (not samples)", 2) in result.rows()


def test_originals_are_never_modified(project, digits_folder, digits_csv, snapshot):
    folder = digits_folder(4)
    (folder / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    table = digits_csv(
        [{"label": c, "k": k} for c in (0, 1) for k in range(3)]
        + [{"path": "img/missing.png", "label": 1}]
    )
    before_folder, before_csv = snapshot(folder), snapshot(table.parent)
    project.ingest(str(folder), progress=False)
    project.ingest(str(table), progress=False)
    project.ingest(str(folder), progress=False)
    assert snapshot(folder) == before_folder
    assert snapshot(table.parent) == before_csv


def test_csv_ingest_quarantines_bad_rows(project, digits_csv):
    rows = [{"label": c, "k": k} for c in (0, 1) for k in range(4)]
    rows += [
        {"label": 2, "k": 0, "label_text": ""},  # empty label
        {"label": 2, "k": 1, "label_text": "NaN"},  # NaN label
        {"path": "img/does-not-exist.png", "label": 1},  # missing file
        {"path": "img/d0-000.png", "label": 0},  # duplicate of the first row
        {"path": "", "label": 1},  # empty path
    ]
    table = digits_csv(rows)
    result = project.ingest(str(table), progress=False)
    assert result.n_samples == 8
    assert result.class_counts == {"0": 4, "1": 4}
    assert result.n_quarantined == 5
    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert reasons["img/d2-000.png"] == "row 9: no label (empty or NaN label)"
    assert reasons["img/d2-001.png"] == "row 10: no label (empty or NaN label)"
    assert reasons["img/does-not-exist.png"] == "file not found"
    assert reasons["img/d0-000.png#row 12"].startswith("row 12: duplicate id 'img/d0-000.png'")
    assert reasons["samples.csv:row 13"] == "row 13: empty path"
    assert result.quarantine_reasons["no label"] == 2
    manifest = read_manifest(project)
    first = manifest.set_index("sample_id").loc["img/d0-000.png"]
    assert first["label"] == "0"  # the first occurrence is kept
    assert (
        first["content_hash"]
        == hashlib.sha256((table.parent / "img" / "d0-000.png").read_bytes()).hexdigest()
    )


def test_csv_missing_label_column_names_it_and_the_columns_found(project, digits_csv):
    table = digits_csv([{"label": 0, "k": 0}], header=("path", "group"))
    with pytest.raises(DataError) as info:
        project.ingest(str(table), progress=False)
    assert "lacks the column 'label'" in str(info.value)
    assert info.value.received == "columns path, group"
    assert "data.label_column" in info.value.fix
    assert not project.paths.manifest.exists()
    assert project.ledger.latest("ingest", status=None).status == "failed"


def test_csv_with_custom_column_names(project, digits_csv):
    table = digits_csv([{"label": c, "k": k} for c in (4, 5) for k in range(3)])
    text = table.read_text().replace("path,label,group", "file,digit,group", 1)
    table.write_text(text)
    project.update_config({"data.path_column": "file", "data.label_column": "digit"})
    result = project.ingest(str(table), progress=False)
    assert result.class_counts == {"4": 3, "5": 3}


def test_only_unusable_samples_is_a_data_error(project, tmp_path):
    folder = tmp_path / "bad"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.png").write_bytes(b"")
    with pytest.raises(DataError) as info:
        project.ingest(str(folder), progress=False)
    assert "No usable samples" in str(info.value)


def test_single_class_is_a_data_error(project, digits_folder):
    with pytest.raises(DataError) as info:
        project.ingest(str(digits_folder(3, classes=(5,))), progress=False)
    assert "Only one target value found ('5')" in str(info.value)


def test_no_source_is_a_data_error(project):
    with pytest.raises(DataError) as info:
        project.ingest(progress=False)
    assert "builtin:mnist5k" in info.value.fix


def test_builtin_digits_ingest(project):
    from sklearn.datasets import load_digits

    result = project.ingest("builtin:digits", progress=False)
    target = load_digits().target
    assert result.n_samples == len(target) == 1797
    assert result.class_counts == {str(c): int(n) for c, n in enumerate(np.bincount(target))}
    assert result.n_quarantined == 0
    assert result.data_format.startswith("images, 8x8, 1 channel")
    manifest = read_manifest(project)
    assert manifest["path"].str.startswith(str(project.paths.raw / "digits")).all()
