"""`dlw test`: the one-time evaluation on the sealed test set, judged against the target."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import StepOrderError
from dlworkflow.evaluate.auto_slices import check_sensitive, slice_rows
from dlworkflow.evaluate.constraints import check_constraints
from dlworkflow.evaluate.full_report import full_report, metrics_file, validation_temperature
from dlworkflow.evaluate.gate import Verdict, judge
from dlworkflow.evaluate.importance import importance_rows
from dlworkflow.evaluate.slices import check_columns
from dlworkflow.evaluate.summary import report_figures, report_rows
from dlworkflow.evaluate.tracked import Logged, log_step_run, warm_up
from dlworkflow.fileio import sha256_json
from dlworkflow.results import StepResult
from dlworkflow.store import load_split, read_split_info, read_trained_pointer
from dlworkflow.store.sealed import open_test_set
from dlworkflow.style import PALETTE
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

EXIT_PASS, EXIT_FAIL = 0, 3


@dataclass
class TestResult(StepResult):
    __test__ = False  # not a pytest class

    verdict: Verdict
    n_samples: int
    accuracy: float | None  # None for a task without accuracy (regression, multi-label)
    model: str
    previous_reads: int
    seal_hash: str
    report: dict[str, Any] = field(default_factory=dict)  # the full report (full_report.py)
    root: str = ""  # the project's folder: the report's figure paths are relative to it
    companion_metric: str = "accuracy"  # the task's second metric, shown beside the verdict
    companion: float | None = None  # its value (classification: the accuracy)
    criterion: str = ""  # the target in the metric's direction: "rmse <= 70"
    mlflow: Logged | None = None  # the MLflow run of this test (evaluate/tracked.py)

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.verdict.passed else EXIT_FAIL

    def title(self) -> str:
        return f"Step 7: test verdict {self.verdict.verdict}"

    def rows(self) -> list[tuple[str, Any]]:
        v = self.verdict
        lo, hi = v.interval
        rows = [
            ("verdict", v.sentence()),
            (v.metric, f"{v.value:.4f}  ({v.confidence:.0%} bootstrap CI {lo:.4f} to {hi:.4f})"),
            (
                "target",
                (self.criterion or f"{v.metric} >= {v.target}")
                + (
                    f" (judged on the interval's {'lower' if v.higher_is_better else 'upper'} "
                    "bound)"
                    if v.gate_on == "lower_bound"
                    else ""
                ),
            ),
            *[
                (f"constraint {c.name}", f"{'ok' if c.passed else 'FAILED'}: {c.sentence()}")
                for c in v.constraints
            ],
            (self.companion_metric, self._companion_text()),
            ("test samples", f"{self.n_samples:,} (seal {self.seal_hash[:12]})"),
            ("model", self.model),
            ("test set use", self.reuse_note()),
            *([self.mlflow.row()] if self.mlflow else []),
        ]
        rows = [
            row
            for row in rows
            if not (row[0] == self.companion_metric and v.metric == self.companion_metric)
        ]
        if self.report:
            rows.append(("full report", ""))
            rows.extend(row for row in report_rows(self.report) if row[0] != v.metric)
            rows.extend(slice_rows(self.report))
            rows.extend(importance_rows(self.report.get("importance")))
        return rows

    def figures(self) -> list[tuple[str, str | Path]]:
        return list(report_figures(self.report, self.root)) if self.root else []

    def to_json(self) -> dict[str, Any]:
        """`dlw test --json`: the verdict record (as in the ledger and the report), the facts
        of this read of the test set, and the full report (reports/evaluate/test/metrics.json)."""
        return {
            "verdict": {
                **self.verdict.record(),
                "passed": self.verdict.passed,
                "sentence": self.verdict.sentence(),
            },
            "exit_code": self.exit_code,
            "model": self.model,
            "n_samples": self.n_samples,
            "accuracy": self.accuracy,
            "companion_metric": self.companion_metric,
            "companion": self.companion,
            "previous_reads": self.previous_reads,
            "seal_hash": self.seal_hash,
            "metrics_file": metrics_file(self.root, "test") if self.root else None,
            "report": self.report,
        }

    def _repr_html_(self) -> str:
        colour = PALETTE["good"] if self.verdict.passed else PALETTE["bad"]
        banner = (
            f"<p style='font-size:1.2em'><strong style='color:{colour}'>"
            f"{html.escape(self.verdict.sentence())}</strong></p>"
        )
        return banner + super()._repr_html_()

    def _companion_text(self) -> str:
        value = self.accuracy if self.companion is None else self.companion
        return "undefined" if value is None else f"{value:.4f}"

    def reuse_note(self) -> str:
        if self.previous_reads == 0:
            return "first use of this test set"
        return (
            f"WARNING: this test set had been used {self.previous_reads} time(s) before; "
            "each reuse makes the estimate more optimistic, and the report shows the count"
        )


def test(project: Workspace) -> TestResult:
    """Evaluate the trained model on the sealed test set; the read is logged in the ledger."""
    metric, target = project.config.problem.require_success_criterion(needed_by="`dlw test`")
    task = task_of(project.config.task)
    spec = task.check_criterion(metric, target)
    info = read_split_info(project)
    model, meta, weights_sha256 = _judged_model(project)
    previous = len(project.ledger.test_reads(info.seal_hash))
    cfg = project.config.evaluate
    val_rows = load_split(project, "val")  # the test rows have the same columns
    check_columns(val_rows, cfg.slices)
    check_sensitive(val_rows, project.config.data.sensitive_columns)
    warmed = warm_up(project)  # mlflow's import and store, while the model is judged
    temperature = validation_temperature(project, model, meta)  # validation only
    with project.step("test", inputs={"train": project.upstream_hash("train")}) as run:
        rows = open_test_set(project, purpose="final test against the success criterion")
        report = full_report(project, model, meta, rows, split="test", temperature=temperature)
        m = report["metrics"][metric]
        nan = float("nan")  # undefined (e.g. AUROC of a one-class test set): FAIL
        value = nan if m["value"] is None else m["value"]
        interval = (nan if m["low"] is None else m["low"], nan if m["high"] is None else m["high"])
        checks = check_constraints(project, model, meta)  # on the model exported to ONNX
        verdict = judge(
            metric=metric,
            value=value,
            interval=interval,
            confidence=cfg.confidence,
            target=target,
            gate_on=cfg.gate_on,
            constraints=checks,
            higher_is_better=spec.higher_is_better,
        )
        record = {
            "verdict": verdict.verdict,
            "metric": metric,
            "value": value,
            "interval": list(interval),
            "target": target,
            "n": report["n"],
            "gate_on": cfg.gate_on,
            "constraints": [c.record() for c in checks],
            "weights_sha256": weights_sha256,  # the weights judged: export ships only these
        }
        run.outputs = {"hash": sha256_json(record), **record}
        companion = (report["metrics"].get(task.companion_metric) or {}).get("value")
        run.summary = {
            "headline": verdict.sentence(),
            "previous_reads": previous,
            "accuracy": (report["metrics"].get("accuracy") or {}).get("value"),
            task.companion_metric: companion,
            "temperature": temperature,
            "simple_as_good": (report["baselines"] or {}).get("simple_as_good"),
            **record,
        }
        logged = log_step_run(
            project,
            step="test",
            split="test",
            report=report,
            meta=meta,
            ledger_run_id=run.run_id,
            params={"target": target, "criterion": spec.criterion(target), "gate_on": cfg.gate_on},
            metrics={
                "passed": float(verdict.passed),
                "target": float(target),
                "test_reads": float(previous + 1),
            },
            tags={"dlw.verdict": verdict.verdict, "dlw.seal_hash": info.seal_hash},
            warmed=warmed,
        )
        run.summary["mlflow_run_id"] = logged.run_id
    return TestResult(
        verdict=verdict,
        n_samples=report["n"],
        accuracy=run.summary["accuracy"],
        model=str(meta.get("name")),
        previous_reads=previous,
        seal_hash=info.seal_hash,
        report=report,
        root=str(project.root),
        companion_metric=task.companion_metric,
        companion=companion,
        criterion=spec.criterion(target),
        mlflow=logged,
    )


def _judged_model(project: Workspace) -> tuple[Any, Any, str]:
    """The trained model (.dlw/train/best.json), its meta, and the sha256 of its weights
    (load_trained checked the file against it). Refused when they are not the weights the
    last finished train run recorded: a train run that was interrupted, or whose ledger
    write failed, after it wrote its weights; its model would be judged with no record of
    how it was trained."""
    from dlworkflow.models import load_trained

    pointer = read_trained_pointer(project)
    model, meta = load_trained(pointer["folder"])
    digest = str(meta["weights_sha256"])
    recorded = project.upstream_hash("train")
    if pointer.get("weights_sha256") not in (None, digest) or digest != recorded:
        last = project.ledger.latest("train", status=None)
        run = f"run {last.id}, {last.status}" if last is not None else "no run"
        raise StepOrderError(
            "The trained model in .dlw/train/best.json is not the one the last finished "
            "`dlw train` recorded: a train run stopped after writing its weights "
            f"({run}).",
            expected=f"weights sha256 {str(recorded)[:16]}... (the last finished train run)",
            received=f"weights sha256 {digest[:16]}...",
            fix="run `dlw train --resume` (or `dlw train`) to finish training, then `dlw test`",
        )
    return model, meta, digest
