"""Read the UCR/UEA time-series `.ts` format (the sktime/aeon archive format), in place.

A file is a header of `@tag value` lines, then `@data` and one case per line. Lines that start
with `#` (or `%`, as in ARFF) are comments and blank lines are skipped. In a case, the
dimensions (channels) are separated by `:` and the values of one dimension by `,`; `?` or `NaN`
is a missing value; with `@classLabel true ...` (or `@targetLabel true`) the class label (or
numeric target) is the last `:`-separated field. Tags are case-insensitive (`@problemname` is
`@problemName`).

Supported tags: @problemName, @timeStamps (only `false`: timestamped values `(t,v)` are not
read), @missing, @univariate, @dimensions, @equalLength, @seriesLength, @classLabel
`true <labels...>` / `false`, @targetLabel, @data; any other tag is kept in `header.tags`.
Every case is a float32 array of shape (channels, length); lengths may differ between cases
(`@equalLength false`) but not between the channels of one case. The header is checked
against the data: a case whose dimension count, length, label or missing values contradict it
is a DataError naming the file and the 1-based line. Limits bound everything decoded.
The file is never modified.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import numpy as np

from dlworkflow.errors import DataError

MAX_BYTES = 512 * 1024 * 1024
MAX_CASES = 1_000_000
MAX_LENGTH = 1_000_000
MAX_CHANNELS = 10_000
MISSING = frozenset({"?", "nan"})
_BOOL_TAGS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_INT_TAGS = ("dimensions", "serieslength")
_FIX = "correct the line, or re-download the file from timeseriesclassification.com"


@dataclass(frozen=True)
class TsLimits:
    """Bounds on what one file may decode to."""

    max_bytes: int = MAX_BYTES
    max_cases: int = MAX_CASES
    max_length: int = MAX_LENGTH
    max_channels: int = MAX_CHANNELS


@dataclass(frozen=True)
class TsHeader:
    """The header of a `.ts` file: the parsed tags (None where the file does not say)."""

    problem_name: str | None
    missing: bool | None
    univariate: bool | None
    dimensions: int | None
    equal_length: bool | None
    series_length: int | None
    class_labels: tuple[str, ...] | None
    target_label: bool
    tags: dict[str, str]
    data_line: int
    tag_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TsCase:
    """One case: `series` (channels, length) float32; `label` or `target` when declared."""

    series: np.ndarray
    label: str | None
    target: float | None
    line: int


@dataclass(frozen=True)
class TsDataset:
    """All cases of one `.ts` file."""

    path: Path
    header: TsHeader
    series: list[np.ndarray]
    labels: list[str] | None
    targets: np.ndarray | None
    lines: list[int] = field(repr=False)

    @property
    def problem_name(self) -> str | None:
        return self.header.problem_name

    @property
    def class_labels(self) -> tuple[str, ...] | None:
        return self.header.class_labels

    @property
    def n_channels(self) -> int:
        return int(self.series[0].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.series], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.series)

    def as_array(self) -> np.ndarray:
        """The cases stacked (cases, channels, length); DataError when lengths differ."""
        lengths = self.lengths
        if lengths.min() != lengths.max():
            raise DataError(
                f"{self.path}: the series have different lengths and cannot be stacked.",
                expected="one length for every case",
                received=f"lengths {int(lengths.min())} to {int(lengths.max())}",
                fix="resample or pad the series first (evaluate.series_knn.resample)",
            )
        return np.stack(self.series)


def read_ts(path: str | Path, *, limits: TsLimits | None = None) -> TsDataset:
    """Every case of the `.ts` file at `path`, checked against its header."""
    path = Path(path)
    limits = limits or TsLimits()
    with _open(path, limits) as handle:
        lines = _lines(path, handle, limits)
        header = _read_header(path, lines)
        cases = list(_cases(path, header, lines, limits))
    labels = [c.label or "" for c in cases] if header.class_labels is not None else None
    targets = np.array([c.target for c in cases], dtype=np.float64) if header.target_label else None
    return TsDataset(
        path=path,
        header=header,
        series=[c.series for c in cases],
        labels=labels,
        targets=targets,
        lines=[c.line for c in cases],
    )


def read_ts_header(path: str | Path, *, limits: TsLimits | None = None) -> TsHeader:
    """Only the header (everything up to `@data`)."""
    path = Path(path)
    limits = limits or TsLimits()
    with _open(path, limits) as handle:
        return _read_header(path, _lines(path, handle, limits))


def ts_cases(path: str | Path, *, limits: TsLimits | None = None) -> Iterator[TsCase]:
    """The cases of `path` one at a time (the header is read and checked first)."""
    path = Path(path)
    limits = limits or TsLimits()
    with _open(path, limits) as handle:
        lines = _lines(path, handle, limits)
        header = _read_header(path, lines)
        yield from _cases(path, header, lines, limits)


def case_results(
    path: str | Path, *, limits: TsLimits | None = None
) -> Iterator[tuple[int, TsCase | None, str | None]]:
    """Each case line on its own: (line, case, None), or (line, None, why) for a case the
    header does not allow (a value that is not a number, an undeclared label, a limit). The
    header is read and checked first (its errors stay a DataError); dimension counts and
    lengths are not compared between cases: the caller decides about those (ingest
    quarantines one case, where read_ts refuses the file)."""
    path = Path(path)
    limits = limits or TsLimits()
    with _open(path, limits) as handle:
        lines = _lines(path, handle, limits)
        header = _read_header(path, lines)
        for number, text in lines:
            try:
                yield number, _case(path, number, text, header, limits), None
            except DataError as exc:
                what = exc.what.removeprefix(f"{path}, line {number}: ").rstrip(".")
                yield number, None, f"{what} (expected {exc.expected}; received {exc.received})"


def _open(path: Path, limits: TsLimits) -> IO[bytes]:
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise DataError(
                f"{path}: the .ts file is too large to read.",
                expected=f"at most {limits.max_bytes:,} bytes",
                received=f"{size:,} bytes",
                fix="raise max_bytes (TsLimits) if the file is trusted",
            )
        return path.open("rb")
    except OSError as exc:
        raise DataError(
            f"{path}: the .ts file cannot be opened.",
            expected="a readable UCR/UEA .ts file",
            received=f"{type(exc).__name__}: {exc.strerror or exc}",
            fix="check the path and its permissions",
        ) from exc


def _lines(path: Path, handle: IO[bytes], limits: TsLimits) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every line that is not blank or a comment."""
    read = 0
    for number, raw in enumerate(handle, start=1):
        read += len(raw)
        if read > limits.max_bytes:
            _fail(
                path,
                number,
                "the file grew past the size limit while being read",
                expected=f"at most {limits.max_bytes:,} bytes",
                received=f"{read:,}+ bytes",
            )
        try:
            text = raw.decode("utf-8").strip().lstrip("\ufeff")  # a byte-order mark too
        except UnicodeDecodeError as exc:
            _fail(
                path,
                number,
                "the line is not UTF-8 text",
                expected="UTF-8 text",
                received=f"byte {raw[exc.start]:#04x} at column {exc.start + 1}",
            )
        if text and not text.startswith(("#", "%")):
            yield number, text


