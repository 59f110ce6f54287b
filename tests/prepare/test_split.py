"""Step 4, split: stratified, deterministic, stable under added data, grouped, sealed."""

from __future__ import annotations

import pytest

from dlworkflow.errors import SplitError, StepOrderError
from dlworkflow.project import Project
from dlworkflow.store import load_split, read_assignments, read_manifest, read_split_info
from dlworkflow.store.splits import seal_hash

FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}


def _assignment(project) -> dict[str, str]:
    table = read_assignments(project)
    return dict(zip(table["sample_id"], table["split"]))


def _labelled(project):
    return read_manifest(project).merge(read_assignments(project), on="sample_id")


def _ingest_and_split(project, source):
    project.ingest(str(source), progress=False)
    return project.split()


@pytest.mark.parametrize("n_per_class", [20, 17])
def test_default_split_is_stratified_within_one_per_class(project, digits_folder, n_per_class):
    result = _ingest_and_split(project, digits_folder(n_per_class))
    frame = _labelled(project)
    assert len(frame) == 3 * n_per_class
    assert sum(result.counts.values()) == 3 * n_per_class
    info = read_split_info(project)
    for label in ("0", "1", "2"):
        per_split = frame[frame["label"] == label]["split"].value_counts()
        for name, fraction in FRACTIONS.items():
            assert abs(per_split.get(name, 0) - fraction * n_per_class) <= 1, (label, name)
            assert info.class_counts[name][label] == per_split.get(name, 0)
    assert info.counts == result.counts
    assert abs(result.counts["val"] - result.counts["test"]) <= 1  # ties do not all go to val
    assert info.fractions == FRACTIONS
    assert result.new == 3 * n_per_class and result.kept == 0


def test_same_data_and_seed_give_the_same_assignment(tmp_path, digits_folder):
    folder = digits_folder(12)
    a, b = Project.init(tmp_path / "a"), Project.init(tmp_path / "b")
    ra, rb = _ingest_and_split(a, folder), _ingest_and_split(b, folder)
    assert _assignment(a) == _assignment(b)
    assert ra.split_hash == rb.split_hash and ra.seal_hash == rb.seal_hash
    again = a.split()  # re-splitting the same data changes nothing
    assert again.split_hash == ra.split_hash
    assert again.kept == 36 and again.new == 0


def test_a_different_seed_gives_a_different_assignment(tmp_path, digits_folder):
    folder = digits_folder(12)
    a, b = Project.init(tmp_path / "a"), Project.init(tmp_path / "b")
    b.update_config({"seed": 7})
    _ingest_and_split(a, folder)
    _ingest_and_split(b, folder)
    assignment_a, assignment_b = _assignment(a), _assignment(b)
    assert set(assignment_a) == set(assignment_b)
    assert assignment_a != assignment_b
    assert read_split_info(b).seed == 7
    # both are still stratified: same per-split counts
    assert read_split_info(a).counts == read_split_info(b).counts


def test_adding_samples_never_moves_an_existing_sample(project, digits_folder):
    first = _ingest_and_split(project, digits_folder(10))
    before = _assignment(project)
    second = _ingest_and_split(project, digits_folder(20))  # same folder, 10 more per class
    after = _assignment(project)
    assert len(before) == 30 and len(after) == 60
    assert {sid: after[sid] for sid in before} == before
    assert second.kept == 30 and second.new == 30
    assert second.seal_hash != first.seal_hash  # new test samples join the seal
    frame = _labelled(project)
    for label in ("0", "1", "2"):
        per_split = frame[frame["label"] == label]["split"].value_counts()
        for name, fraction in FRACTIONS.items():
            assert abs(per_split.get(name, 0) - fraction * 20) <= 1


def test_changing_fractions_makes_a_fresh_split(project, digits_folder):
    _ingest_and_split(project, digits_folder(20))
    project.update_config({"split.train": 0.6, "split.val": 0.2, "split.test": 0.2})
    result = project.split()
    assert result.kept == 0
    assert result.counts == {"train": 36, "val": 12, "test": 12}


