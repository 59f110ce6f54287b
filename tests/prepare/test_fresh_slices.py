"""Fresh data of `dlw retrain` (data.additions): one manifest with add<N>/ ids, and a split in
which fresh samples never join the sealed test set: their test share is a sealed slice of its
own (fresh<N>), and the original test set and its seal stay exactly as they were."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dlworkflow.config import Split
from dlworkflow.errors import DataError, SealedTestSetError
from dlworkflow.fileio import atomic_write_json, read_json
from dlworkflow.prepare.assign import Unit, assign
from dlworkflow.prepare.leakage import EXCLUDED, apply_policy, find_leaks
from dlworkflow.project import Project
from dlworkflow.store import load_split, read_assignments, read_manifest, read_split_info
from dlworkflow.store.manifest import dataset_version
from dlworkflow.store.sealed import open_test_set
from dlworkflow.store.splits import seal_hash

FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}


@pytest.fixture
def fresh_folder(real_digit, save_png):
    """fresh_folder(root, start, stop): root/<label>/f<label>-<k>.png for start <= k < stop,
    real digits that a main folder of `start` per class does not hold."""

    def make(root: Path, start: int, stop: int, *, classes=(0, 1, 2)) -> Path:
        for label in classes:
            for k in range(start, stop):
                save_png(root / str(label) / f"f{label}-{k:03d}.png", real_digit(label, k))
        return root

    return make


def _split_of(project) -> dict[str, str]:
    table = read_assignments(project)
    return dict(zip(table["sample_id"], table["split"]))


def _add(project: Project, *sources: Path) -> None:
    project.update_config({"data.additions": [str(s) for s in sources]})
    project.ingest(progress=False)


def test_ingest_without_additions_writes_what_it_always_wrote(project, digits_folder):
    result = project.ingest(str(digits_folder(8)), progress=False)
    manifest = read_manifest(project)
    assert result.additions == []
    assert not any(sid.startswith("add") for sid in manifest["sample_id"])
    assert result.dataset_version == dataset_version(manifest)
    assert "additions" not in read_json(project.paths.state / "dataset.json")["extra"]
    assert "additions" not in project.ledger.latest("ingest").summary
    assert not any(label.startswith("addition") for label, _ in result.rows())


def test_additions_join_one_manifest_with_prefixed_ids(
    project, digits_folder, tmp_path, fresh_folder
):
    main = digits_folder(8)
    extra = fresh_folder(tmp_path / "fresh", 8, 14)
    (extra / "1" / "broken.png").write_bytes(b"not an image at all")
    project.ingest(str(main), progress=False)
    plain = project.upstream_hash("ingest")
    project.update_config({"data.additions": [str(extra)]})
    result = project.ingest(progress=False)
    manifest = read_manifest(project)
    ids = manifest["sample_id"].tolist()
    assert len(ids) == 3 * 8 + 3 * 6
    assert sum(sid.startswith("add1/") for sid in ids) == 18
    assert "add1/0/f0-008.png" in ids and "0/d0-000.png" in ids
    assert result.dataset_version == dataset_version(manifest) != plain
    assert result.n_quarantined == 1 and result.quarantine_examples[0][0] == "add1/1/broken.png"
    record = {
        "number": 1,
        "source": str(extra),
        "prefix": "add1/",
        "n_samples": 18,
        "n_quarantined": 1,
    }
    assert result.additions == [record]
    assert read_json(project.paths.state / "dataset.json")["extra"]["additions"] == [record]
    assert ("addition 1", f"{extra}: 18 samples (ids add1/...), 1 quarantined") in result.rows()
    project.update_config({"data.additions": []})  # dropping the addition restores the data
    assert project.ingest(progress=False).dataset_version == plain


def test_fresh_samples_never_join_the_test_set_and_its_seal_holds(
    project, digits_folder, tmp_path, fresh_folder
):
    project.ingest(str(digits_folder(20)), progress=False)
    first = project.split()
    before = _split_of(project)
    _add(project, fresh_folder(tmp_path / "fresh1", 20, 40))
    second = project.split()
    after = _split_of(project)
    assert {sid: after[sid] for sid in before} == before  # no old sample moved
    assert second.seal_hash == first.seal_hash  # the test set is the same set
    assert read_split_info(project).seal_hash == first.seal_hash
    fresh = {sid: s for sid, s in after.items() if sid.startswith("add1/")}
    assert len(fresh) == 60 and "test" not in fresh.values()
    counts = pd.Series(list(fresh.values())).value_counts().to_dict()
    assert set(counts) == {"train", "val", "fresh1"}
    # the fresh samples take the test share of the whole (120 x 15% = 18, 9 of them old)
    assert abs(counts["fresh1"] - 9) <= 2 and abs(counts["val"] - 9) <= 2
    info = read_split_info(project)
    assert list(info.slices) == ["fresh1"]
    slice1 = info.slices["fresh1"]
    rows = read_manifest(project).merge(read_assignments(project), on="sample_id")
    fresh_rows = rows[rows["split"] == "fresh1"]
    assert slice1["seal_hash"] == seal_hash(fresh_rows)
    assert slice1["n"] == counts["fresh1"] and slice1["addition"] == 1
    assert slice1["class_counts"] == fresh_rows["label"].value_counts().sort_index().to_dict()
    assert sum(info.counts.values()) + slice1["n"] == 120
    assert second.slices == info.slices
    assert any(label == "fresh1" for label, _ in second.rows())
    # a second addition gets its own slice; the first is left as it was
    _add(project, tmp_path / "fresh1", fresh_folder(tmp_path / "fresh2", 40, 60))
    third = project.split()
    info = read_split_info(project)
    assert third.seal_hash == first.seal_hash
    assert list(info.slices) == ["fresh1", "fresh2"]
    assert info.slices["fresh1"] == slice1
    assert not any(
        s == "test" for sid, s in _split_of(project).items() if sid.startswith(("add1/", "add2/"))
    )


def test_fresh_slices_are_sealed_like_the_test_set(
    project, digits_folder, tmp_path, real_digit, save_png, fresh_folder
):
    project.ingest(str(digits_folder(20)), progress=False)
    _add(project, fresh_folder(tmp_path / "fresh1", 20, 40))
    project.split()
    info = read_split_info(project)
    with pytest.raises(SealedTestSetError) as refused:
        load_split(project, "fresh1")
    assert "sealed" in str(refused.value)
    with pytest.raises(SealedTestSetError):
        open_test_set(project, purpose="peek", slice="fresh1")
    with (
        pytest.raises(SealedTestSetError),
        project.step("train", inputs={"split": project.upstream_hash("split")}),
    ):
        open_test_set(project, purpose="early stopping", slice="fresh1")
    assert project.ledger.test_reads() == []
    with project.step("test"):
        rows = open_test_set(project, purpose="verdict", slice="fresh1")
        with pytest.raises(SealedTestSetError) as unknown:
            open_test_set(project, purpose="verdict", slice="fresh9")
    assert "fresh1" in unknown.value.expected
    assert set(rows["sample_id"]) == {s for s, v in _split_of(project).items() if v == "fresh1"}
    assert rows["label"].notna().all() and "split" not in rows.columns
    (read,) = project.ledger.test_reads()
    assert read.seal_hash == info.slices["fresh1"]["seal_hash"] and read.n_samples == len(rows)
    # changing a fresh image breaks the fresh slice's seal and leaves the test seal alone
    victim = rows.iloc[0]
    save_png(victim["path"], real_digit(int(victim["label"]), 150))
    project.ingest(progress=False)
    with project.step("test"):
        assert len(open_test_set(project, purpose="verdict")) == info.counts["test"]
        with pytest.raises(SealedTestSetError) as broken:
            open_test_set(project, purpose="verdict", slice="fresh1")
    assert "no longer matches its seal" in str(broken.value)


def test_a_split_made_before_fresh_slices_existed_still_loads(split_project):
    path = split_project.paths.split_dir / "split.json"
    raw = read_json(path)
    raw.pop("slices")
    atomic_write_json(path, raw)
    assert read_split_info(split_project).slices == {}
    assert split_project.split().kept == 60  # and the next split keeps every sample


def test_leakage_checks_treat_fresh_slices_like_test():
    frame = pd.DataFrame(
        {
            "sample_id": ["t1", "t2", "f1", "f2", "f3", "v1"],
            "content_hash": ["a", "b", "a", "c", "d", "e"],
            "group": ["g1", "g2", "g2", None, "g3", "g3"],
            "split": ["train", "test", "fresh1", "fresh1", "fresh2", "val"],
        }
    )
    leaks = find_leaks(frame, near=[("f2", "v1"), ("t2", "f3")])
    assert leaks.test_duplicates == {
        "f1": "same content as a train/val sample (in fresh1)",
        "f2": "near duplicate of v1 (in fresh1)",
    }
    assert leaks.groups_in_two_splits == ["g3"]  # g2 spans test and fresh1: both held out
    leaks.groups_in_two_splits = []
    out, decision = apply_policy(frame, leaks, Split(duplicates="remove"))
    assert out.set_index("sample_id")["split"].to_dict()["f1"] == EXCLUDED
    assert out.set_index("sample_id")["split"].to_dict()["f2"] == EXCLUDED
    assert decision["test_duplicates"] == 2


def test_assignment_sends_fresh_units_to_their_slice_and_counts_them_as_test():
    units = [Unit(f"s:{i}", [f"old{i}"], "a") for i in range(20)]
    units += [Unit(f"s:n{i}", [f"add1/n{i}"], "a") for i in range(20)]
    units += [Unit("h:shared", ["add2/x", "old_test"], "a")]
    previous = {f"old{i}": "train" for i in range(14)}
    previous.update({f"old{i}": "val" for i in range(14, 17)})
    previous.update({f"old{i}": "test" for i in range(17, 20)})
    previous.update({"old_test": "test", "add1/n0": "fresh1"})
    fresh = {f"add1/n{i}": 1 for i in range(20)} | {"add2/x": 2}
    mapping, _ = assign(
        units, fractions=FRACTIONS, seed=0, stratify=True, previous=previous, fresh=fresh
    )
    assert all(mapping[k] == v for k, v in previous.items())
    assert mapping["add2/x"] == "fresh2"  # joins its unit's test split as its own slice
    new = {mapping[f"add1/n{i}"] for i in range(20)}
    assert new == {"train", "val", "fresh1"}  # never test
    # the targets count a fresh slice as test: 42 x 15% = 6.3 held out, as many in val
    shares = (
        pd.Series(mapping)
        .map(lambda s: "held out" if s == "test" or s.startswith("fresh") else s)
        .value_counts()
        .to_dict()
    )
    assert abs(shares["held out"] - 6.3) < 1 and abs(shares["val"] - 6.3) < 1


def test_a_main_source_id_that_looks_like_an_addition_is_refused(
    project, tmp_path, real_digit, save_png, digits_folder
):
    main = tmp_path / "main"
    for k in range(3):
        save_png(main / "add1" / f"a{k}.png", real_digit(0, k))
        save_png(main / "b" / f"b{k}.png", real_digit(1, k))
    project.update_config({"data.additions": [str(digits_folder(3))]})
    with pytest.raises(DataError) as refused:
        project.ingest(str(main), progress=False)
    assert "add1/" in str(refused.value) and "rename" in refused.value.fix
    assert not project.paths.manifest.exists()


def test_tabular_additions_are_read_with_the_main_sources_columns(tmp_path):
    project = Project.init(tmp_path / "tab", task="tabular-classification")
    main = tmp_path / "main.csv"
    pd.DataFrame(
        {"size": [1.0, 2.5, 3.0, 4.5, 5.0, 6.5], "colour": list("rgbrgb"), "label": list("xyxyxy")}
    ).to_csv(main, index=False)
    fresh = tmp_path / "fresh.csv"  # colour looks numeric here; it is a string column
    pd.DataFrame({"size": [7.0, 8.0], "colour": ["1", "2"], "label": ["x", "y"]}).to_csv(
        fresh, index=False
    )
    project.ingest(str(main), progress=False)
    project.update_config({"data.additions": [str(fresh)]})
    result = project.ingest(progress=False)
    manifest = read_manifest(project).set_index("sample_id")
    assert result.n_samples == 8 and result.additions[0]["n_samples"] == 2
    # colours the main source never had are what fresh data brings: kept and counted, and
    # the schema an export carries to `dlw serve` knows them
    assert "0 quarantined" in result.schema
    assert "colour: a value never seen (fresh data, kept): 2" in result.schema
    from dlworkflow.data.schema import infer_from_manifest

    assert set(infer_from_manifest(project)["features"]["colour"]["values"]) == {
        "r",
        "g",
        "b",
        "1",
        "2",
    }
    assert manifest.loc["add1/fresh.csv:row 1", "f:colour"] == "1"
    assert manifest.loc["add1/fresh.csv:row 2", "f:size"] == 8.0
    odd = tmp_path / "odd.csv"
    pd.DataFrame({"size": [1.0], "weight": [2.0], "label": ["x"]}).to_csv(odd, index=False)
    project.update_config({"data.additions": [str(odd)]})
    with pytest.raises(DataError) as refused:
        project.ingest(progress=False)
    assert "missing ['colour'], extra ['weight']" in refused.value.received
