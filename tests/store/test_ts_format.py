"""The UCR/UEA .ts reader on the archive's own files (from the sktime wheel, data only) and on
malformed files: every error names the file and the 1-based line."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.datasets import ucr
from dlworkflow.errors import DataError, UnknownKeyError
from dlworkflow.store.ts_format import TsLimits, read_ts, read_ts_header, ts_cases

# (name, train cases, test cases, channels, shortest, longest, classes), counted from the files
ARCHIVE = [
    ("GunPoint", 50, 150, 1, 150, 150, 2),
    ("BasicMotions", 40, 40, 6, 100, 100, 4),
    ("JapaneseVowels", 270, 370, 12, 7, 29, 9),
]


@pytest.mark.parametrize(("name", "n_train", "n_test", "channels", "low", "high", "k"), ARCHIVE)
def test_archive_files_parse_to_their_documented_shape(
    name, n_train, n_test, channels, low, high, k
):
    train_path, test_path = ucr.ucr_files(name)
    before = hashlib.sha256(train_path.read_bytes()).hexdigest()
    train, test = ucr.load_ucr(name)
    assert hashlib.sha256(train_path.read_bytes()).hexdigest() == before  # read in place
    assert (len(train), len(test)) == (n_train, n_test)
    assert train.problem_name == test.problem_name == name
    lengths = np.concatenate([train.lengths, test.lengths])
    assert (int(lengths.min()), int(lengths.max())) == (low, high)
    for data in (train, test):
        assert data.n_channels == channels and data.class_labels is not None
        assert len(data.class_labels) == k and set(data.labels or []) == set(data.class_labels)
        assert all(s.dtype == np.float32 and s.shape[0] == channels for s in data.series)
        assert all(np.isfinite(s).all() for s in data.series)
    assert "sktime" not in sys.modules  # found, never imported


def test_values_and_labels_match_the_text_of_the_file():
    train_path, _ = ucr.ucr_files("GunPoint")
    data_lines = [
        line for line in train_path.read_text().splitlines() if line and line[0] not in "#@"
    ]
    first = read_ts(train_path)
    *values, label = data_lines[0].replace(":", ",").split(",")
    assert first.labels is not None and first.labels[0] == label
    np.testing.assert_array_equal(first.series[0][0], np.array(values, dtype=np.float32))
    assert first.lines[0] == train_path.read_text().splitlines().index(data_lines[0]) + 1
    stream = list(ts_cases(train_path))
    assert len(stream) == 50 and stream[7].label == first.labels[7]
    np.testing.assert_array_equal(stream[7].series, first.series[7])


def test_variable_length_multivariate_cases_keep_their_own_length():
    train, _ = ucr.load_ucr("JapaneseVowels")
    assert len(set(train.lengths.tolist())) > 5
    with pytest.raises(DataError, match="different lengths"):
        train.as_array()
    gunpoint, _ = ucr.load_ucr("GunPoint")
    assert gunpoint.as_array().shape == (50, 1, 150)


def _write(tmp_path: Path, header: str, *cases: str, name: str = "bad.ts") -> Path:
    path = tmp_path / name
    path.write_text(header.strip() + "\n" + "\n".join(cases) + "\n")
    return path


UNI = "@problemName toy\n@timeStamps false\n@univariate true\n@classLabel true a b\n@data"
MULTI = (
    "@problemName toy\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 2\n"
    "@equalLength true\n@seriesLength 3\n@classLabel true a b\n@data"
)


def test_a_small_file_with_comments_missing_values_and_lowercase_tags(tmp_path):
    path = _write(
        tmp_path,
        "\ufeff# a comment\n% an ARFF comment\n@problemname\tToy\n@timestamps false\n"
        "@missing true\n@univariate false\n@equallength false\n@classlabel true up down\n@data",
        "1,2,3:4,?,6:up",
        "",
        "# between cases",
        "0.5,NaN:1e3,-2:down",
    )
    data = read_ts(path)
    assert data.problem_name == "Toy" and data.labels == ["up", "down"]
    assert data.lines == [10, 13] and data.n_channels == 2
    assert data.series[0].shape == (2, 3) and np.isnan(data.series[0][1, 1])
    np.testing.assert_array_equal(data.series[1], np.array([[0.5, np.nan], [1000, -2]], "f4"))
    assert read_ts_header(path).equal_length is False


def test_regression_targets_and_unlabelled_files(tmp_path):
    head = "@problemName r\n@timeStamps false\n@univariate true\n@targetLabel true\n@data"
    data = read_ts(_write(tmp_path, head, "1,2,3:0.25", "4,5,6:-7"))
    assert data.labels is None and data.targets is not None
    np.testing.assert_allclose(data.targets, [0.25, -7.0])
    head = "@problemName u\n@timeStamps false\n@univariate true\n@classLabel false\n@data"
    plain = read_ts(_write(tmp_path, head, "1,2,3", "4,5", name="u.ts"))
    assert plain.labels is None and plain.lengths.tolist() == [3, 2]


BAD_CASES = [
    # (header, cases, line of the error, words of the message)
    (MULTI, ["1,2,3:4,5,6:a", "1,2,3:b"], 11, "wrong number of dimensions"),
    (MULTI, ["1,2,3:4,5,6:a", "1,2,3:4,5,6:7,8,9:a"], 11, "wrong number of dimensions"),
    (MULTI, ["1,2,x:4,5,6:a"], 10, "not a number"),
    (MULTI, ["1,2,3:4,5,6:c"], 10, "not declared in @classLabel"),
    (MULTI, ["1,2,3:4,5:a"], 10, "different lengths"),
    (MULTI, ["1,2,3,4:4,5,6,7:a"], 10, "series length differs"),
    (MULTI, ["1,2,?:4,5,6:a"], 10, "missing value under @missing false"),
    (MULTI, ["1,,3:4,5,6:a"], 10, "empty value"),
    (MULTI, ["1,2,inf:4,5,6:a"], 10, "infinite"),
    (MULTI, ["1,2,3:4,5,6:a", "@classLabel true a"], 11, "tag comes after @data"),
    (UNI, ["1,2,3"], 6, "has no class label"),
    (UNI, ["(0,1),(1,2):a"], 6, "timestamped values are not supported"),
    (UNI.replace("@data", "1,2,3:a\n@data"), [], 5, "data line comes before @data"),
    (UNI.replace("@timeStamps false", "@timeStamps true"), ["1:a"], 2, "@timeStamps true"),
    (UNI.replace("@univariate true", "@univariate maybe"), ["1:a"], 3, "not true or false"),
    (UNI.replace("@classLabel true a b", "@classLabel true a a"), ["1:a"], 4, "label twice"),
    (UNI.replace("@classLabel true a b", "@classLabel yes"), ["1:a"], 4, "`true <labels...>`"),
    (UNI + "\n1:a\n@data", [], 7, "tag comes after @data"),
    (MULTI.replace("@univariate false", "@univariate true"), ["1:a"], 5, "contradicts"),
    (UNI.replace("@data", "@UNIVARIATE true\n@data"), ["1:a"], 5, "appears twice"),
    (MULTI.replace("@dimensions 2", "@dimensions 2\n@classLabel false"), [], 9, "twice"),
    (MULTI.replace("@seriesLength 3", "@seriesLength -3"), ["1:a"], 7, "positive integer"),
]


@pytest.mark.parametrize(("header", "cases", "line", "words"), BAD_CASES)
def test_malformed_files_name_the_file_and_the_line(tmp_path, header, cases, line, words):
    path = _write(tmp_path, header, *cases)
    before = path.read_bytes()
    with pytest.raises(DataError) as caught:
        read_ts(path)
    assert f"{path}, line {line}:" in caught.value.what
    assert words in caught.value.render()
    assert path.read_bytes() == before


def test_a_header_without_data_or_cases_and_undecodable_bytes(tmp_path):
    with pytest.raises(DataError, match="no @data line") as caught:
        read_ts(_write(tmp_path, UNI.replace("@data", "")))
    assert "bad.ts" in caught.value.what
    with pytest.raises(DataError, match="no cases after @data"):
        read_ts(_write(tmp_path, UNI, name="empty.ts"))
    path = tmp_path / "latin1.ts"
    path.write_bytes(UNI.encode() + b"\n1,2:\xe9\n")
    with pytest.raises(DataError, match=r"line 6: the line is not UTF-8"):
        read_ts(path)
    with pytest.raises(DataError, match="cannot be opened"):
        read_ts(tmp_path / "absent.ts")


def test_limits_bound_what_is_decoded(tmp_path):
    path = _write(tmp_path, UNI, "1,2,3:a", "4,5,6:b", "7,8,9:a")
    with pytest.raises(DataError, match="too large"):
        read_ts(path, limits=TsLimits(max_bytes=20))
    with pytest.raises(DataError, match="line 8: more cases than the limit"):
        read_ts(path, limits=TsLimits(max_cases=2))
    with pytest.raises(DataError, match="line 6: dimension 1 is longer than the length limit"):
        read_ts(path, limits=TsLimits(max_length=2))
    small = TsLimits(max_channels=1)
    with pytest.raises(DataError, match="line 5: @dimensions is over the channel limit"):
        read_ts(_write(tmp_path, MULTI, "1,2,3:4,5,6:a", name="m.ts"), limits=small)
    with pytest.raises(DataError, match="line 6: more dimensions than the channel limit"):
        read_ts(_write(tmp_path, UNI.replace("true\n@c", "false\n@c"), "1:2:a"), limits=small)


def test_unknown_problem_and_missing_package(monkeypatch):
    with pytest.raises(UnknownKeyError, match="'GunPoint'"):
        ucr.load_ucr("gunpoint")
    monkeypatch.setattr(ucr, "find_file", lambda package, relative: None)
    with pytest.raises(DataError, match="sktime") as caught:
        ucr.load_ucr("BasicMotions")
    assert "pip install --no-deps --target" in (caught.value.fix or "")