def _group_rows():
    # 12 groups (patients) of 5 samples; the label is a property of the group
    return [
        {"label": g % 3, "k": k + 5 * (g // 3), "group": f"patient{g:02d}"}
        for g in range(12)
        for k in range(5)
    ]


def test_group_column_keeps_every_group_in_one_split(project, digits_csv):
    table = digits_csv(_group_rows())
    project.update_config({"data.group_column": "group"})
    result = _ingest_and_split(project, table)
    frame = _labelled(project)
    assert len(frame) == 60
    splits_per_group = frame.groupby("group")["split"].nunique()
    assert len(splits_per_group) == 12
    assert (splits_per_group == 1).all()
    info = read_split_info(project)
    assert info.grouped is True
    assert sum(info.n_groups.values()) == 12
    assert result.n_groups == info.n_groups
    assert all(info.counts[name] > 0 for name in FRACTIONS)


def test_without_group_column_groups_are_split_apart(project, digits_csv):
    project.ingest(str(digits_csv(_group_rows())), progress=False)
    project.split()
    assert read_split_info(project).grouped is False
    assert (_labelled(project)["group"].isna()).all()


def test_samples_with_an_empty_group_are_split_on_their_own(project, digits_csv):
    rows = _group_rows()
    for row in rows[::4]:
        row["group"] = ""  # some samples have no group value
    project.update_config({"data.group_column": "group"})
    _ingest_and_split(project, digits_csv(rows))
    frame = _labelled(project)
    grouped = frame[frame["group"].notna()]
    assert (grouped.groupby("group")["split"].nunique() == 1).all()
    assert frame["group"].isna().sum() == 15
    assert len(frame) == 60


def test_new_grouping_that_conflicts_with_the_split_is_refused(project, digits_csv):
    table = digits_csv(_group_rows())
    _ingest_and_split(project, table)  # split without groups: patients span splits
    before = _assignment(project)
    project.update_config({"data.group_column": "group"})
    project.ingest(str(table), progress=False)
    with pytest.raises(SplitError) as info:
        project.split()
    assert "groups span two splits" in str(info.value)
    assert "delete .dlw/split" in info.value.fix
    assert _assignment(project) == before  # the sealed split is untouched


def test_seal_hash_is_stored_and_matches_the_test_rows(project, digits_folder):
    result = _ingest_and_split(project, digits_folder(20))
    frame = _labelled(project)
    test_rows = frame[frame["split"] == "test"]
    assert len(test_rows) == result.counts["test"] == 9
    expected = seal_hash(test_rows)
    assert result.seal_hash == expected
    assert read_split_info(project).seal_hash == expected
    record = project.ledger.latest("split")
    assert record.outputs == {"hash": result.split_hash, "seal": expected}
    assert record.inputs == {"ingest": project.upstream_hash("ingest")}
    assert read_split_info(project).dataset_version == project.upstream_hash("ingest")


def test_load_split_returns_open_splits_only(project, digits_folder):
    result = _ingest_and_split(project, digits_folder(20))
    train, val = load_split(project, "train"), load_split(project, "val")
    assert (len(train), len(val)) == (result.counts["train"], result.counts["val"])
    assert "split" not in train.columns
    assert set(train["sample_id"]).isdisjoint(val["sample_id"])
    assert set(train["label"]) == {"0", "1", "2"}
    with pytest.raises(SplitError):
        load_split(project, "holdout")


def test_removed_samples_invalidate_the_split(project, digits_folder):
    folder = digits_folder(10)
    _ingest_and_split(project, folder)
    (folder / "1" / "d1-004.png").unlink()
    project.ingest(str(folder), progress=False)
    with pytest.raises(SplitError) as info:
        load_split(project, "train")
    assert "1 missing samples" in info.value.received
    assert project.split().counts["train"] + project.split().counts["val"] > 0


def test_split_before_ingest_is_a_step_order_error(project):
    with pytest.raises(StepOrderError) as info:
        project.split()
    assert "dlw ingest" in info.value.fix


def test_exact_duplicates_are_kept_in_one_split(project, digits_folder):
    folder = digits_folder(20)
    for k in range(20):  # class 2 holds copies of class 1's images under other names
        data = (folder / "1" / f"d1-{k:03d}.png").read_bytes()
        (folder / "2" / f"copy-{k:03d}.png").write_bytes(data)
    result = _ingest_and_split(project, folder)
    frame = _labelled(project).set_index("sample_id")
    for k in range(20):
        assert frame.loc[f"1/d1-{k:03d}.png", "split"] == frame.loc[f"2/copy-{k:03d}.png", "split"]
    assert result.counts["test"] > 0 and not result.warnings


def _plant_test_duplicate(project, folder):
    """A test image whose file later becomes a copy of a training image."""
    frame = _labelled(project)
    test_id = frame.loc[frame["split"] == "test", "sample_id"].iloc[0]
    train_id = frame.loc[frame["split"] == "train", "sample_id"].iloc[0]
    (folder / test_id).write_bytes((folder / train_id).read_bytes())
    project.ingest(str(folder), progress=False)
    return test_id


def test_a_test_set_that_duplicates_training_data_is_refused_removed_or_accepted(
    project, digits_folder
):
    folder = digits_folder(20)
    _ingest_and_split(project, folder)
    before = _assignment(project)
    test_id = _plant_test_duplicate(project, folder)
    with pytest.raises(SplitError) as info:
        project.split()
    assert "1 samples that duplicate" in str(info.value)
    assert "split.duplicates: remove" in info.value.fix
    assert _assignment(project) == before

    project.update_config({"split.duplicates": "accept"})
    with pytest.raises(SplitError) as info:
        project.split()
    assert "no reason" in str(info.value)
    project.update_config({"split.duplicates_reason": "the same scan was filed twice"})
    project.split()
    decision = project.ledger.latest("split").summary["duplicates"]
    assert decision["reason"] == "the same scan was filed twice"
    assert test_id in decision["accepted"]
    assert _assignment(project)[test_id] == "test"

    project.update_config({"split.duplicates": "remove"})
    result = project.split()
    assert _assignment(project)[test_id] == "excluded"
    assert test_id in project.ledger.latest("split").summary["duplicates"]["removed"]
    assert any("removed from the test set" in w for w in result.warnings)
    assert test_id not in set(_labelled(project).query("split == 'test'")["sample_id"])
