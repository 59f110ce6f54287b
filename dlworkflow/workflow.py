"""Whole-workflow commands: `dlw run` (every stale step in order) and `dlw demo`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DlwError
from dlworkflow.status import DONE

if TYPE_CHECKING:
    from dlworkflow.project import Project

DEMO_MARKER = ".dlw/demo-project"
DEMO_INCOMING = "incoming/scanner-b"  # step 9: digits from another source (a new scanner)
DEMO_PROBLEM = {
    "objective": "Read handwritten digits (0-9) from 28x28 grayscale scans, so that "
    "numeric form fields can be captured without manual typing.",
    "metric": "accuracy",
    "target": 0.95,
    "max_latency_ms": 50.0,
    "max_model_size_mb": 5.0,
    "constituencies": ["data-entry team (users)", "operations lead (decides on deployment)"],
    "assumptions": ["the 5,000 MNIST digits represent the scans seen in production",
                    "labels are correct"],
}


def run_stale(project: Project, *, on_result: Callable[[Any], None] | None = None,
              progress: bool = True, deploy: bool = False) -> list[Any]:
    """Run, in workflow order, every step that is not done or is stale. deploy: export a
    model that has just passed its test (before the report, which then shows it)."""
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("define", project.define),
        ("ingest", lambda: project.ingest(progress=progress)),
        ("explore", lambda: project.explore(progress=progress)),
        ("split", project.split),
        ("train", lambda: project.train(progress=progress)),
        ("test", project.test),
        ("report", project.report),
    ]
    results = []
    for name, action in steps:
        if project.status().state_of(name) == DONE:
            continue
        result = action()
        results.append(result)
        if on_result:
            on_result(result)
        if deploy and name == "test" and result.verdict.passed:  # then deploy: export
            exported = project.export()  # ONNX + parity check; the PASS model is champion
            results.append(exported)
            if on_result:
                on_result(exported)
    return results


def demo(project_type: type[Project], folder: str | Path = "dlw-demo", *,
         epochs: int | None = None, progress: bool = True,
         on_result: Callable[[Any], None] | None = None) -> tuple[Project, list[Any]]:
    """A new project on real MNIST digits, through all nine steps, end to end: steps 1-8,
    export of the PASS model, then monitoring and retraining on digits from another source."""
    root = Path(folder).resolve()
    _clear_previous_demo(root)
    project = project_type.init(root, task="image-classification", name="mnist-demo")
    (root / DEMO_MARKER).write_text("created by `dlw demo`; safe to delete\n")
    updates: dict[str, Any] = {"data.source": "builtin:mnist5k"}
    if epochs is not None:
        updates["train.epochs"] = epochs
    project.update_config(updates)
    defined = project.define(**DEMO_PROBLEM)
    if on_result:
        on_result(defined)
    results = [defined, *run_stale(project, on_result=on_result, progress=progress,
                                   deploy=True)]
    if project.status().state_of("test") == DONE and _has_champion(project):
        results += maintain_demo(project, on_result=on_result, progress=progress)
    return project, results


def maintain_demo(project: Project, *, on_result: Callable[[Any], None] | None = None,
                  progress: bool = True) -> list[Any]:
    """Step 9 of the demo: digits from another source arrive (scikit-learn's 8x8 UCI digits,
    like a new scanner); `dlw monitor` flags the drift, `dlw retrain` trains a challenger on
    them as fresh labelled data and promotes it only if it beats the champion on the same
    sealed rows; the report is written again to show it."""
    from dlworkflow.datasets import get_builtin

    incoming = project.root / DEMO_INCOMING
    if not incoming.is_dir():
        get_builtin("digits").materialise(incoming)
    results = []
    for action in (lambda: project.monitor(inputs=incoming),
                   lambda: project.retrain(str(incoming), progress=progress),
                   project.report):
        result = action()
        results.append(result)
        if on_result:
            on_result(result)
    return results


def _has_champion(project: Project) -> bool:
    from dlworkflow.deploy.runtime.versions import champion

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
