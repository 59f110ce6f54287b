"""Workspace: what a step receives. The project's root, paths, validated config, ledger and
step runner (`with workspace.step("train", inputs=...) as run:`), and nothing of the other
steps: step packages import this module, never dlworkflow.project (the facade that has one
method per command; .importlinter checks it, TYPE_CHECKING imports included)."""

from __future__ import annotations

import io
import os
import secrets
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlworkflow.config import CONFIG_FILE, ProjectConfig, validate_config
from dlworkflow.errors import ConfigError
from dlworkflow.fileio import atomic_write_text, read_holder, run_lock
from dlworkflow.ledger import Ledger, pid_alive
from dlworkflow.steps import WRITERS, step_info

PROJECT_LOCK = "project.lock"
#: Set while this process holds a project's write lock: the lock file's token, so that
#: processes it starts (the ranks of `dlw train --devices N`) share its lock.
LOCK_ENV = "DLW_PROJECT_LOCK_TOKEN"
_held: dict[str, int] = {}  # lock file -> depth, for the locks this process holds
_held_guard = threading.Lock()


class Terminated(KeyboardInterrupt):
    """SIGTERM during a step, raised like Ctrl-C's KeyboardInterrupt: the step is recorded
    as failed in the ledger, then the process ends."""


@dataclass(frozen=True)
class Paths:
    """Where every artifact of a project lives (see DESIGN.md, "A user's project on disk")."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def state(self) -> Path:
        return self.root / ".dlw"

    @property
    def ledger(self) -> Path:
        return self.state / "ledger.sqlite"

    @property
    def manifest(self) -> Path:
        return self.state / "manifest.parquet"

    @property
    def quarantine(self) -> Path:
        return self.state / "quarantine.parquet"

    @property
    def raw(self) -> Path:
        """Copies of built-in datasets, materialised as files (user data is never copied)."""
        return self.state / "raw"

    @property
    def split_dir(self) -> Path:
        return self.state / "split"

    @property
    def cache(self) -> Path:
        return self.state / "cache"

    @property
    def train_dir(self) -> Path:
        return self.state / "train"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def project_lock(self) -> Path:
        """The write lock every writing step holds (Workspace.write_lock)."""
        return self.state / "locks" / PROJECT_LOCK

    @property
    def models(self) -> Path:
        """Exported versions v<N>/ and champion.json (dlworkflow/runtime/versions.py)."""
        return self.root / "models"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlruns.db"

    @property
    def mlflow_db_uri(self) -> str:
        """The tracking URI of mlflow_db (the store when tracking.uri is null)."""
        return f"sqlite:///{self.mlflow_db}"

    @property
    def mlartifacts(self) -> Path:
        return self.root / "mlartifacts"


@dataclass
class StepRun:
    """What a running step hands back to the ledger when it ends."""

    run_id: int
    step: str
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


class Workspace:
    """A dlworkflow project on disk, as the steps see it."""

    def __init__(self, root: str | Path) -> None:
        from dlworkflow.model_refs import add_search_dir

        self.root = Path(root).resolve()
        self.paths = Paths(self.root)
        self.ledger = Ledger(self.paths.ledger)
        add_search_dir(self.root)  # model.name "nets:factory" finds nets.py here
        self._config: ProjectConfig | None = None
        self._config_stamp: tuple[int, ...] | None = None
        self.active_step: StepRun | None = None

    # ---- config ---------------------------------------------------------------------------
    @property
    def config(self) -> ProjectConfig:
        """The validated config, re-read whenever dlworkflow.yaml changed on disk."""
        try:
            stat = self.paths.config.stat()
            stamp: tuple[int, ...] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if self._config is None or stamp != self._config_stamp:
            self._config = validate_config(self._raw_config(), source=str(self.paths.config))
            self._config_stamp = stamp
        return self._config

    def _raw_config(self) -> Any:
        try:
            return round_trip_yaml().load(self.paths.config.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"Cannot read {self.paths.config}.",
                received=str(exc),
                fix="check the file exists and is readable",
            ) from exc
        except Exception as exc:  # ruamel's parser errors have no common public base
            raise ConfigError(
                f"{self.paths.config} is not valid YAML.",
                received=str(exc).splitlines()[0],
                fix="fix the YAML syntax at the line named above",
            ) from exc

    def with_overrides(self, updates: dict[str, Any]) -> Workspace:
        """A view of this project whose `config` has the dotted keys in `updates` replaced
        (validated; nothing is written): what one tuning trial trains with. Same root, paths
        and ledger."""
        view = _ConfigView(self.root)
        view._config = self.config.with_overrides(updates)
        return view

    def update_config(self, updates: dict[str, Any]) -> ProjectConfig:
        """Set dotted keys (``problem.target``) in dlworkflow.yaml, keeping its comments.

        The whole result is validated before anything is written.
        """
        raw = self._raw_config()
        for dotted, value in updates.items():
            node = raw
            *parents, last = dotted.split(".")
            for part in parents:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            node[last] = value
        config = validate_config(raw, source=str(self.paths.config))
        buffer = io.StringIO()
        round_trip_yaml().dump(raw, buffer)
        from dlworkflow.config_schema import keep_schema_line

        before = self.paths.config.read_text(encoding="utf-8")
        atomic_write_text(self.paths.config, keep_schema_line(before, buffer.getvalue()))
        self._config = None  # re-read with its new stamp on next access
        return config

    # ---- step runner ----------------------------------------------------------------------
    @contextmanager
    def step(
        self,
        name: str,
        *,
        inputs: Mapping[str, str | None] | None = None,
        overrides: dict[str, Any] | None = None,
        settings_from: Mapping[str, str] | None = None,
    ) -> Iterator[StepRun]:
        """Run one step: record its start, its outputs and its end (or failure) in the ledger.

        `overrides` (dotted keys) are settings this run uses instead of the file's; they enter
        the recorded config hash, so status shows the step stale until the file agrees.
        `settings_from` ({"train.epochs": "retrain.epochs"}): keys this run reads from other
        keys of the file; recorded in its inputs, so status compares the run with the file
        read the same way (the step is stale only when those keys change).
        """
        from dlworkflow.config import SETTING_INPUT

        info = step_info(name)
        config = self.config.with_settings_from(settings_from) if settings_from else self.config
        config = config.with_overrides(overrides) if overrides else config
        recorded = {
            **(inputs or {}),
            **{SETTING_INPUT + k: v for k, v in (settings_from or {}).items()},
        }
        lock = self.write_lock(f"dlw {name}") if name in WRITERS else nullcontext()
        with lock, _sigterm_raises():
            run_id = self.ledger.start(
                name,
                config_hash=config.section_hash(*info.config_sections),
                inputs=recorded,
                seed=self.config.seed,
                root=self.root,
            )
            run = StepRun(run_id=run_id, step=name)
            self.active_step = run
            try:
                yield run
            except BaseException as exc:
                self.ledger.finish(
                    run_id,
                    status="failed",
                    outputs=run.outputs,
                    summary=run.summary,
                    message=f"{type(exc).__name__}: {exc}",
                )
                raise
            else:
                self.ledger.finish(run_id, status="done", outputs=run.outputs, summary=run.summary)
            finally:
                self.active_step = None

    @contextmanager
    def write_lock(self, command: str) -> Iterator[None]:
        """Hold the project's write lock (.dlw/locks/project.lock) for the block: one writer
        at a time; a second gets BusyError (exit code 75) naming the holder's command, pid
        and start time. Re-entrant within a process (`dlw retrain` runs train, test and
        export inside; a tuning trial's view shares its project's lock) and shared with the
        processes it starts (LOCK_ENV). Readers (status, serve, predict) never take it."""
        path = str(self.paths.project_lock)
        with _held_guard:
            if path in _held:
                _held[path] += 1
                nested = True
            else:
                nested = False
        if nested:
            try:
                yield
            finally:
                with _held_guard:
                    _held[path] -= 1
            return
        if _inherited(self.paths.project_lock):
            yield
            return
        token = secrets.token_hex(16)
        with run_lock(path, what=command, extra={"token": token}):
            before = os.environ.get(LOCK_ENV)
            with _held_guard:
                _held[path] = 1
            os.environ[LOCK_ENV] = token
            try:
                yield
            finally:
                with _held_guard:
                    _held.pop(path, None)
                if before is None:
                    os.environ.pop(LOCK_ENV, None)
                else:
                    os.environ[LOCK_ENV] = before

    def run_step(self, name: str, *args: Any, progress: bool | None = None, **options: Any) -> Any:
        """Run ledger step `name` through the step table (dlworkflow/steps.py RUNNERS) on this
        workspace; `progress` goes to the steps that show it."""
        import importlib

        from dlworkflow.steps import RUNNERS

        runner = RUNNERS[name]
        module, _, function = runner.target.partition(":")
        if progress is not None and runner.progress:
            options["progress"] = progress
        # a writing command holds the lock from its first check to its last write
        with self.write_lock(f"dlw {name}") if name in WRITERS else nullcontext():
            return getattr(importlib.import_module(module), function)(self, *args, **options)

    def upstream_hash(self, step: str) -> str | None:
        record = self.ledger.latest(step)
        return record.output_hash if record else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"


def _inherited(lock: Path) -> bool:
    """This process was started by the holder of `lock` while it held it (the token in the
    environment is the one in the lock file, and that holder is alive)."""
    token = os.environ.get(LOCK_ENV)
    if not token:
        return False
    try:
        record = read_holder(lock.read_text(encoding="utf-8"))
    except OSError:
        return False
    if not record or record.get("token") != token:
        return False
    pid = record.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and pid_alive(pid)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated (a KeyboardInterrupt, as Ctrl-C does) for the block, so the
    step is recorded as failed before the process ends; the previous handler is restored
    after. Only the main thread can set handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: Any) -> None:
        raise Terminated(f"stopped by signal {signal.Signals(signum).name}")

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except (ValueError, OSError):  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def round_trip_yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


class _ConfigView(Workspace):
    """Workspace.with_overrides: the config is fixed in memory."""

    @property
    def config(self) -> ProjectConfig:
        assert self._config is not None
        return self._config

    def update_config(self, updates: dict[str, Any]) -> ProjectConfig:
        raise ConfigError(
            "A tuning trial's view of the project cannot change dlworkflow.yaml.",
            fix="update the project itself, not the trial's view",
        )
