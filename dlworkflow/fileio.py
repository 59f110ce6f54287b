"""Atomic file writes and content hashing: every step writes its outputs through here."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK = 1 << 20


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success fsync it and `os.replace` it.

    Readers never see a half-written file: either the old one or the new one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Atomic write through a library function that takes a file path (parquet, safetensors)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_stream(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        return sha256_stream(handle)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-able object, independent of key order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(blob.encode("utf-8"))


@contextmanager
def run_lock(
    path: str | os.PathLike[str], *, what: str, extra: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Hold an exclusive, non-blocking lock on `path` for the block; BusyError (exit code 75)
    when another process holds it, naming the holder's command, pid and start time. The
    kernel drops the lock when the holder dies, so a killed run never leaves a stale lock
    behind. The file records the holder (JSON: command, pid, host, started, and `extra`; not
    the command line, which may carry a URL with credentials); the block receives that
    record."""
    import fcntl

    from dlworkflow.errors import BusyError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = describe_holder(handle.read())
            raise BusyError(
                f"`{what}` cannot run now: {holder} is running on this project.",
                expected="one run at a time",
                received=f"the lock {path} is held by {holder}",
                fix="wait for it to finish (a scheduler retries later); the lock "
                "goes away by itself when that process ends",
            ) from None
        record = holder_record(what, extra)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record, sort_keys=True))
        handle.flush()
        yield record
    finally:
        handle.close()


def holder_record(what: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a lock file says about its holder."""
    import socket
    from datetime import UTC, datetime

    return {
        "command": what,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def read_holder(text: str) -> dict[str, Any] | None:
    """A lock file's holder record (None: empty, or the old "pid N" form)."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def describe_holder(text: str) -> str:
    """ "`dlw train` (pid 123, started 2026-01-02T03:04:05+00:00)" for a lock file's text."""
    record = read_holder(text)
    if record is None:
        old = text.strip()
        return f"another process ({old})" if old else "another process"
    where = f", on {record['host']}" if record.get("host") else ""
    return (
        f"`{record.get('command') or 'a dlw command'}` (pid {record.get('pid')}, "
        f"started {record.get('started')}{where})"
    )
