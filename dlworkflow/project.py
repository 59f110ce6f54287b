"""Project: the config, the paths, the ledger and the step runner; the Python API of `dlw`."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.config import CONFIG_FILE, ProjectConfig, validate_config
from dlworkflow.errors import ConfigError, DlwError, ProjectNotFoundError
from dlworkflow.fileio import atomic_write_text
from dlworkflow.ledger import Ledger
from dlworkflow.steps import step_info

if TYPE_CHECKING:
    from dlworkflow.status import StatusReport



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
    def models(self) -> Path:
        """Exported versions v<N>/ and champion.json (dlworkflow/deploy/runtime/versions.py)."""
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


class Project:
    """A dlworkflow project on disk. Every CLI command is one method here."""

    def __init__(self, root: str | Path) -> None:
        from dlworkflow.model_refs import add_search_dir

        self.root = Path(root).resolve()
        self.paths = Paths(self.root)
        self.ledger = Ledger(self.paths.ledger)
        add_search_dir(self.root)  # model.name "nets:factory" finds nets.py here
        self._config: ProjectConfig | None = None
        self._config_stamp: tuple[int, ...] | None = None
        self.active_step: StepRun | None = None

    # ---- creation and loading -------------------------------------------------------------
    @classmethod
    def init(cls, root: str | Path, *, task: str = "image-classification",
             name: str | None = None, model: str | None = None, force: bool = False) -> Project:
        from dlworkflow.config_schema import with_schema_line, write_schema
        from dlworkflow.problem import render_template
        from dlworkflow.tasks import TASKS, task_names

        if task not in TASKS:
            raise ConfigError(
                f"Unknown task {task!r}.", expected=f"one of {', '.join(task_names())}",
                received=repr(task), fix=f"pass --task with one of {', '.join(task_names())}",
            )
        project = cls(root)
        if project.paths.config.exists() and not force:
            raise DlwError(
                f"{project.paths.config} already exists.",
                fix="edit it, or pass --force to overwrite it with a fresh template",
            )
        name = name or _slug(project.root.name)
        text = render_template(name=name, task=task, model=model or TASKS.get(task).default_model)
        validate_config(_yaml().load(text), source=CONFIG_FILE)
        project.root.mkdir(parents=True, exist_ok=True)
        write_schema(project.root)  # the editor's schema, named by the first line
        atomic_write_text(project.paths.config, with_schema_line(text))
        project.paths.state.mkdir(exist_ok=True)
        atomic_write_text(project.paths.state / ".gitignore", "*\n")
        return project

    @classmethod
    def load(cls, root: str | Path = ".") -> Project:
        project = cls(root)
        if not project.paths.config.is_file():
            raise ProjectNotFoundError(
                f"No dlworkflow project in {project.root}.",
                expected=f"a {CONFIG_FILE} file in that folder",
                received="none",
                fix="run `dlw init DIR` (or `dlw demo`) first, or pass -p/--project DIR",
            )
        _ = project.config  # validate now, at the boundary
        from dlworkflow.config_schema import refresh_schema

        refresh_schema(project.root, project.paths.config)  # the editor's schema, if outdated
        return project

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
            return _yaml().load(self.paths.config.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"Cannot read {self.paths.config}.", received=str(exc),
                              fix="check the file exists and is readable") from exc
        except Exception as exc:  # ruamel's parser errors have no common public base
            raise ConfigError(
                f"{self.paths.config} is not valid YAML.", received=str(exc).splitlines()[0],
                fix="fix the YAML syntax at the line named above",
            ) from exc

    def with_overrides(self, updates: dict[str, Any]) -> Project:
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
        _yaml().dump(raw, buffer)
        from dlworkflow.config_schema import keep_schema_line

        before = self.paths.config.read_text(encoding="utf-8")
        atomic_write_text(self.paths.config, keep_schema_line(before, buffer.getvalue()))
        self._config = None  # re-read with its new stamp on next access
        return config

    # ---- step runner ----------------------------------------------------------------------
    @contextmanager
    def step(self, name: str, *, inputs: Mapping[str, str | None] | None = None,
             overrides: dict[str, Any] | None = None,
             settings_from: Mapping[str, str] | None = None) -> Iterator[StepRun]:
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
        recorded = {**(inputs or {}),
                    **{SETTING_INPUT + k: v for k, v in (settings_from or {}).items()}}
        run_id = self.ledger.start(
            name, config_hash=config.section_hash(*info.config_sections),
            inputs=recorded, seed=self.config.seed, root=self.root,
        )
        run = StepRun(run_id=run_id, step=name)
        self.active_step = run
        try:
            yield run
        except BaseException as exc:
            self.ledger.finish(run_id, status="failed", outputs=run.outputs,
                               summary=run.summary, message=f"{type(exc).__name__}: {exc}")
            raise
        else:
            self.ledger.finish(run_id, status="done", outputs=run.outputs, summary=run.summary)
        finally:
            self.active_step = None

    def upstream_hash(self, step: str) -> str | None:
        record = self.ledger.latest(step)
        return record.output_hash if record else None

    # ---- the workflow, one method per command ---------------------------------------------
    def status(self) -> StatusReport:
        from dlworkflow.status import project_status

        return project_status(self)

    def define(self, **fields: Any) -> Any:
        from dlworkflow.problem import define

        return define(self, **fields)

    def ingest(self, source: str | None = None, **options: Any) -> Any:
        from dlworkflow.data import ingest

        return ingest(self, source, **options)

    def explore(self, **options: Any) -> Any:
        from dlworkflow.explore import explore

        return explore(self, **options)

    def split(self) -> Any:
        from dlworkflow.prepare import split

        return split(self)

    def train(self, **options: Any) -> Any:
        from dlworkflow.train import train

        return train(self, **options)

    def tune(self, *, trials: int | None = None, timeout: float | None = None,
             workers: int | None = None, backend: str = "optuna", address: str | None = None,
             apply: bool = False, progress: bool = True) -> Any:
        """Step 6: hyperparameter search over `tune.space` on the validation split (Optuna
        TPE with pruning, resumable in .dlw/tune/study.db; Ray Tune with backend="ray");
        `apply` writes the best parameters into dlworkflow.yaml. Never reads the test set."""
        from dlworkflow.report.tune_page import write_tune_report
        from dlworkflow.train.tune import tune

        return tune(self, trials=trials, timeout=timeout, workers=workers, backend=backend,
                    address=address, apply=apply, progress=progress,
                    write_report=write_tune_report)

    def lr_find(self, **options: Any) -> Any:
        """Learning-rate range test on the train split (reports/lr_find.png)."""
        from dlworkflow.train.lr_find import lr_find

        return lr_find(self, **options)

    def augment_preview(self, *, n: int = 16, seed: int = 0) -> Path:
        """A grid of train samples and augmented versions (reports/augment_preview.png)."""
        from dlworkflow.results import FigurePath
        from dlworkflow.train.augment import augment_preview

        return FigurePath(augment_preview(self, n=n, seed=seed))  # shows the grid in a notebook

    def evaluate(self, split: str = "val") -> Any:
        """The full evaluation on validation (or train), any time; never reads the test set.
        Figures and metrics.json go to reports/evaluate/<split>/."""
        from dlworkflow.evaluate import evaluate

        return evaluate(self, split)

    def test(self) -> Any:
        from dlworkflow.evaluate import test

        return test(self)

    def export(self, *, force: bool = False, reason: str | None = None) -> Any:
        """The trained model -> models/v<N>/ (ONNX, safetensors, metadata.json), parity
        checked on validation; refused unless `dlw test` said PASS (or force with a reason)."""
        from dlworkflow.deploy.export import export

        return export(self, force=force, reason=reason)

    def report(self, *, pdf: bool = True) -> Any:
        """Step 8: reports/report.html (self-contained), reports/report.pdf (headless Chromium)
        and reports/model_card.md, written from the project's records."""
        from dlworkflow.report import report

        return report(self, pdf=pdf)

    def promote(self, version: int) -> Any:
        """Make exported version `version` the champion (served, used by predict)."""
        from dlworkflow.deploy.export.versions_cmd import promote

        return promote(self.root, version)

    def versions(self) -> Any:
        """Every exported model version, the champion and the earlier champions."""
        from dlworkflow.deploy.export.versions_cmd import listing

        return listing(self.root)

    def rollback(self, *, to: int | None = None) -> Any:
        """Make the previous champion (or exported version `to`) the champion again."""
        from dlworkflow.deploy.export.versions_cmd import rollback

        return rollback(self.root, to=to)

    def monitor(self, *, inputs: str | Path | None = None, labels: str | Path | None = None,
                since: str | None = None, window: int | None = None,
                webhook: str | None = None) -> Any:
        """Step 9: live traffic (the prediction log, or `inputs`) against the validation
        reference: input, embedding, prediction, confidence and OOD drift, live metrics with
        `labels`; writes reports/monitor.html; exit_code 4 on an alert."""
        from dlworkflow.monitor.step import monitor

        return monitor(self, inputs=inputs, labels=labels, since=since, window=window,
                       webhook=webhook)

    def retrain(self, data: str, *, warm_start: bool | None = None,
                progress: bool = True) -> Any:
        """Step 9: fresh labelled data -> a challenger, compared with the champion on the
        sealed test set and the fresh slice; promoted only when better by retrain.margin and
        passing the gate (exit_code 0 promoted, 3 kept out)."""
        from dlworkflow.monitor.retrain import retrain

        return retrain(self, data, warm_start=warm_start, progress=progress)

    def predict(self, paths: list[str | Path], *, out: str | Path | None = None,
                version: int | None = None) -> Any:
        """Predict files (images, or CSVs of text/tabular rows) with the champion (or
        `version`) through ONNX Runtime; write a CSV (default predictions.csv)."""
        from dlworkflow.deploy.export.predict import predict_files

        return predict_files(self.root, paths, out=out, version=version,
                             text_column=self.config.data.text_column)

    def serve(self, *, host: str | None = None, port: int | None = None,
              force_reason: str | None = None, **options: Any) -> None:
        """Serve the champion model (FastAPI + ONNX Runtime) until interrupted; see `serve:`."""
        from dlworkflow.deploy.serve import serve

        serve(self.root, self.config.serve, host=host, port=port, force_reason=force_reason,
              **options)

    def audit(self) -> Any:
        """The ML Test Score (Breck et al., 2017): the 28 tests judged from the project's
        records and the `audit:` checklist; writes reports/audit.json."""
        from dlworkflow.report.audit import audit

        return audit(self)

    def run(self, **options: Any) -> list[Any]:
        """Every step that is stale or has not run, in workflow order."""
        from dlworkflow.workflow import run_stale

        return run_stale(self, **options)

    @classmethod
    def demo(cls, folder: str | Path = "dlw-demo", **options: Any) -> tuple[Project, list[Any]]:
        """A new project on real data, through every step, end to end: MNIST
        (builtin:mnist5k) by default; task="tabular-regression" or "tabular-multilabel" for
        the other demos (dlworkflow/demo_plans.py)."""
        from dlworkflow.workflow import demo

        return demo(cls, folder, **options)

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "project"


class _ConfigView(Project):
    """Project.with_overrides: the config is fixed in memory."""

    @property
    def config(self) -> ProjectConfig:
        assert self._config is not None
        return self._config

    def update_config(self, updates: dict[str, Any]) -> ProjectConfig:
        raise ConfigError("A tuning trial's view of the project cannot change dlworkflow.yaml.",
                          fix="update the project itself, not the trial's view")
