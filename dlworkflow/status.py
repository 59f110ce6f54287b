"""`dlw status`: where the project stands on each of the nine steps, and what to run next."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.steps import STEPS, StepInfo
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.ledger import RunRecord
    from dlworkflow.workspace import Workspace

DONE, STALE, NOT_RUN, FAILED, UNAVAILABLE = "done", "stale", "not run", "failed", "not available"
#: A run whose process is gone before it ended (killed, machine down), and one still going.
INTERRUPTED, RUNNING = "interrupted", "running"


@dataclass
class StepState:
    number: int
    title: str
    command: str
    state: str
    detail: str = ""
    ledger_step: str | None = None


@dataclass
class StatusReport:
    project: str
    steps: list[StepState] = field(default_factory=list)
    next_command: str | None = None
    test_reads: int = 0

    def state_of(self, ledger_step: str) -> str:
        for step in self.steps:
            if step.ledger_step == ledger_step:
                return step.state
        raise KeyError(ledger_step)

    def to_json(self) -> dict[str, Any]:
        """`dlw status --json`: every step's state and the next command."""
        return {
            "project": self.project,
            "steps": [
                {
                    "number": s.number,
                    "title": s.title,
                    "command": s.command,
                    "state": s.state,
                    "detail": s.detail,
                    "ledger_step": s.ledger_step,
                }
                for s in self.steps
            ],
            "next_command": self.next_command,
            "all_done": self.next_command is None,
            "test_reads": self.test_reads,
        }

    def __rich__(self) -> Any:
        from rich.table import Table

        colours = {
            DONE: "green",
            STALE: "yellow",
            NOT_RUN: "white",
            FAILED: "red",
            UNAVAILABLE: "dim",
            INTERRUPTED: "red",
            RUNNING: "cyan",
        }
        table = Table(title=f"dlworkflow status: {self.project}", title_justify="left")
        for column in ("#", "step", "state", "detail"):
            table.add_column(column)
        for s in self.steps:
            colour = colours[s.state]
            table.add_row(str(s.number), s.title, f"[{colour}]{s.state}[/]", s.detail)
        table.caption = f"next: {self.next_command}" if self.next_command else "all steps done"
        table.caption_justify = "left"
        return table

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{s.number}</td><td>{html.escape(s.title)}</td><td>{s.state}</td>"
            f"<td>{html.escape(s.detail)}</td></tr>"
            for s in self.steps
        )
        nxt = html.escape(self.next_command or "all steps done")
        reads = f"; the test set has been read {self.test_reads} time(s)" if self.test_reads else ""
        return (
            f"<table><caption>dlworkflow status: {html.escape(self.project)}{reads}"
            f"</caption><tr><th>#</th><th>step</th><th>state</th><th>detail</th></tr>{rows}"
            f"</table><p>next: <code>{nxt}</code></p>"
        )


def project_status(project: Workspace) -> StatusReport:
    report = StatusReport(project=str(project.root))
    for info in STEPS:
        report.steps.append(_step_state(project, info))
    report.test_reads = len(project.ledger.test_reads())
    report.next_command = _next_command(project, report)
    return report


def _step_state(project: Workspace, info: StepInfo) -> StepState:
    state = StepState(info.number, info.title, info.command, NOT_RUN, ledger_step=info.ledger_step)
    if info.key == "model":
        return _model_state(project, state)
    if info.ledger_step is None:
        state.state, state.detail = UNAVAILABLE, "arrives in a later version of dlworkflow"
        return state
    last = project.ledger.latest(info.ledger_step, status=None)
    done = project.ledger.latest(info.ledger_step)
    if last is not None and last.status == "failed":
        state.state, state.detail = FAILED, (last.message or "")[:120]
        return state
    if last is not None and last.status == "running":
        if last.process_gone():
            state.state = INTERRUPTED
            state.detail = (
                f"run {last.id} (pid {last.pid}, started {last.started}) ended "
                "without finishing: killed, or the machine stopped"
            )
            return state
        if last.pid is not None:
            where = f" on {last.host}" if last.host else ""
            state.state = RUNNING
            state.detail = f"run {last.id} (pid {last.pid}{where}, started {last.started})"
            return state
    if done is None:
        if info.key == "define" and project.config.problem.has_success_criterion():
            state.detail = "criterion written in dlworkflow.yaml; `dlw define` validates it"
        return state
    reasons = stale_reasons(project, info, done)
    if reasons:
        state.state, state.detail = STALE, "; ".join(reasons)
    else:
        state.state, state.detail = DONE, _done_detail(done)
    return state


