"""Sequence ingest (data/series_source.py and its table and array readers) on real UCR/UEA
series (sktime's GunPoint, BasicMotions, JapaneseVowels, small slices): every source form,
and every quarantine reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlworkflow.datasets.ucr import ucr_files
from dlworkflow.errors import DataError
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine
from dlworkflow.store.series import read_series, series_hash
from dlworkflow.store.ts_format import read_ts


def _project(tmp_path: Path, **config: object) -> Project:
    project = Project.init(tmp_path / "proj", task="sequence-classification")
    if config:
        project.update_config(config)
    return project


def _ts_slice(
    source: Path, target: Path, n: int, *, step: int = 1, edit: dict[int, str] | None = None
) -> Path:
    """The header and n cases (every `step`-th: the files are sorted by class) of a sktime
    .ts file; `edit`: case index -> the line that replaces it."""
    lines = source.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    cases = lines[start::step][:n]
    for index, text in (edit or {}).items():
        cases[index] = text
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines[:start] + cases) + "\n", encoding="utf-8")
    return target


def _reasons(project: Project) -> dict[str, str]:
    q = read_quarantine(project)
    return dict(zip(q["sample_id"], q["reason"]))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- .ts files ------------------------------------------------------------------------------


def test_gunpoint_train_file_reads_its_test_sibling_with_source_split(tmp_path):
    train, test = ucr_files("GunPoint")
    before = (_sha(train), _sha(test))
    project = _project(tmp_path)
    result = project.ingest(str(train), progress=False)
    assert (result.n_samples, result.n_quarantined) == (200, 0)
    assert result.class_counts == {"1": 100, "2": 100}
    m = read_manifest(project)
    assert m["source_split"].value_counts().to_dict() == {"test": 150, "train": 50}
    assert set(m["length"]) == {150} and set(m["channels"]) == {1}
    assert m["sample_id"].iloc[0] == "train/0000" and "test/0149" in set(m["sample_id"])
    # the stored series are the file's values, content-addressed
    reference = read_ts(test)
    row = m.set_index("sample_id").loc["test/0012"]
    stored = read_series(row["path"])
    np.testing.assert_array_equal(stored, reference.series[12])
    assert row["content_hash"] == series_hash(stored)
    assert row["label"] == reference.labels[12] and row["origin_path"] == str(test)
    assert Path(row["path"]).is_relative_to(project.paths.state / "series")
    assert (_sha(train), _sha(test)) == before  # originals only read


def test_a_folder_with_a_train_test_pair_and_a_single_file(tmp_path):
    train, test = ucr_files("BasicMotions")
    folder = tmp_path / "bm"
    _ts_slice(train, folder / "BasicMotions_TRAIN.ts", 6, step=6)
    _ts_slice(test, folder / "BasicMotions_TEST.ts", 4, step=9)
    project = _project(tmp_path)
    result = project.ingest(str(folder), progress=False)
    assert result.n_samples == 10
    m = read_manifest(project)
    assert m["source_split"].value_counts().to_dict() == {"train": 6, "test": 4}
    assert set(m["channels"]) == {6} and set(m["length"]) == {100}
    assert result.source_notes == [
        "10 series (6 train, 4 test) from BasicMotions_TRAIN.ts + BasicMotions_TEST.ts, "
        "6 channel(s), 100 steps"
    ]
    # one file without a sibling: no source division, plain ids
    single = _ts_slice(train, tmp_path / "one" / "motions.ts", 5, step=8)
    result = project.ingest(str(single), progress=False)
    m = read_manifest(project)
    assert result.n_samples == 5 and m["source_split"].isna().all()
    assert list(m["sample_id"]) == ["0000", "0001", "0002", "0003", "0004"]
    assert result.source_notes == ["5 series from motions.ts, 6 channel(s), 100 steps"]
    # the same file again: the same dataset version
    assert project.ingest(str(single), progress=False).changed is False


def test_variable_length_multivariate_japanese_vowels(tmp_path):
    train, _ = ucr_files("JapaneseVowels")
    source = _ts_slice(train, tmp_path / "jv.ts", 40, step=6)
    project = _project(tmp_path)
    assert project.ingest(str(source), progress=False).n_samples == 40
    m = read_manifest(project)
    expected = read_ts(source)
    assert list(m["length"]) == [int(n) for n in expected.lengths]
    assert len(set(m["length"])) > 3 and set(m["channels"]) == {12}


def test_ts_quarantines_a_bad_case_and_keeps_the_rest(tmp_path):
    train, _ = ucr_files("BasicMotions")
    lines = train.read_text().splitlines()
    first = lines[next(i for i, t in enumerate(lines) if t.strip() == "@data") + 1]
    dims = first.split(":")
    five = ":".join(dims[1:])  # 5 dimensions and the label
    word = first.replace(dims[0].split(",")[3], "abc", 1)
    source = _ts_slice(train, tmp_path / "bm.ts", 6, step=7, edit={1: five, 2: word})
    project = _project(tmp_path)
    result = project.ingest(str(source), progress=False)
    assert (result.n_samples, result.n_quarantined) == (4, 2)
    reasons = _reasons(project)
    assert "channel count: 5 channel(s), the data set has 6" in reasons["0001"]
    assert "@dimensions of bm.ts" in reasons["0001"]
    assert reasons["0002"].startswith("line ") and "not a number" in reasons["0002"]


def test_ts_missing_values_short_gaps_filled_long_runs_quarantined(tmp_path):
    train, _ = ucr_files("GunPoint")
    lines = train.read_text().splitlines()
    start = next(i for i, t in enumerate(lines) if t.strip() == "@data") + 1
    values = lines[start].split(":")[0].split(",")
    label = lines[start].split(":")[1]
    short = values.copy()
    short[10:12] = ["?", "?"]
    long = values.copy()
    long[20:25] = ["?"] * 5
    header = [t.replace("@missing false", "@missing true") for t in lines[:start]]
    cases = [
        ",".join(short) + ":" + label,
        ",".join(long) + ":" + label,
        *lines[start + 2 : start + 5],
    ]
    source = tmp_path / "gaps.ts"
    source.write_text("\n".join(header + cases) + "\n")
    project = _project(tmp_path, **{"data.max_gap": 3})
    result = project.ingest(str(source), progress=False)
    assert (result.n_samples, result.n_quarantined) == (4, 1)
    assert "a run of 5 missing steps in channel 0 (data.max_gap: 3)" in _reasons(project)["0001"]
    row = read_manifest(project).set_index("sample_id").loc["0000"]
    filled = read_series(row["path"])[0]
    original = np.array(values, dtype=np.float64)
    expected = np.interp([10, 11], [9, 12], original[[9, 12]])
    np.testing.assert_allclose(filled[10:12], expected, rtol=1e-6)


def test_too_short_and_too_long(tmp_path):
    train, _ = ucr_files("JapaneseVowels")
    source = _ts_slice(train, tmp_path / "jv.ts", 30, step=9)
    lengths = read_ts(source).lengths
    project = _project(tmp_path, **{"data.series.min_length": 12, "data.series.max_length": 20})
    result = project.ingest(str(source), progress=False)
    short, long = int((lengths < 12).sum()), int((lengths > 20).sum())
    assert short and long
    assert result.n_quarantined == short + long
    reasons = list(_reasons(project).values())
    assert sum("too short" in r for r in reasons) == short
    assert sum("too long" in r for r in reasons) == long
    assert result.quarantine_reasons.keys() >= {"too short", "too long"}


def test_malformed_and_oversized_ts_files_are_clear_errors(tmp_path, monkeypatch):
    project = _project(tmp_path)
    bad = tmp_path / "bad.ts"
    bad.write_text("@problemName x\n1,2,3:a\n")
    with pytest.raises(DataError, match="data line comes before @data"):
        project.ingest(str(bad), progress=False)
    unlabelled = tmp_path / "nolabel.ts"
    unlabelled.write_text("@problemName x\n@classLabel false\n@data\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="declares no class labels"):
        project.ingest(str(unlabelled), progress=False)
    from dlworkflow.data import series_source

    monkeypatch.setattr(series_source, "MAX_SOURCE_BYTES", 1000)
    with pytest.raises(DataError, match="too large to read"):
        project.ingest(str(ucr_files("GunPoint")[0]), progress=False)
    table = tmp_path / "long.csv"
    _long_frame(2)[0].to_csv(table, index=False)
    with pytest.raises(DataError, match="The table 'long.csv' is too large to read"):
        project.ingest(str(table), progress=False)


# --- tables --------------------------------------------------------------------------------


def _long_frame(n: int = 6) -> tuple[pd.DataFrame, list[np.ndarray], list[str]]:
    """n BasicMotions train series as a long table (rows shuffled), subject groups."""
    data = read_ts(ucr_files("BasicMotions")[0])
    picked = list(range(0, 40, 7))[:n]  # the file is sorted by class
    rows = []
    for i, index in enumerate(picked):
        series = data.series[index]
        for t in range(series.shape[1]):
            rows.append(
                {
                    "id": f"s{i}",
                    "time": t,
                    **{f"ch{c}": float(series[c, t]) for c in range(series.shape[0])},
                    "label": data.labels[index],
                    "subject": f"p{i % 3}",
                }
            )
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return frame, [data.series[i] for i in picked], [data.labels[i] for i in picked]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_long_table_sorted_by_time_per_id(tmp_path, suffix):
    frame, series, labels = _long_frame()
    path = tmp_path / f"long{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    project = _project(tmp_path, **{"data.group_column": "subject"})
    result = project.ingest(str(path), progress=False)
    assert (result.n_samples, result.n_quarantined) == (6, 0)
    m = read_manifest(project).set_index("sample_id")
    assert set(m["channels"]) == {6} and set(m["length"]) == {100}
    for i in range(6):
        stored = read_series(m.loc[f"s{i}", "path"])
        np.testing.assert_allclose(stored, series[i], rtol=1e-6)
        assert m.loc[f"s{i}", "label"] == labels[i] and m.loc[f"s{i}", "group"] == f"p{i % 3}"
    assert "channels ch0, ch1, ch2, ch3, ch4, ch5" in result.source_notes[0]


def test_long_table_quarantines_a_changing_label_and_a_non_numeric_value(tmp_path):
    frame, _, _ = _long_frame()
    frame["ch2"] = frame["ch2"].astype(object)
    frame.loc[(frame["id"] == "s1") & (frame["time"] == 5), "label"] = "Other"
    frame.loc[(frame["id"] == "s2") & (frame["time"] == 7), "ch2"] = "n/a?"
    frame.loc[(frame["id"] == "s3") & (frame["time"] == 9), "time"] = 8  # a time twice
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    project = _project(tmp_path)
    result = project.ingest(str(path), progress=False)
    assert (result.n_samples, result.n_quarantined) == (3, 3)
    reasons = _reasons(project)
    assert reasons["s1"].startswith("label changes within the series")
    assert reasons["s2"] == "non-numeric value 'n/a?' in channel column 'ch2'"
    assert "the same time appears twice" in reasons["s3"]


def test_wide_table_one_row_per_series_variable_length(tmp_path):
    data = read_ts(ucr_files("GunPoint")[0])
    wide = pd.DataFrame(np.stack(data.series[:8])[:, 0, :], columns=[f"t{k}" for k in range(150)])
    wide.iloc[2, 100:] = np.nan  # a shorter series: empty cells at the end
    wide.iloc[3, 1:] = np.nan  # one step: too short
    wide.insert(0, "name", [f"g{i}" for i in range(8)])
    wide["label"] = data.labels[:8]
    path = tmp_path / "wide.csv"
    wide.to_csv(path, index=False)
    project = _project(tmp_path, **{"data.id_column": "name"})
    result = project.ingest(str(path), progress=False)
    assert (result.n_samples, result.n_quarantined) == (7, 1)
    assert "too short: 1 step(s)" in _reasons(project)["g3"]
    m = read_manifest(project).set_index("sample_id")
    assert m.loc["g2", "length"] == 100 and m.loc["g0", "length"] == 150
    np.testing.assert_allclose(read_series(m.loc["g5", "path"])[0], data.series[5][0], rtol=1e-6)
    assert result.source_notes[0].startswith("wide table: 150 step columns")


def test_a_table_without_the_label_column_is_a_clear_error(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="lacks the column 'label'"):
        _project(tmp_path).ingest(str(path), progress=False)


# --- a folder of .npy arrays --------------------------------------------------------------


def test_npy_folder_with_labels_and_its_quarantine_reasons(tmp_path):
    data = read_ts(ucr_files("GunPoint")[0])
    folder = tmp_path / "arrays"
    (folder / "sub").mkdir(parents=True)
    rows = ["file,label,group"]
    for i in range(5):
        array = data.series[i][0] if i % 2 else data.series[i]  # 1-D and (1, T)
        np.save(folder / "sub" / f"s{i}.npy", array.astype(np.float64))
        rows.append(f"sub/s{i}.npy,{data.labels[i]},take{i % 2}")
    np.save(folder / "two.npy", np.stack([data.series[5][0], data.series[6][0]]))
    np.save(folder / "words.npy", np.array(["a", "b", "c"]))
    np.save(folder / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "outside.npy", data.series[7][0])
    np.save(folder / "unlisted.npy", data.series[8][0])
    rows += ["two.npy,1,", "words.npy,1,", "objects.npy,2,", "../outside.npy,2,", "gone.npy,1,"]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    project = _project(tmp_path, **{"data.group_column": "group"})
    result = project.ingest(str(folder), progress=False)
    assert (result.n_samples, result.n_quarantined, result.n_skipped) == (5, 5, 1)
    m = read_manifest(project).set_index("sample_id")
    assert set(m["channels"]) == {1} and set(m["length"]) == {150}
    assert m.loc["sub/s1.npy", "group"] == "take1"
    np.testing.assert_allclose(read_series(m.loc["sub/s3.npy", "path"])[0], data.series[3][0])
    reasons = _reasons(project)
    assert (
        "channel count: 2 channel(s), the data set has 1 (from the first usable series)"
        in (reasons["two.npy"])
    )
    assert "non-numeric values" in reasons["words.npy"]
    assert "pickled or object array: not loaded" in reasons["objects.npy"]
    assert "outside the folder" in reasons["../outside.npy"]
    assert "file not found" in reasons["gone.npy"]


def test_npy_folder_without_labels_is_a_clear_error(tmp_path):
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "a.npy", np.arange(10.0))
    with pytest.raises(DataError, match="has no labels file"):
        _project(tmp_path).ingest(str(folder), progress=False)


def test_cli_ingest_of_a_malformed_table_prints_no_traceback(tmp_path):
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    project = _project(tmp_path)
    out = CliRunner().invoke(app, ["ingest", str(path), "-p", str(project.root)])
    assert out.exit_code == 2
    assert "Cannot read the table t.parquet" in out.output and "Traceback" not in out.output


def test_long_table_with_date_times_and_an_unreadable_time(tmp_path):
    frame, series, _ = _long_frame(4)
    start = pd.Timestamp("2024-03-01T00:00:00Z")
    frame["time"] = [(start + pd.Timedelta(seconds=int(t) * 10)).isoformat() for t in frame["time"]]
    frame.loc[(frame["id"] == "s3") & frame["time"].str.endswith("00:00:50+00:00"), "time"] = "noon"
    path = tmp_path / "dated.csv"
    frame.to_csv(path, index=False)
    project = _project(tmp_path)
    result = project.ingest(str(path), progress=False)
    assert (result.n_samples, result.n_quarantined) == (3, 1)
    assert _reasons(project)["s3"] == "time column: 'noon' is neither a number nor a date"
    m = read_manifest(project).set_index("sample_id")
    np.testing.assert_allclose(read_series(m.loc["s1", "path"]), series[1], rtol=1e-6)


def test_infinite_and_float32_overflow_values_are_quarantined(tmp_path):
    data = read_ts(ucr_files("GunPoint")[0])
    folder = tmp_path / "arrays"
    folder.mkdir()
    rows = ["file,label"]
    for i in range(5):
        array = data.series[i][0].astype(np.float64)
        array[40] = {0: np.inf, 1: 1e39}.get(i, array[40])
        np.save(folder / f"s{i}.npy", array)
        rows.append(f"s{i}.npy,{data.labels[i]}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    project = _project(tmp_path)
    result = project.ingest(str(folder), progress=False)
    assert (result.n_samples, result.n_quarantined) == (3, 2)
    reasons = _reasons(project)
    assert reasons["s0.npy"] == "line 2: infinite value in the series"
    assert reasons["s1.npy"].startswith("line 3: float32 overflow: a value of 1e+39")


def test_a_long_table_is_privacy_scanned_and_deidentified(tmp_path):
    frame, series, _ = _long_frame(4)
    frame["note"] = "call 555-123-4567 or mail jane.doe@example.com"
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    project = _project(tmp_path, **{"privacy.scan": "always"})
    scanned = project.ingest(str(path), progress=False)
    assert scanned.privacy.startswith("scan-only") and "remain" in scanned.privacy
    result = project.ingest(str(path), deidentify=True, progress=False)
    assert (result.n_samples, result.n_quarantined) == (4, 0)
    assert result.privacy.startswith("deidentified") and "0 finding(s) remain" in result.privacy
    assert any(note.startswith("4 series from") for note in result.source_notes)
    m = read_manifest(project).set_index("sample_id")
    np.testing.assert_allclose(read_series(m.loc["s2", "path"]), series[2], rtol=1e-6)


def test_wide_table_one_bad_cell_quarantines_its_row_and_keeps_the_step(tmp_path):
    data = read_ts(ucr_files("GunPoint")[0])
    wide = pd.DataFrame(
        np.stack(data.series[:12])[:, 0, :6].astype(object), columns=[f"t{k}" for k in range(6)]
    )
    wide.iloc[4, 2] = "oops"  # one cell of 12 in t2 is text: t2 is still a step
    wide.iloc[6, 3] = np.nan  # a missing cell: a gap max_gap fills
    wide.insert(0, "note", [f"take {i}" for i in range(12)])  # text: metadata, named
    wide["label"] = data.labels[:12]
    path = tmp_path / "wide.csv"
    wide.to_csv(path, index=False)
    project = _project(tmp_path)
    result = project.ingest(str(path), progress=False)
    assert (result.n_samples, result.n_quarantined) == (11, 1)
    assert _reasons(project)["wide.csv:row 5"] == "row 5: non-numeric value 'oops' in column 't2'"
    assert result.source_notes[0].startswith("wide table: 6 step columns (t0...)")
    assert "wide.csv: not read as time steps (mostly text, or empty): 'note'" in result.source_notes
    m = read_manifest(project).set_index("sample_id")
    assert set(m["length"]) == {6}
    np.testing.assert_allclose(
        read_series(m.loc["wide.csv:row 1", "path"])[0], data.series[0][0, :6], rtol=1e-6
    )
    gap = read_series(m.loc["wide.csv:row 7", "path"])[0]
    expected = data.series[6][0, :6].astype(np.float64)
    expected[3] = (expected[2] + expected[4]) / 2  # the gap of one step, interpolated
    np.testing.assert_allclose(gap, expected, rtol=1e-5)


def test_long_table_channel_with_a_text_cell_stays_a_channel(tmp_path):
    frame, series, _ = _long_frame(4)
    frame["ch5"] = frame["ch5"].astype(object)
    # 30 of 400 cells (over 5%) of ch5 are text, all in s2: ch5 is still a channel
    frame.loc[(frame["id"] == "s2") & (frame["time"] < 30), "ch5"] = "oops"
    frame["comment"] = "ok"
    frame.loc[0, "comment"] = "1.5"  # mostly text: not a channel
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    project = _project(tmp_path)
    result = project.ingest(str(path), progress=False)
    assert (result.n_samples, result.n_quarantined) == (3, 1)
    assert _reasons(project)["s2"] == "non-numeric value 'oops' in channel column 'ch5'"
    assert "channels ch0, ch1, ch2, ch3, ch4, ch5;" in result.source_notes[0]
    assert (
        "long.csv: not read as channels (mostly text, or empty): 'subject', 'comment'"
        in result.source_notes
    )
    m = read_manifest(project).set_index("sample_id")
    assert set(m["channels"]) == {6}
    np.testing.assert_allclose(read_series(m.loc["s3", "path"]), series[3], rtol=1e-6)


@pytest.mark.parametrize("dated", [False, True])
def test_long_table_one_unreadable_time_quarantines_only_its_series(tmp_path, dated):
    import warnings

    frame, series, _ = _long_frame(4)
    if dated:
        start = pd.Timestamp("2024-03-01 00:00:00")
        frame["time"] = [
            (start + pd.Timedelta(seconds=int(t))).strftime("%d/%m/%Y %H:%M:%S")
            for t in frame["time"]
        ]
    frame["time"] = frame["time"].astype(object)
    frame.loc[
        (frame["id"] == "s1") & (frame.index == frame.index[frame["id"] == "s1"][5]), "time"
    ] = "x"
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    project = _project(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas format-inference warning
        result = project.ingest(str(path), progress=False)
    assert (result.n_samples, result.n_quarantined) == (3, 1)
    assert _reasons(project)["s1"] == "time column: 'x' is neither a number nor a date"
    m = read_manifest(project).set_index("sample_id")
    for i in (0, 2, 3):
        np.testing.assert_allclose(read_series(m.loc[f"s{i}", "path"]), series[i], rtol=1e-6)
