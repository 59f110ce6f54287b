"""The overview page's data: `dlw status` (Project.status) as it is, with each step's key
figures and report links read from the ledger record its state came from. Nothing here
recomputes a state; figures are the numbers the step itself recorded in its summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.steps import DIAGNOSTICS

if TYPE_CHECKING:
    from dlworkflow.ledger import RunRecord
    from dlworkflow.project import Project
    from dlworkflow.status import StepState

#: Summary keys shown elsewhere on the row (the detail); keys ending in _id are not figures.
_NOT_FIGURES = frozenset({"headline"})
MAX_FIGURES = 8
MAX_TEXT = 60
REPORT_SUFFIXES = (".html", ".pdf", ".md", ".json")


@dataclass(frozen=True)
class ReportLink:
    label: str
    path: str  # relative to the reports folder, with "/"


@dataclass
class StepView:
    number: int
    title: str
    command: str
    state: str
    detail: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    reports: list[ReportLink] = field(default_factory=list)
    ended: str | None = None


@dataclass
class Overview:
    project: str
    name: str
    task: str
    steps: list[StepView]
    next_command: str | None
    test_reads: int
    reports: list[str]  # every report file, relative to the reports folder
    # label review: (unreviewed candidates, candidates, decisions the next ingest applies);
    # None when `dlw explore` recorded no candidates
    label_review: tuple[int, int, int] | None = None


def overview(project: Project) -> Overview:
    status = project.status()
    reports_dir = project.paths.reports
    steps = []
    for state in status.steps:
        record = project.ledger.latest(state.ledger_step) if state.ledger_step else None
        steps.append(_step_view(project, state, record, reports_dir))
    return Overview(
        project=str(project.root),
        name=project.config.name,
        task=project.config.task,
        steps=steps,
        next_command=status.next_command,
        test_reads=status.test_reads,
        reports=report_files(reports_dir),
        label_review=_label_review(project),
    )


def _label_review(project: Project) -> tuple[int, int, int] | None:
    from dlworkflow.errors import DlwError

    try:
        view = project.label_candidates()
    except DlwError:  # a review file or candidates' record that cannot be read
        return None
    if not view.source:
        return None
    return view.n_unreviewed, len(view.candidates), view.n_pending


def _step_view(
    project: Project, state: StepState, record: RunRecord | None, reports_dir: Path
) -> StepView:
    view = StepView(state.number, state.title, state.command, state.state, state.detail)
    records = []
    if record is not None:
        view.figures = figures(record.summary)
        view.ended = record.ended
        records.append((state.ledger_step or state.title, record))
    for info in DIAGNOSTICS:  # evaluate/export beside test, tune beside train, ...
        if info.number == state.number and info.ledger_step:
            extra = project.ledger.latest(info.ledger_step)
            if extra is not None:
                records.append((info.ledger_step, extra))
    for label, rec in records:
        for link in report_links(rec, reports_dir, label):
            if link not in view.reports:
                view.reports.append(link)
    return view


def figures(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The scalar entries of a step's recorded summary, as (name, shown value)."""
    shown = []
    for key, value in summary.items():
        if key in _NOT_FIGURES or key.endswith("_id") or value is None:
            continue
        text = _scalar(value)
        if text is not None:
            shown.append((key.replace("_", " "), text))
        if len(shown) == MAX_FIGURES:
            break
    return shown


def shown(value: Any) -> str:
    """A recorded number as the pages show it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _scalar(value: Any) -> str | None:
    if isinstance(value, (bool, int, float)):
        return shown(value)
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return value
    return None


#: Where evaluate and test leave their numbers when their records name no file:
#: reports/evaluate/<split>/metrics.json (dlworkflow/evaluate/full_report.py's metrics_file,
#: not imported here: it imports torch).
_SPLIT_METRICS = "evaluate/{split}/metrics.json"


def report_links(record: RunRecord, reports_dir: Path, label: str) -> list[ReportLink]:
    """The files inside the reports folder that a record names: any path-like string of its
    outputs or summary (explore's and monitor's outputs.report, tune's summary.report,
    report's html, pdf and model_card), and evaluate's and test's metrics.json."""
    named = [
        value
        for part in (record.outputs, record.summary)
        for value in part.values()
        if isinstance(value, str) and value.endswith(REPORT_SUFFIXES)
    ]
    if record.step in ("evaluate", "test"):
        split = record.outputs.get("split") or record.step
        named.append(str(reports_dir / _SPLIT_METRICS.format(split=split)))
    links = []
    for recorded in named:
        path = _in_this_project(Path(recorded), reports_dir)
        relative = inside(reports_dir, path)
        if relative is not None and path.is_file():
            link = ReportLink(label, relative)
            if link not in links:
                links.append(link)
    return links


def _in_this_project(path: Path, reports_dir: Path) -> Path:
    """A recorded path in this project: relative ones are the project's; an absolute one from
    where the project was when it ran (a project copied or moved since) is taken from its
    last reports/ part on, in this project's reports folder."""
    if not path.is_absolute():
        return reports_dir.parent / path
    if inside(reports_dir, path) is None and reports_dir.name in path.parts[:-1]:
        last = len(path.parts) - 1 - path.parts[::-1].index(reports_dir.name)
        return reports_dir.joinpath(*path.parts[last + 1 :])
    return path


def inside(folder: Path, path: Path) -> str | None:
    """`path` relative to `folder` (with "/") when it resolves to a place inside it, else None
    (symbolic links are followed first: one pointing out of the folder is outside)."""
    base = folder.resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except (ValueError, OSError, RuntimeError):
        return None


def report_files(reports_dir: Path) -> list[str]:
    """The reports a person reads (HTML, PDF, Markdown, JSON) under the folder, sorted."""
    if not reports_dir.is_dir():
        return []
    found = []
    for path in reports_dir.rglob("*"):
        if path.suffix in REPORT_SUFFIXES and path.is_file():
            relative = inside(reports_dir, path)
            if relative is not None:
                found.append(relative)
    return sorted(found)