def stale_reasons(project: Workspace, info: StepInfo, record: RunRecord) -> list[str]:
    from dlworkflow.config import settings_sources

    reasons = []
    sources = settings_sources(record.inputs)
    config = project.config.with_settings_from(sources) if sources else project.config
    if config.section_hash(*info.config_sections) != record.config_hash:
        reasons.append(f"config changed ({', '.join(info.config_sections)})")
    for upstream in info.upstream:
        current = project.upstream_hash(upstream)
        if current != record.inputs.get(upstream):
            reasons.append(f"{upstream} has new output since")
    from dlworkflow.model_refs import MODEL_SOURCE, source_hash

    recorded = record.inputs.get(MODEL_SOURCE)  # a user's network: its factory's source file
    if recorded and source_hash(project.config.model.name) != recorded:
        reasons.append("the network's source changed")
    return reasons


def _model_state(project: Workspace, state: StepState) -> StepState:
    name = project.config.model.name
    trained = project.ledger.latest("train")
    if trained and trained.summary.get("model") == name:
        state.state, state.detail = DONE, f"{name} (trained)"
    else:
        state.detail = f"model.name: {name} in dlworkflow.yaml; `dlw models` lists the choices"
    return state


def _done_detail(record: RunRecord) -> str:
    text = record.summary.get("headline")
    return str(text) if text else f"at {record.ended}"


def _next_command(project: Workspace, report: StatusReport) -> str | None:
    resume = _resume_command(project)
    if resume:
        return resume
    for s in report.steps:
        if s.ledger_step is None or s.state == DONE:
            continue
        if s.state == RUNNING:
            return f"wait: `{s.command}` is running ({s.detail})"
        if s.ledger_step == "ingest" and project.config.data.source is None:
            from dlworkflow.datasets.catalog import builtin_example

            example = builtin_example(project.config.task)
            shown = f"builtin:{example}, " if example else ""
            return f"dlw ingest SOURCE   ({shown}a folder, a file or a table)"
        if s.ledger_step == "define" and not project.config.problem.has_success_criterion():
            return f"{task_of(project.config.task).define_hint()}   (write the success criterion)"
        return s.command
    return None


def _resume_command(project: Workspace) -> str | None:
    """A train run that failed or was interrupted after writing a checkpoint is best
    continued."""
    last = project.ledger.latest("train", status=None)
    if last is None:
        return None
    if last.status == "failed":
        epoch = last.summary.get("checkpoint_epoch") or _checkpoint_epoch(project, last.id)
    elif last.process_gone():  # killed: its summary never reached the ledger
        epoch = _checkpoint_epoch(project, last.id)
    else:
        epoch = None
    return f"dlw train --resume   (continue after epoch {epoch})" if epoch else None


def _checkpoint_epoch(project: Workspace, run_id: int) -> int | None:
    """The epoch of the checkpoint a train run left (train/checkpoint.py's state.json, read
    as JSON so that status needs no torch), or None."""
    from dlworkflow.fileio import read_json

    for state_file in sorted(project.paths.train_dir.glob("run-*/checkpoint/state.json")):
        try:
            state = read_json(state_file)
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict):
            continue
        meta = state.get("meta") or {}
        if meta.get("ledger_run_id") == run_id and isinstance(state.get("epoch"), int):
            return int(state["epoch"])
    return None
