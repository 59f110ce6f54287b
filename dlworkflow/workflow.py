"""Whole-workflow commands: `dlw run` (every stale step in order) and `dlw demo`."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.demo_plans import DemoPlan, demo_plan
from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_write_text
from dlworkflow.results import StepResult
from dlworkflow.status import DONE, project_status

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

DEMO_MARKER = ".dlw/demo-project"
DEMO_TIMES = ".dlw/demo-times.json"  # the demo's time per step (bench/demo_steps.py reads it)
# `dlw demo`'s data, problem and settings per task: dlworkflow/demo_plans.py
WORKFLOW_ORDER = ("define", "ingest", "explore", "split", "train", "test", "report")
# `dlw demo --tune`: a short study of the default search space after the test (nothing is
# applied): a few 1-epoch trials, no new one started after DEMO_TUNE's timeout
DEMO_TUNE = {"tune.trials": 4, "tune.epochs": 1, "tune.timeout_s": 20.0}


@dataclass
class StepTimes(StepResult):
    """Wall seconds per step of a whole-workflow run, in the order they ran; `other` is the
    rest of the run (creating the project, status checks, printing the results). `cpu`: the
    CPU seconds of each step (this process and its children), steadier on a busy machine."""

    steps: list[tuple[str, float]] = field(default_factory=list)
    total: float = 0.0
    cpu: list[float] = field(default_factory=list)

    @property
    def other(self) -> float:
        return max(0.0, self.total - sum(s for _, s in self.steps))

    def title(self) -> str:
        return "time per step (wall seconds; CPU seconds)"

    def rows(self) -> list[tuple[str, Any]]:
        cpu = self.cpu if len(self.cpu) == len(self.steps) else [None] * len(self.steps)
        rows: list[tuple[str, Any]] = [
            (name, f"{s:6.1f}" + (f"   cpu {c:6.1f}" if c is not None else ""))
            for (name, s), c in zip(self.steps, cpu)
        ]
        return rows + [("other", f"{self.other:6.1f}"), ("total", f"{self.total:6.1f}")]

    def record(self) -> dict[str, Any]:
        return {
            "steps": [[name, round(s, 3)] for name, s in self.steps],
            "cpu": [round(c, 3) for c in self.cpu],
            "other": round(self.other, 3),
            "total": round(self.total, 3),
        }


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class _Clock:
    """Runs steps, times each, and hands each result to `on_result` (not timed)."""

    def __init__(self, on_result: Callable[[Any], None] | None) -> None:
        self.on_result = on_result
        self.started = time.perf_counter()
        self.times = StepTimes()
        self.results: list[Any] = []

    def __call__(self, name: str, action: Callable[[], Any]) -> Any:
        start, cpu = time.perf_counter(), _cpu_seconds()
        result = action()
        self.times.steps.append((name, time.perf_counter() - start))
        self.times.cpu.append(_cpu_seconds() - cpu)
        self.results.append(result)
        if self.on_result:
            self.on_result(result)
        return result

    def stop(self) -> StepTimes:
        self.times.total = time.perf_counter() - self.started
        return self.times


def run_stale(
    project: Workspace,
    *,
    on_result: Callable[[Any], None] | None = None,
    progress: bool = True,
    deploy: bool = False,
    until: str | None = None,
    clock: _Clock | None = None,
) -> list[Any]:
    """Run, in workflow order, every step that is not done or is stale. deploy: export a
    model that has just passed its test (before the report, which then shows it). until:
    stop after that step. clock: time the steps on it (the demo's table)."""
    clock = clock or _Clock(on_result)
    first = len(clock.results)
    for name in WORKFLOW_ORDER:  # through the step table (steps.py RUNNERS)
        if project_status(project).state_of(name) != DONE:
            result = clock(name, partial(project.run_step, name, progress=progress))
            if deploy and name == "test" and result.verdict.passed:  # then deploy: export
                clock("export", lambda: project.run_step("export"))  # PASS -> champion
        if name == until:
            break
    return clock.results[first:]


def demo(
    init: Callable[..., Workspace],
    folder: str | Path = "dlw-demo",
    *,
    epochs: int | None = None,
    progress: bool = True,
    task: str = "image-classification",
    on_result: Callable[[Any], None] | None = None,
    tune: bool = False,
) -> tuple[Workspace, list[Any]]:
    """A new project on real data of `task` (demo_plans.py; MNIST digits by default), through
    all nine steps, end to end: steps 1-7 with the export of a PASS model; step 9 (monitoring
    data from another source, retraining on it: champion vs challenger); then every step that
    the retrain made stale (explore: the data changed) and step 8, the report, written once
    from the records of all of them. tune: after the test, a short `dlw tune` study
    (DEMO_TUNE) of the default search space; its best parameters are not applied.

    Returns the project and the step results, in order, then the StepTimes (the time per
    step, also written to .dlw/demo-times.json; not passed to `on_result`)."""
    plan = demo_plan(task)
    clock = _Clock(on_result)
    root = Path(folder).resolve()
    _clear_previous_demo(root)
    project = init(root, task=plan.task, name=plan.name)  # Project.init
    (root / DEMO_MARKER).write_text("created by `dlw demo`; safe to delete\n")
    updates: dict[str, Any] = {"data.source": plan.write_source(root), **plan.settings}
    if epochs is not None:
        updates["train.epochs"] = epochs
    if tune:
        updates.update(DEMO_TUNE)
    project.update_config(updates)
    clock("define", lambda: project.run_step("define", **plan.problem))
    _commit_spec(project, clock)  # a git repository with the spec committed (not timed)
    tracking_ready = _prepare_tracking(project)
    run_stale(project, progress=progress, until="split", clock=clock)
    tracking_ready()
    run_stale(project, progress=progress, deploy=True, until="test", clock=clock)
    if tune and project_status(project).state_of("train") == DONE:
        clock("tune", partial(demo_tune, project, progress=progress))
    if project_status(project).state_of("test") == DONE and _has_champion(project):
        maintain_demo(project, progress=progress, clock=clock, plan=plan)
    run_stale(project, progress=progress, clock=clock)  # explore again, then the report
    times = clock.stop()
    atomic_write_text(root / DEMO_TIMES, json.dumps(times.record(), indent=1) + "\n")
    return project, [*clock.results, times]


def demo_tune(project: Workspace, *, progress: bool = True) -> Any:
    """`dlw tune` as the demo runs it: the study of the project's search space (the default
    one for its model and strategy when tune.space is empty), reports/tune.html, no --apply."""
    from dlworkflow.report.tune_page import write_tune_report

    return project.run_step("tune", apply=False, progress=progress, write_report=write_tune_report)


def maintain_demo(
    project: Workspace,
    *,
    on_result: Callable[[Any], None] | None = None,
    progress: bool = True,
    clock: _Clock | None = None,
    plan: DemoPlan | None = None,
) -> list[Any]:
    """Step 9 of the demo: data from another source arrives (for MNIST: scikit-learn's 8x8
    UCI digits, like a new scanner); `dlw monitor` flags the drift (with the plan's labels:
    and compares the live metric with the test estimate), `dlw retrain` trains a challenger
    on it as fresh labelled data and promotes it only if it beats the champion on the same
    sealed rows. A plan with a later batch then monitors that (labelled, never trained on)
    against the champion the retrain left serving."""
    plan = plan or demo_plan(project.config.task)
    clock = clock or _Clock(on_result)
    first = len(clock.results)
    holder: list[Path] = []

    def monitor(write: Callable[[Path], Path]) -> Any:  # the data arrives, then is monitored
        holder.append(write(project.root))
        labels = plan.write_labels(holder[-1]) if plan.write_labels else None
        inputs = plan.monitor_inputs(holder[-1]) if plan.monitor_inputs else holder[-1]
        return project.run_step("monitor", inputs=inputs, labels=labels)

    def retrain() -> Any:  # on the first batch, as fresh labelled data
        source = plan.retrain_source(holder[0]) if plan.retrain_source else holder[0]
        return project.run_step("retrain", str(source), progress=progress)

    clock("monitor", partial(monitor, plan.write_incoming))
    clock("retrain", retrain)
    if plan.write_later is not None and _has_champion(project):
        clock("monitor", partial(monitor, plan.write_later))
    return clock.results[first:]


@dataclass
class SpecInGit(StepResult):
    """The demo project as a git repository: dlworkflow.yaml committed before training, so
    each train run records the commit its spec came from (`dlw audit`: model_specs_reviewed)."""

    state: str  # committed, "git not installed", "git failed: ..."
    commit: str | None = None

    def title(self) -> str:
        return "model spec in git"

    def rows(self) -> list[tuple[str, Any]]:
        if self.commit:
            return [("dlworkflow.yaml", f"committed at {self.commit[:12]} (git repository)")]
        return [("dlworkflow.yaml", f"not committed: {self.state}; the demo goes on without git")]


#: The demo's .gitignore: what the workflow writes stays out of git (.dlw/ has its own).
DEMO_GITIGNORE = """\
# written by dlw demo: data, tracking, reports and exported models stay out of git;
# dlworkflow.yaml (the model spec and every setting) is committed
/data/
/incoming/
/reports/
/models/
/mlartifacts/
/mlruns.db
"""


def _commit_spec(project: Workspace, clock: _Clock) -> None:
    """Make the demo project a git repository and commit dlworkflow.yaml (with its schema
    and a .gitignore for the generated folders), as a scripted user would before training;
    without git the demo says so and goes on. Only the demo commits: dlworkflow never
    commits a user's files."""
    from dlworkflow import vcs

    atomic_write_text(project.root / ".gitignore", DEMO_GITIGNORE)
    names = [".gitignore", "dlworkflow.yaml", "dlworkflow.schema.json"]  # (editors' schema)
    names = [n for n in names if (project.root / n).is_file()]
    done = vcs.init_and_commit(project.root, names, "dlw demo: the model spec")
    if clock.on_result is not None:
        clock.on_result(SpecInGit(state=done["state"], commit=done["commit"]))


def _prepare_tracking(project: Workspace) -> Callable[[], None]:
    """Get the project's MLflow store ready while ingest and explore run. A new mlruns.db is
    created by a few dozen schema migrations, seconds of Python: in a thread they would take
    the interpreter from the steps, so a child process creates the store on the other core.
    A thread imports MLflow meanwhile, waits for the child, then opens the store (MLflow
    keeps the store per tracking URI, so `dlw train` finds it ready). Returns a function that
    waits for it (call it before training); an error is left for the train step to report."""
    import contextlib
    import subprocess
    import sys
    import threading

    child = None
    if project.config.tracking.uri is None and not project.paths.mlflow_db.exists():
        child = subprocess.Popen(  # noqa: S603 (this interpreter, this package, fixed code)
            [
                sys.executable,
                "-c",
                "import sys; from dlworkflow.train.tracking import "
                "create_store; create_store(sys.argv[1])",
                project.paths.mlflow_db_uri,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def prepare() -> None:
        with contextlib.suppress(Exception):  # train opens it again and says what is wrong
            from dlworkflow.train import tracking

            tracking.import_mlflow()  # while the child migrates
            if child is not None:
                child.wait()
            tracking.open_client(project)

    thread = threading.Thread(target=prepare, name="dlw-mlflow-store", daemon=True)
    thread.start()
    return thread.join


def demo_verdicts(results: list[Any]) -> list[Any]:
    """The test verdicts among a demo's results (exit code 3 when the last one FAILed)."""
    from dlworkflow.evaluate import TestResult

    return [r for r in results if isinstance(r, TestResult)]


def _has_champion(project: Workspace) -> bool:
    from dlworkflow.runtime.versions import champion

    return champion(project.root) is not None


def _clear_previous_demo(root: Path) -> None:
    if not root.exists() or not any(root.iterdir()):
        return
    if (root / DEMO_MARKER).is_file():
        shutil.rmtree(root)
        return
    raise DlwError(
        f"{root} exists and is not an earlier demo project.",
        expected="a new or empty folder (or one made by `dlw demo`)",
        received=f"a folder with {sum(1 for _ in root.iterdir())} entries",
        fix="pass another folder: `dlw demo DIR`",
    )
