"""Gather the evidence the report and the model card are written from: the ledger, the step
records, metrics.json files, the trained model's json, the exported versions and the serving
logs. Nothing is computed here that a step did not record; missing pieces stay None."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import read_json
from dlworkflow.ledger import RunRecord, TestRead
from dlworkflow.runtime.prediction_logs import log_files
from dlworkflow.store.trained import trained_meta

if TYPE_CHECKING:
    from dlworkflow.report.task_view import TaskView
    from dlworkflow.tasks.base import Task
    from dlworkflow.workspace import Workspace

STEPS = (
    "define",
    "ingest",
    "explore",
    "split",
    "tune",
    "train",
    "evaluate",
    "test",
    "export",
    "monitor",
    "retrain",
)


@dataclass
class Evidence:
    """Everything the project recorded, read once."""

    root: Path
    config: dict[str, Any]
    records: dict[str, RunRecord | None]
    test_reads: list[TestRead]
    all_runs: list[RunRecord] = field(default_factory=list)  # every ledger row, in order
    dataset: dict[str, Any] | None = None
    privacy: dict[str, Any] | None = None
    test_metrics: dict[str, Any] | None = None
    val_metrics: dict[str, Any] | None = None
    trained: dict[str, Any] | None = None  # model.json of the trained model (history included)
    versions: list[dict[str, Any]] = field(default_factory=list)  # metadata.json of each v<N>
    champion: int | None = None
    forced_serving: list[dict[str, Any]] = field(default_factory=list)
    n_predictions_logged: int = 0
    audit: Any = None  # dlworkflow.report.audit's result, when that module provides audit()
    audit_error: str | None = None

    def record(self, step: str) -> RunRecord | None:
        return self.records.get(step)

    def summary(self, step: str) -> dict[str, Any]:
        record = self.records.get(step)
        return dict(record.summary) if record else {}

    def outputs(self, step: str) -> dict[str, Any]:
        record = self.records.get(step)
        return dict(record.outputs) if record else {}

    @property
    def train_runs(self) -> list[RunRecord]:
        return [r for r in self.all_runs if r.step == "train" and r.status == "done"]

    @property
    def task(self) -> Task:
        """The trained model's task (model.json `task`), else the configured one."""
        from dlworkflow.report.task_view import model_task

        return model_task(self.config, self.trained)

    @property
    def view(self) -> TaskView:
        """How the report speaks about the task's kind (task_view.py)."""
        from dlworkflow.report.task_view import view

        return view(self.task)

    @property
    def problem(self) -> dict[str, Any]:
        return dict(self.config.get("problem") or {})

    @property
    def test_reuse(self) -> int:
        """Reads of the sealed test set beyond the first (each makes the estimate optimistic)."""
        seal = self.outputs("split").get("seal")
        reads = [r for r in self.test_reads if seal is None or r.seal_hash == seal]
        return max(0, len(reads) - 1)

    @property
    def champion_metadata(self) -> dict[str, Any] | None:
        for meta in self.versions:
            if meta.get("version") == self.champion:
                return meta
        return self.versions[-1] if self.versions else None

    @property
    def forced_exports(self) -> list[dict[str, Any]]:
        return [m for m in self.versions if m.get("forced")]


def gather(project: Workspace, *, with_audit: bool = True) -> Evidence:
    from dlworkflow.store import read_privacy

    paths = project.paths
    ev = Evidence(
        root=project.root,
        config=project.config.model_dump(mode="json"),
        records={step: project.ledger.latest(step) for step in STEPS},
        test_reads=project.ledger.test_reads(),
        all_runs=project.ledger.history(),
    )
    ev.dataset = _json(paths.state / "dataset.json")
    try:
        ev.privacy = read_privacy(project)
    except Exception:  # an unreadable privacy record is reported as not recorded
        ev.privacy = None
    ev.test_metrics = _json(paths.reports / "evaluate" / "test" / "metrics.json")
    ev.val_metrics = _json(paths.reports / "evaluate" / "val" / "metrics.json")
    ev.trained = trained_meta(project)
    ev.versions, ev.champion = _versions(project.root)
    ev.forced_serving = _jsonl(paths.state / "serve" / "forced.jsonl")
    ev.n_predictions_logged = _count_lines(log_files(project.root))
    if with_audit:
        ev.audit, ev.audit_error = run_audit(project)
    return ev


def run_audit(project: Workspace) -> tuple[Any, str | None]:
    """The audit (without writing audit.json), or (None, why) when it failed: the report
    still renders, and its audit section says what failed."""
    from dlworkflow.report.audit import audit

    try:
        return audit(project, write=False), None
    except Exception as exc:  # noqa: BLE001
        return None, f"{type(exc).__name__}: {exc}"


def _versions(root: Path) -> tuple[list[dict[str, Any]], int | None]:
    from dlworkflow.runtime import versions as V

    try:
        return V.versions(root), V.champion(root)
    except Exception:
        return [], None


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except Exception:
        return None
    return data if isinstance(data, dict) else None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def _count_lines(files: list[Path]) -> int:
    total = 0
    for file in files:
        with contextlib.suppress(OSError), open(file, "rb") as handle:
            total += sum(1 for _ in handle)
    return total
