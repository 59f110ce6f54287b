"""The one JSON form of `dlw ... --json`: every result becomes strict JSON (numpy scalars and
arrays, Paths, datetimes, dataclasses and objects with `to_json()`; NaN and infinities become
null), printed as exactly one document on stdout while anything else the command would print
(progress, library logs, child processes) goes to stderr.

numpy is never imported here: its values are recognised by their module, so `dlw --help`
stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: dict (string keys), list, str, int, float, bool, None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if type(value).__module__.startswith("pandas"):
        return _pandas(value)
    to_json = getattr(value, "to_json", None)
    if callable(to_json) and not isinstance(value, type):
        return jsonable(to_json())
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return jsonable(value.tolist())  # numpy scalar or array
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return _scalar(value)


def _pandas(value: Any) -> Any:
    """A DataFrame as a list of row objects, a Series or Index as a list, a Timestamp as ISO
    text, NaT as null."""
    if hasattr(value, "columns"):
        return jsonable(value.to_dict(orient="records"))
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if hasattr(value, "isoformat") and value == value:  # NaT != NaT
        return value.isoformat()
    return None if value != value else str(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def dumps(value: Any) -> str:
    """One strict JSON document (no NaN), indented, UTF-8 kept as is."""
    return json.dumps(jsonable(value), indent=2, allow_nan=False, ensure_ascii=False)


def emit(value: Any) -> None:
    """Print `value` as the one JSON document of the command on stdout."""
    sys.stdout.write(dumps(value) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout in the block to stderr: Python prints and rich
    output, and, when stdout is a real file descriptor, what native code and child processes
    write to it. The JSON document printed after the block is then alone on stdout."""
    sys.stdout.flush()
    out_fd = _fileno(sys.stdout)
    err_fd = _fileno(sys.stderr)
    saved = os.dup(out_fd) if out_fd is not None and err_fd is not None else None
    if saved is not None:
        os.dup2(err_fd, out_fd)  # type: ignore[arg-type]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, out_fd)  # type: ignore[arg-type]
            os.close(saved)


def _fileno(stream: Any) -> int | None:
    """The stream's descriptor; None for in-memory streams (a test runner's capture)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
