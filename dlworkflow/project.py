"""Project: the Python API of `dlw`, one method per command, over the Workspace (config,
paths, ledger and step runner: dlworkflow/workspace.py) that the steps receive."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dlworkflow.config import CONFIG_FILE, validate_config
from dlworkflow.errors import ConfigError, DlwError, ProjectNotFoundError
from dlworkflow.fileio import atomic_write_text
from dlworkflow.workspace import Paths, StepRun, Workspace, round_trip_yaml

#: The data.* settings that name a table's columns (`dlw ingest --label-column ...`).
COLUMN_SETTINGS = (
    "path_column",
    "text_column",
    "label_column",
    "group_column",
    "id_column",
    "feature_columns",
)

__all__ = ["Paths", "Project", "StepRun", "Workspace"]

if TYPE_CHECKING:
    from dlworkflow.data import IngestResult
    from dlworkflow.data.label_review import LabelCandidates, LabelReviewResult
    from dlworkflow.deploy.export import ExportResult
    from dlworkflow.deploy.export.predict import PredictResult
    from dlworkflow.deploy.export.versions_cmd import VersionsResult
    from dlworkflow.evaluate import EvaluationResult, TestResult
    from dlworkflow.evaluate.explain_step import ExplanationResult
    from dlworkflow.explore import ExploreResult
    from dlworkflow.monitor.retrain import RetrainResult
    from dlworkflow.monitor.step import MonitorResult
    from dlworkflow.prepare import SplitResult
    from dlworkflow.problem import DefineResult
    from dlworkflow.report import ReportResult
    from dlworkflow.report.audit import AuditResult
    from dlworkflow.status import StatusReport
    from dlworkflow.train import TrainResult
    from dlworkflow.train.lr_find import LRFindResult
    from dlworkflow.train.tune.step import TuneResult


class Project(Workspace):
    """The Python API of `dlw`: a Workspace with one method per CLI command. The steps
    receive it as the Workspace it is."""

    # ---- creation and loading -------------------------------------------------------------
    @classmethod
    def init(
        cls,
        root: str | Path,
        *,
        task: str = "image-classification",
        name: str | None = None,
        model: str | None = None,
        force: bool = False,
    ) -> Project:
        from dlworkflow.config_schema import with_schema_line, write_schema
        from dlworkflow.problem import render_template
        from dlworkflow.tasks import TASKS, task_names

        if task not in TASKS:
            raise ConfigError(
                f"Unknown task {task!r}.",
                expected=f"one of {', '.join(task_names())}",
                received=repr(task),
                fix=f"pass --task with one of {', '.join(task_names())}",
            )
        project = cls(root)
        if project.paths.config.exists() and not force:
            raise DlwError(
                f"{project.paths.config} already exists.",
                fix="edit it, or pass --force to overwrite it with a fresh template",
            )
        name = name or _slug(project.root.name)
        text = render_template(name=name, task=task, model=model or TASKS.get(task).default_model)
        validate_config(round_trip_yaml().load(text), source=CONFIG_FILE)
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

    # ---- the workflow, one method per command ---------------------------------------------
    def status(self) -> StatusReport:
        from dlworkflow.status import project_status

        return project_status(self)

    def define(self, **fields: Any) -> DefineResult:
        return cast("DefineResult", self.run_step("define", **fields))

    def ingest(self, source: str | None = None, **options: Any) -> IngestResult:
        return cast("IngestResult", self.run_step("ingest", source, **options))

    def set_columns(self, **columns: str | list[str] | None) -> str:
        """Name the table's columns in dlworkflow.yaml (`dlw ingest --label-column ...`):
        path_column, text_column, label_column, group_column, id_column, feature_columns
        (None: left as it is). Validated before anything is written; the YAML diff ("" when
        the file already said so)."""
        from dlworkflow.config import yaml_diff

        unknown = sorted(set(columns) - set(COLUMN_SETTINGS))
        if unknown:
            raise ConfigError(
                f"Not a column setting: {', '.join(unknown)}.",
                expected=f"one of {', '.join(COLUMN_SETTINGS)}",
                received=", ".join(unknown),
            )
        updates = {f"data.{k}": v for k, v in columns.items() if v is not None}
        if not updates:
            return ""
        before = self.paths.config.read_text(encoding="utf-8")
        self.update_config(updates)
        return yaml_diff(before, self.paths.config.read_text(encoding="utf-8"), to="now")

    def review_label(
        self, sample_id: str, decision: str, label: str | None = None
    ) -> LabelReviewResult:
        """Label review: keep, relabel (to `label`, one of the classes) or exclude a sample;
        appended to labels/review.csv and the ledger, applied by the next `dlw ingest`."""
        return cast("LabelReviewResult", self.run_step("label_review", sample_id, decision, label))

    def label_candidates(self) -> LabelCandidates:
        """The label-issue candidates of the last `dlw explore`, each with its decision."""
        from dlworkflow.data.label_review import label_candidates

        return label_candidates(self)

    def explore(self, **options: Any) -> ExploreResult:
        return cast("ExploreResult", self.run_step("explore", **options))

    def split(self) -> SplitResult:
        return cast("SplitResult", self.run_step("split"))

    def train(self, **options: Any) -> TrainResult:
        if options.get("nnodes", 1) > 1:  # every node launches; global rank 0 takes the lock
            from dlworkflow.train.step import train

            return train(self, **options)
        return cast("TrainResult", self.run_step("train", **options))

    def tune(
        self,
        *,
        trials: int | None = None,
        timeout: float | None = None,
        workers: int | None = None,
        backend: str = "optuna",
        address: str | None = None,
        apply: bool = False,
        progress: bool = True,
    ) -> TuneResult:
        """Step 6: hyperparameter search over `tune.space` on the validation split (Optuna
        TPE with pruning, resumable in .dlw/tune/study.db; Ray Tune with backend="ray");
        `apply` writes the best parameters into dlworkflow.yaml. Never reads the test set."""
        from dlworkflow.report.tune_page import write_tune_report

        return cast(
            "TuneResult",
            self.run_step(
                "tune",
                trials=trials,
                timeout=timeout,
                workers=workers,
                backend=backend,
                address=address,
                apply=apply,
                progress=progress,
                write_report=write_tune_report,
            ),
        )

    def lr_find(self, **options: Any) -> LRFindResult:
        """Learning-rate range test on the train split (reports/lr_find.png)."""
        from dlworkflow.train.lr_find import lr_find

        return lr_find(self, **options)

    def augment_preview(self, *, n: int = 16, seed: int = 0) -> Path:
        """A grid of train samples and augmented versions (reports/augment_preview.png)."""
        from dlworkflow.results import FigurePath
        from dlworkflow.train.augment import augment_preview

        return FigurePath(augment_preview(self, n=n, seed=seed))  # shows the grid in a notebook

    def evaluate(self, split: str = "val") -> EvaluationResult:
        """The full evaluation on validation (or train), any time; never reads the test set.
        Figures and metrics.json go to reports/evaluate/<split>/."""
        return cast("EvaluationResult", self.run_step("evaluate", split))

    def explain(self, split: str = "val", *, n: int = 8) -> ExplanationResult:
        """Saliency maps (images), token attributions (texts) or permutation importance and
        per-row attributions (tables) for the n most confident mistakes and n random correct
        predictions on validation (or train); never reads the test set. Figures and
        explanations.json go to reports/explain/<split>/; recorded in the ledger."""
        return cast("ExplanationResult", self.run_step("explain", split, n=n))

    def test(self) -> TestResult:
        return cast("TestResult", self.run_step("test"))

    def export(self, *, force: bool = False, reason: str | None = None) -> ExportResult:
        """The trained model -> models/v<N>/ (ONNX, safetensors, metadata.json), parity
        checked on validation; refused unless `dlw test` said PASS (or force with a reason)."""
        return cast("ExportResult", self.run_step("export", force=force, reason=reason))

    def report(self, *, pdf: bool = True) -> ReportResult:
        """Step 8: reports/report.html (self-contained), reports/report.pdf (headless Chromium)
        and reports/model_card.md, written from the project's records."""
        return cast("ReportResult", self.run_step("report", pdf=pdf))

    def promote(self, version: int) -> VersionsResult:
        """Make exported version `version` the champion (served, used by predict); the
        ledger step "promote" records who, when, from which version and to which."""
        return cast("VersionsResult", self.run_step("promote", version))

    def versions(self) -> VersionsResult:
        """Every exported model version, the champion and the earlier champions."""
        from dlworkflow.deploy.export.versions_cmd import listing

        return listing(self.root)

    def rollback(self, *, to: int | None = None) -> VersionsResult:
        """Make the previous champion (or exported version `to`) the champion again (the
        ledger step "rollback")."""
        return cast("VersionsResult", self.run_step("rollback", to=to))

    def monitor(
        self,
        *,
        inputs: str | Path | None = None,
        labels: str | Path | None = None,
        since: str | None = None,
        window: int | None = None,
        webhook: str | None = None,
    ) -> MonitorResult:
        """Step 9: live traffic (the prediction log, or `inputs`) against the validation
        reference: input, embedding, prediction, confidence and OOD drift, live metrics with
        `labels`; writes reports/monitor.html; exit_code 4 on an alert."""
        return cast(
            "MonitorResult",
            self.run_step(
                "monitor", inputs=inputs, labels=labels, since=since, window=window, webhook=webhook
            ),
        )

    def retrain(
        self,
        data: str,
        *,
        warm_start: bool | None = None,
        progress: bool = True,
        budget_minutes: float | None = None,
    ) -> RetrainResult:
        """Step 9: fresh labelled data -> a challenger, compared with the champion on the
        sealed test set and the fresh slice; promoted only when better by retrain.margin and
        passing the gate (exit_code 0 promoted, 3 kept out). budget_minutes: the
        challenger's training budget (default train.budget_minutes)."""
        options: dict[str, Any] = {"warm_start": warm_start, "progress": progress}
        if budget_minutes is not None:
            options["budget_minutes"] = budget_minutes
        return cast("RetrainResult", self.run_step("retrain", data, **options))

    def predict(
        self, paths: list[str | Path], *, out: str | Path | None = None, version: int | None = None
    ) -> PredictResult:
        """Predict files (images, or CSVs of text/tabular rows) with the champion (or
        `version`) through ONNX Runtime; write a CSV (default predictions.csv)."""
        from dlworkflow.deploy.export.predict import predict_files

        return predict_files(
            self.root, paths, out=out, version=version, text_column=self.config.data.text_column
        )

    def serve(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        force_reason: str | None = None,
        **options: Any,
    ) -> None:
        """Serve the champion model (FastAPI + ONNX Runtime) until interrupted; see `serve:`."""
        from dlworkflow.deploy.serve import serve

        serve(
            self.root, self.config.serve, host=host, port=port, force_reason=force_reason, **options
        )

    def audit(self) -> AuditResult:
        """The ML Test Score (Breck et al., 2017): the 28 tests judged from the project's
        records and the `audit:` checklist; writes reports/audit.json."""
        return cast("AuditResult", self.run_step("audit"))

    def run(self, **options: Any) -> list[Any]:
        """Every step that is stale or has not run, in workflow order."""
        from dlworkflow.workflow import run_stale

        return run_stale(self, **options)

    @classmethod
    def demo(cls, folder: str | Path = "dlw-demo", **options: Any) -> tuple[Project, list[Any]]:
        """A new project on real data, through every step, end to end: MNIST
        (builtin:mnist5k) by default; task="tabular-regression" or "tabular-multilabel" for
        the other demos (dlworkflow/demo_plans.py); tune=True adds a short `dlw tune` study
        of the default search space after the test (nothing applied)."""
        from dlworkflow.workflow import demo

        project, results = demo(cls.init, folder, **options)
        assert isinstance(project, cls)
        return project, results


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "project"