def _fail(
    path: Path, line: int, what: str, *, expected: str, received: str, fix: str = _FIX
) -> NoReturn:
    raise DataError(f"{path}, line {line}: {what}.", expected=expected, received=received, fix=fix)


def _read_header(path: Path, lines: Iterator[tuple[int, str]]) -> TsHeader:
    tags: dict[str, str] = {}
    names: dict[str, str] = {}
    where: dict[str, int] = {}
    for number, text in lines:
        if not text.startswith("@"):
            _fail(
                path,
                number,
                "a data line comes before @data",
                expected="@tag lines, then @data",
                received=_short(text),
            )
        name, *rest = text[1:].split(maxsplit=1)  # the value after a space or a tab
        value = rest[0] if rest else ""
        key = name.lower()
        if key in names:
            _fail(
                path,
                number,
                f"the tag @{name} appears twice",
                expected="each tag once",
                received=f"@{names[key]} and @{name}",
            )
        if key == "data":
            if value.strip():
                _fail(
                    path,
                    number,
                    "@data has a value",
                    expected="@data alone on its line",
                    received=_short(text),
                )
            return _header(path, number, tags, names, where)
        names[key] = name
        where[key] = number
        tags[key] = value.strip()
    raise DataError(
        f"{path}: the .ts header has no @data line, so there are no cases.",
        expected="the header tags, then a line `@data`, then one case per line",
        received=f"{len(tags)} tag(s) and no @data",
        fix="check this is a UCR/UEA .ts file (not .arff or .tsv) and that it is complete",
    )


