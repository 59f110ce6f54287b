"""`dlw evaluate`: the full evaluation on validation (or train), any time. It never reads the
sealed test set: rows come from dlworkflow.store.load_split, which refuses 'test'."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.evaluate.auto_slices import check_sensitive, slice_rows
from dlworkflow.evaluate.full_report import (
    full_report,
    headline,
    metrics_file,
    validation_temperature,
)
from dlworkflow.evaluate.importance import importance_rows
from dlworkflow.evaluate.slices import check_columns
from dlworkflow.evaluate.summary import report_figures, report_rows
from dlworkflow.evaluate.tracked import Logged, log_step_run, warm_up
from dlworkflow.fileio import sha256_json
from dlworkflow.models.predict import load_model
from dlworkflow.results import StepResult
from dlworkflow.store import load_split

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace


@dataclass
class EvaluationResult(StepResult):
    split: str
    model: str
    report: dict[str, Any] = field(default_factory=dict)
    root: str = ""  # the project's folder: the report's figure paths are relative to it
    mlflow: Logged | None = None  # the MLflow run of this evaluation (evaluate/tracked.py)

    def title(self) -> str:
        return f"Step 7: evaluation on {self.split} (the test set stays sealed)"

    def rows(self) -> list[tuple[str, Any]]:
        r = self.report
        note = (
            ""
            if r["primary_metric_agreed"]
            else f"  (no criterion agreed yet: {r['primary_metric']})"
        )
        return [
            ("headline", headline(r) + note),
            ("model", self.model),
            *report_rows(r),
            *slice_rows(r),
            *importance_rows(r.get("importance")),
            *([self.mlflow.row()] if self.mlflow else []),
        ]

    def figures(self) -> list[tuple[str, str | Path]]:
        return list(report_figures(self.report, self.root)) if self.root else []

    def to_json(self) -> dict[str, Any]:
        """`dlw evaluate --json`: the headline and the full report, as written to
        reports/evaluate/<split>/metrics.json."""
        return {
            "split": self.split,
            "model": self.model,
            "headline": headline(self.report),
            "metrics_file": metrics_file(self.root, self.split) if self.root else None,
            "report": self.report,
        }


def evaluate(project: Workspace, split: str = "val") -> EvaluationResult:
    """Evaluate the trained model on the validation (or train) split; recorded in the ledger
    as step 'evaluate'. Figures and metrics.json go to reports/evaluate/<split>/."""
    rows = load_split(project, split)  # refuses 'test' before anything runs
    check_columns(rows, project.config.evaluate.slices)
    check_sensitive(rows, project.config.data.sensitive_columns)
    model, meta = load_model(project)
    warmed = warm_up(project)  # mlflow's import and store, while the model evaluates
    temperature = validation_temperature(project, model, meta)
    with project.step("evaluate", inputs={"train": project.upstream_hash("train")}) as run:
        report = full_report(project, model, meta, rows, split=split, temperature=temperature)
        metric = report["primary_metric"]
        m = report["metrics"][metric]
        record = {
            "split": split,
            "metric": metric,
            "value": m["value"],
            "interval": [m["low"], m["high"]],
            "n": report["n"],
            "temperature": temperature,
            "simple_as_good": (report["baselines"] or {}).get("simple_as_good"),
        }
        run.outputs = {"hash": sha256_json(record), **record}
        logged = log_step_run(
            project,
            step="evaluate",
            split=split,
            report=report,
            meta=meta,
            ledger_run_id=run.run_id,
            warmed=warmed,
        )
        run.summary = {"headline": headline(report), **record, "mlflow_run_id": logged.run_id}
    return EvaluationResult(
        split=split,
        model=str(meta.get("name")),
        report=report,
        root=str(project.root),
        mlflow=logged,
    )
