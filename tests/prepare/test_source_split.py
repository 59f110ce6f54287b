"""split.use_source_split on real series (sktime's GunPoint), and `dlw split` on sequence and
audio manifests (no image columns: duplicates by content hash)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from dlworkflow.datasets.ucr import ucr_files
from dlworkflow.errors import DataError, SplitError
from dlworkflow.prepare.source_split import check_groups
from dlworkflow.project import Project
from dlworkflow.store import read_assignments, read_manifest


def _project(tmp_path: Path, task: str = "sequence-classification", **config: object) -> Project:
    project = Project.init(tmp_path / "proj", task=task)
    if config:
        project.update_config(config)
    return project


def _splits(project: Project) -> pd.DataFrame:
    return read_manifest(project).merge(read_assignments(project), on="sample_id")


def test_gunpoint_test_set_is_exactly_the_archive_test_file(tmp_path):
    project = _project(tmp_path, **{"split.use_source_split": True})
    project.ingest("builtin:gunpoint", progress=False)
    result = project.split()
    frame = _splits(project)
    source_test = set(frame.loc[frame["source_split"] == "test", "sample_id"])
    assert len(source_test) == 150
    assert set(frame.loc[frame["split"] == "test", "sample_id"]) == source_test
    assert result.counts == {"train": 41, "val": 9, "test": 150}  # 50 at 70:15
    val = frame[frame["split"] == "val"]
    assert set(val["label"]) == {"1", "2"}  # stratified
    assert ("test set", "the source's own test part (split.use_source_split)") in result.rows()
    record = project.ledger.latest("split")
    assert record is not None
    assert record.summary["source_split"] == {
        "use_source_split": True,
        "source_test": 150,
        "drawn": 50,
    }
    # the same split again keeps every sample; switching the flag off draws all 200 afresh
    assert project.split().kept == 200
    project.update_config({"split.use_source_split": False})
    again = project.split()
    assert again.new == 200 and again.counts["test"] == 30


def test_the_flag_without_a_source_division_is_a_clear_error(tmp_path):
    train, _ = ucr_files("GunPoint")
    single = tmp_path / "data" / "gunpoint.ts"
    single.parent.mkdir()
    shutil.copyfile(train, single)  # no TEST sibling: no source division
    project = _project(tmp_path, **{"split.use_source_split": True})
    project.ingest(str(single), progress=False)
    with pytest.raises(DataError, match="has no test part of its own") as caught:
        project.split()
    assert "no source_split values" in str(caught.value)


def _pair_with_a_copied_case(folder: Path) -> Path:
    """GunPoint's first 20 train and 30 test cases; test case 0 is a copy of train case 3."""
    folder.mkdir(parents=True)
    out = []
    for path in ucr_files("GunPoint"):
        lines = path.read_text().splitlines()
        start = next(i for i, t in enumerate(lines) if t.strip() == "@data") + 1
        out.append((path.name, lines[:start], lines[start:]))
    (train_name, head, train), (test_name, test_head, test) = out
    test = [train[3], *test[1:30]]
    (folder / train_name).write_text("\n".join(head + train[:20]) + "\n")
    (folder / test_name).write_text("\n".join(test_head + test) + "\n")
    return folder


def test_a_series_in_both_source_parts_is_caught_by_its_content_hash(tmp_path):
    folder = _pair_with_a_copied_case(tmp_path / "pair")
    project = _project(tmp_path, **{"split.use_source_split": True})
    project.ingest(str(folder), progress=False)
    with pytest.raises(SplitError, match="duplicate training or validation"):
        project.split()
    project.update_config({"split.duplicates": "remove"})
    result = project.split()
    frame = _splits(project)
    assert frame.set_index("sample_id").loc["test/0000", "split"] == "excluded"
    assert result.counts["test"] == 29 and result.counts["train"] + result.counts["val"] == 20


def test_a_group_in_both_source_parts_is_refused():
    manifest = pd.DataFrame(
        {"sample_id": ["train/0", "train/1", "test/0"], "group": ["a", "b", "a"]}
    )
    with pytest.raises(SplitError, match="puts 1 group"):
        check_groups(manifest, {"test/0"}, grouped=True)
    check_groups(manifest, {"test/0"}, grouped=False)  # split.group_by false: kept as it is


def test_split_of_a_grouped_series_table(tmp_path):
    """Without the flag: the usual grouped, stratified split of a long table's series."""
    from dlworkflow.store.ts_format import read_ts

    data = read_ts(ucr_files("GunPoint")[0])
    rows = [
        {"id": f"s{i}", "time": t, "x": float(v), "label": data.labels[i], "subject": f"p{i % 10}"}
        for i in range(50)
        for t, v in enumerate(data.series[i][0][:40])
    ]
    path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    project = _project(tmp_path, **{"data.group_column": "subject"})
    project.ingest(str(path), progress=False)
    result = project.split()
    frame = _splits(project)
    assert sum(result.counts.values()) == 50 and result.counts["test"] > 0
    assert (frame.groupby("group")["split"].nunique() == 1).all()


def test_split_of_an_audio_manifest(tmp_path):
    """Audio clips (sonic-pi-samples): no phash, duplicates by content hash, a clip copied
    into two classes' folders stays on one side."""
    from dlworkflow.datasets.sonic_pi import sonic_pi_clips

    clips = sonic_pi_clips()
    folder = tmp_path / "clips"
    for label in ("tabla", "elec", "drum"):
        for path in [p for p, c in clips if c == label][:6]:
            target = folder / label / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    shutil.copyfile(next(folder.glob("tabla/*.flac")), folder / "elec" / "copied.flac")
    project = _project(tmp_path, task="audio-classification")
    ingested = project.ingest(str(folder), progress=False)
    assert ingested.n_samples >= 12
    result = project.split()
    frame = _splits(project)
    assert "phash" not in frame.columns
    assert sum(result.counts.values()) == ingested.n_samples and result.counts["test"] > 0
    per_hash = frame.groupby("content_hash")["split"]
    assert per_hash.size().max() == 2 and (per_hash.nunique() == 1).all()
