"""The evaluation page's data: what `dlw evaluate` wrote (reports/evaluate/<split>/metrics.json
and its figures) and what `dlw test` recorded (its ledger record, its metrics.json and the
ledger's log of every read of the sealed test set). Nothing here reads a split or a model:
the cell pages (cells.py) do, for the train and validation splits only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.ui.overview import _in_this_project, inside

if TYPE_CHECKING:
    from dlworkflow.project import Project

SPLITS = ("val", "train", "test")
SPLIT_NAMES = {"val": "validation", "train": "train", "test": "test (sealed)"}


def metrics_path(project: Project, split: str) -> Path:
    """reports/evaluate/<split>/metrics.json (full_report.metrics_file's place; not imported:
    that module imports torch)."""
    return project.paths.reports / "evaluate" / split / "metrics.json"


def read_metrics(project: Project, split: str) -> dict[str, Any] | None:
    path = metrics_path(project, split)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class TestReadRow:
    id: int
    at: str
    run_id: int | None
    purpose: str
    n_samples: int
    seal_hash: str
    result: str  # the verdict the run recorded, or its status when it recorded none


@dataclass
class Evaluation:
    split: str
    split_name: str
    metrics: dict[str, Any] | None
    command: str  # the command that writes this split's numbers
    classes: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    row_totals: list[int] = field(default_factory=list)
    total: int = 0
    cells_linked: bool = False  # the sealed test set's samples are never listed
    figures: list[tuple[str, str]] = field(default_factory=list)  # (name, path in reports/)
    verdict: dict[str, Any] | None = None  # the last `dlw test` record's outputs
    verdict_headline: str | None = None
    test_reads: list[TestReadRow] = field(default_factory=list)
    evaluated_at: str | None = None


def evaluation(project: Project, split: str) -> Evaluation:
    metrics = read_metrics(project, split)
    command = "dlw test" if split == "test" else f"dlw evaluate --split {split}"
    view = Evaluation(split, SPLIT_NAMES[split], metrics, command)
    record = project.ledger.latest("test" if split == "test" else "evaluate")
    if record is not None and (split == "test" or record.outputs.get("split", split) == split):
        view.evaluated_at = record.ended
    if metrics is not None:
        view.classes = [str(c) for c in metrics.get("classes") or []]
        confusion = metrics.get("confusion")
        if isinstance(confusion, list) and all(isinstance(r, list) for r in confusion):
            view.confusion = [[int(v) for v in row] for row in confusion]
            view.row_totals = [sum(row) for row in view.confusion]
            view.total = sum(view.row_totals)
        view.cells_linked = split != "test" and bool(view.confusion)
        view.figures = figure_links(project, metrics)
    test = project.ledger.latest("test")
    if test is not None:
        view.verdict = test.outputs
        view.verdict_headline = test.summary.get("headline")
    view.test_reads = test_reads(project)
    return view


def figure_links(project: Project, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The PNG figures metrics.json names, each as a path inside the reports folder."""
    reports = project.paths.reports
    links = []
    for name, recorded in (metrics.get("figures") or {}).items():
        if not isinstance(recorded, str) or not recorded.endswith(".png"):
            continue
        path = _in_this_project(Path(recorded), reports)
        relative = inside(reports, path)
        if relative is not None and path.is_file():
            links.append((str(name).replace("_", " "), relative))
    return links


def test_reads(project: Project) -> list[TestReadRow]:
    """Every read of the sealed test set the ledger logged, newest first, with the verdict
    the run that read it recorded."""
    runs = {r.id: r for r in project.ledger.history()}
    rows = []
    for read in project.ledger.test_reads():
        run = runs.get(read.run_id) if read.run_id is not None else None
        if run is None:
            result = "no run recorded"
        else:
            result = str(run.outputs.get("verdict") or run.summary.get("headline") or run.status)
        rows.append(
            TestReadRow(
                read.id,
                read.at,
                read.run_id,
                read.purpose,
                read.n_samples,
                read.seal_hash,
                f"{run.step}: {result}" if run is not None else result,
            )
        )
    return sorted(rows, key=lambda r: r.id, reverse=True)