def _header(
    path: Path, data_line: int, tags: dict[str, str], names: dict[str, str], where: dict[str, int]
) -> TsHeader:
    """Parse the tag values (an error names the line of its tag)."""
    flags: dict[str, bool | None] = {}
    for key in _BOOL_TAGS:
        flags[key] = _bool(path, where.get(key, 0), names.get(key, key), tags.get(key))
    ints: dict[str, int | None] = {}
    for key in _INT_TAGS:
        ints[key] = _int(path, where.get(key, 0), names.get(key, key), tags.get(key))
    if flags["timestamps"]:
        _fail(
            path,
            where["timestamps"],
            "@timeStamps true is not supported",
            expected="@timeStamps false: values without timestamps",
            received="@timeStamps true",
            fix="write the file without timestamps (the values in time order)",
        )
    class_labels = _class_labels(path, where.get("classlabel", 0), tags.get("classlabel"))
    if class_labels is not None and flags["targetlabel"]:
        _fail(
            path,
            where["targetlabel"],
            "both @classLabel true and @targetLabel true",
            expected="one of them",
            received="both",
        )
    if flags["univariate"] and ints["dimensions"] not in (None, 1):
        _fail(
            path,
            where["dimensions"],
            "@univariate true contradicts @dimensions",
            expected="1 dimension",
            received=f"@dimensions {ints['dimensions']}",
        )
    return TsHeader(
        problem_name=tags.get("problemname") or None,
        missing=flags["missing"],
        univariate=flags["univariate"],
        dimensions=1 if flags["univariate"] else ints["dimensions"],
        equal_length=flags["equallength"],
        series_length=ints["serieslength"],
        class_labels=class_labels,
        target_label=bool(flags["targetlabel"]),
        tags=tags,
        data_line=data_line,
        tag_lines=where,
    )


