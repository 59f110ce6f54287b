"""The ledger: one SQLite record per step execution, and every read of the sealed test set."""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from dlworkflow.errors import LedgerError
from dlworkflow.vcs import GIT as GIT  # every git call: the fsmonitor hook stays off

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    config_hash TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '{}',
    env TEXT NOT NULL,
    seed INTEGER,
    git_commit TEXT,
    message TEXT,
    pid INTEGER,
    host TEXT
);
CREATE TABLE IF NOT EXISTS test_reads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    run_id INTEGER,
    step TEXT NOT NULL,
    purpose TEXT NOT NULL,
    n_samples INTEGER NOT NULL,
    seal_hash TEXT NOT NULL
);
"""

#: Columns added after the first release: (name, SQL type), added to older ledgers on open.
_ADDED_COLUMNS = (("pid", "INTEGER"), ("host", "TEXT"))

_PACKAGES = ("dlworkflow", "torch", "numpy", "pandas", "pyarrow", "pydantic", "mlflow", "Pillow")


@dataclass(frozen=True)
class RunRecord:
    id: int
    step: str
    status: str
    started: str
    ended: str | None
    config_hash: str
    inputs: dict[str, str | None]  # upstream step -> its output hash (None: never ran)
    outputs: dict[str, Any]
    summary: dict[str, Any]
    env: dict[str, Any]
    seed: int | None
    git_commit: str | None
    message: str | None = None
    pid: int | None = None  # the process that ran it (None: a ledger from before pids)
    host: str | None = None  # the machine it ran on (socket.gethostname())

    @property
    def output_hash(self) -> str | None:
        return self.outputs.get("hash")

    def process_gone(self) -> bool:
        """A 'running' run whose process is gone on this machine: it was killed or the
        machine went down before the ledger heard of its end (an interrupted run). Runs of
        other machines, and of ledgers from before pids, are never judged gone."""
        if self.status != "running" or self.pid is None or self.host != hostname():
            return False
        return not pid_alive(self.pid)


@dataclass(frozen=True)
class TestRead:
    id: int
    at: str
    run_id: int | None
    step: str
    purpose: str
    n_samples: int
    seal_hash: str


@dataclass
class Ledger:
    path: Path
    _ready: bool = field(default=False, repr=False)

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise LedgerError(
                f"Cannot open the ledger at {self.path}.",
                received=str(exc),
                fix="check that the project folder is writable",
            ) from exc
        conn.row_factory = sqlite3.Row
        if not self._ready:
            conn.executescript(_SCHEMA)
            _migrate(conn)
            self._ready = True
        return conn

    def start(
        self,
        step: str,
        *,
        config_hash: str,
        inputs: Mapping[str, str | None],
        seed: int | None,
        root: Path | None = None,
    ) -> int:
        env = environment()
        with closing(self._connect()) as conn:
            cur = conn.execute(
                "INSERT INTO runs (step, status, started, config_hash, inputs, env, seed,"
                " git_commit, pid, host) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    step,
                    _now(),
                    config_hash,
                    json.dumps(inputs),
                    json.dumps(env),
                    seed,
                    git_commit(root) if root else None,
                    os.getpid(),
                    hostname(),
                ),
            )
            assert cur.lastrowid is not None  # set by every INSERT
            return int(cur.lastrowid)

    def finish(
        self,
        run_id: int,
        *,
        status: str,
        outputs: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        with closing(self._connect()) as conn:
            conn.execute(
                "UPDATE runs SET status=?, ended=?, outputs=?, summary=?, message=? WHERE id=?",
                (
                    status,
                    _now(),
                    json.dumps(outputs or {}, default=str),
                    json.dumps(summary or {}, default=str),
                    message,
                    run_id,
                ),
            )

    def latest(self, step: str, *, status: str | None = "done") -> RunRecord | None:
        query = "SELECT * FROM runs WHERE step=?"
        args: tuple[Any, ...] = (step,)
        if status is not None:
            query += " AND status=?"
            args += (status,)
        with closing(self._connect()) as conn:
            row = conn.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return _record(row) if row else None

    def history(self, step: str | None = None) -> list[RunRecord]:
        query = "SELECT * FROM runs"
        args: tuple[str, ...] = ()
        if step:
            query, args = query + " WHERE step=?", (step,)
        with closing(self._connect()) as conn:
            return [_record(row) for row in conn.execute(query + " ORDER BY id", args)]

    def log_test_read(
        self, *, run_id: int | None, step: str, purpose: str, n_samples: int, seal_hash: str
    ) -> int:
        with closing(self._connect()) as conn:
            cur = conn.execute(
                "INSERT INTO test_reads (at, run_id, step, purpose, n_samples, seal_hash)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_now(), run_id, step, purpose, n_samples, seal_hash),
            )
            assert cur.lastrowid is not None  # set by every INSERT
            return int(cur.lastrowid)

    def test_reads(self, seal_hash: str | None = None) -> list[TestRead]:
        query = "SELECT * FROM test_reads"
        args: tuple[str, ...] = ()
        if seal_hash:
            query, args = query + " WHERE seal_hash=?", (seal_hash,)
        with closing(self._connect()) as conn:
            return [TestRead(**dict(row)) for row in conn.execute(query + " ORDER BY id", args)]


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns a ledger written by an older dlworkflow lacks (ALTER TABLE ADD COLUMN:
    existing rows get NULL). Two processes may race here: a duplicate column is fine."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, kind in _ADDED_COLUMNS:
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise


def hostname() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 checks, sends none)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        return True
    except OSError:
        return False
    return True


def _record(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    for key in ("inputs", "outputs", "summary", "env"):
        data[key] = json.loads(data[key] or "{}")
    return RunRecord(**data)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def environment() -> dict[str, Any]:
    """Versions of the packages that decide a result, and the platform."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
    }


def git_commit(root: Path) -> str | None:
    """The commit of the git repository holding the project, with '-dirty' if it has changes."""
    try:
        head = subprocess.run(
            [*GIT, "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            [*GIT, "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("-dirty" if dirty.stdout.strip() else "")