def _bool(path: Path, line: int, name: str, value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        _fail(
            path,
            line,
            f"the header tag @{name} is not true or false",
            expected="true or false",
            received=_short(value),
        )
    return value.lower() == "true"


def _int(path: Path, line: int, name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        _fail(
            path,
            line,
            f"the header tag @{name} is not a positive integer",
            expected="an integer >= 1",
            received=_short(value),
        )
    return int(value)


def _class_labels(path: Path, line: int, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    flag, *labels = value.split()
    if flag.lower() == "false" and not labels:
        return None
    if flag.lower() != "true" or not labels:
        _fail(
            path,
            line,
            "@classLabel is not `true <labels...>` or `false`",
            expected="@classLabel true label1 label2 ... (or false)",
            received=f"@classLabel {_short(value)}",
        )
    if len(set(labels)) != len(labels):
        _fail(
            path,
            line,
            "@classLabel names a label twice",
            expected="distinct labels",
            received=" ".join(labels),
        )
    return tuple(labels)


def _cases(
    path: Path, header: TsHeader, lines: Iterator[tuple[int, str]], limits: TsLimits
) -> Iterator[TsCase]:
    channels = header.dimensions
    if channels is not None and channels > limits.max_channels:
        _fail(
            path,
            header.tag_lines.get("dimensions", header.data_line),
            "@dimensions is over the channel limit",
            expected=f"at most {limits.max_channels:,}",
            received=str(channels),
        )
    length = header.series_length if header.equal_length else None
    first = 0  # the line of the first case
    count = 0
    for number, text in lines:
        count += 1
        if count > limits.max_cases:
            _fail(
                path,
                number,
                "more cases than the limit",
                expected=f"at most {limits.max_cases:,} cases",
                received=f"case {count:,}",
            )
        case = _case(path, number, text, header, limits)
        n, m = case.series.shape
        first = first or number
        if channels is None:
            channels = n
        elif n != channels:
            source = "@dimensions" if header.dimensions else f"the first case, line {first}"
            _fail(
                path,
                number,
                "the case has the wrong number of dimensions",
                expected=f"{channels} (from {source}), separated by ':'",
                received=f"{n} dimension(s)",
            )
        if header.equal_length and length is None:
            length = m
        if header.equal_length and m != length:
            source = "@seriesLength" if header.series_length else "the first case"
            _fail(
                path,
                number,
                "the series length differs under @equalLength true",
                expected=f"{length} values per dimension (from {source})",
                received=f"{m} values",
            )
        yield case
    if count == 0:
        raise DataError(
            f"{path}: the .ts file has no cases after @data.",
            expected="one case per line after @data",
            received="none",
            fix="check the file is complete",
        )


def _case(path: Path, number: int, text: str, header: TsHeader, limits: TsLimits) -> TsCase:
    if text.startswith("@"):
        _fail(
            path,
            number,
            "a header tag comes after @data",
            expected="only cases after @data",
            received=_short(text),
        )
    label: str | None = None
    target: float | None = None
    if text.count(":") + 1 > limits.max_channels + 1:
        _fail(
            path,
            number,
            "more dimensions than the channel limit",
            expected=f"at most {limits.max_channels:,}",
            received=f"{text.count(':') + 1:,} ':'-separated fields",
        )
    fields = text.split(":")
    if header.class_labels is not None or header.target_label:
        if len(fields) < 2:
            what = "class label" if header.class_labels is not None else "target"
            _fail(
                path,
                number,
                f"the case has no {what}",
                expected=f"the values, then ':' and the {what}",
                received=_short(text),
            )
        last = fields.pop().strip()
        if header.class_labels is not None:
            if last not in header.class_labels:
                _fail(
                    path,
                    number,
                    f"the label {last!r} is not declared in @classLabel",
                    expected=f"one of {', '.join(header.class_labels)}",
                    received=repr(_short(last)),
                )
            label = last
        else:
            target = _target(path, number, last)
    if len(fields) > limits.max_channels:
        _fail(
            path,
            number,
            "more dimensions than the channel limit",
            expected=f"at most {limits.max_channels:,}",
            received=f"{len(fields):,}",
        )
    rows = [_values(path, number, d + 1, f, header, limits) for d, f in enumerate(fields)]
    lengths = {row.size for row in rows}
    if len(lengths) > 1:
        _fail(
            path,
            number,
            "the dimensions of the case have different lengths",
            expected="the same number of values in every dimension",
            received=", ".join(str(row.size) for row in rows) + " values",
        )
    return TsCase(series=np.stack(rows), label=label, target=target, line=number)


def _values(
    path: Path, number: int, dim: int, text: str, header: TsHeader, limits: TsLimits
) -> np.ndarray:
    count = text.count(",") + 1  # counted before any token is made
    if count > limits.max_length:
        _fail(
            path,
            number,
            f"dimension {dim} is longer than the length limit",
            expected=f"at most {limits.max_length:,} values",
            received=f"{count:,}",
        )
    tokens = text.split(",")
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        values = np.array([_value(path, number, dim, i, t) for i, t in enumerate(tokens)])
    missing = np.isnan(values)
    if np.isinf(values).any():
        _fail(
            path,
            number,
            f"dimension {dim} holds an infinite value",
            expected="finite numbers, ? or NaN",
            received="inf",
        )
    if header.missing is False and missing.any():
        _fail(
            path,
            number,
            f"dimension {dim} has a missing value under @missing false",
            expected="no ? or NaN (or @missing true in the header)",
            received=f"value {int(np.argmax(missing)) + 1} of {values.size} is missing",
        )
    return values.astype(np.float32)


def _value(path: Path, number: int, dim: int, index: int, token: str) -> float:
    token = token.strip()
    if token.lower() in MISSING:
        return float("nan")
    try:
        return float(token)
    except ValueError:
        hint = " (timestamped values are not supported)" if token.startswith("(") else ""
        what = "an empty value" if not token else "a value that is not a number"
        _fail(
            path,
            number,
            f"dimension {dim} has {what}{hint}",
            expected="numbers separated by ',', ? or NaN for missing",
            received=f"value {index + 1}: {_short(token)!r}",
        )


def _target(path: Path, number: int, token: str) -> float:
    try:
        value = float(token)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        _fail(
            path,
            number,
            "the target is not a finite number",
            expected="a number after the last ':' (@targetLabel true)",
            received=repr(_short(token)),
        )
    return value


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
