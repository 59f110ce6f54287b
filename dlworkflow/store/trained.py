"""The pointer to the trained model the next steps use (`.dlw/train/best.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import StepOrderError
from dlworkflow.fileio import atomic_write_json, read_json

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace


def _pointer(project: Workspace) -> Path:
    return project.paths.train_dir / "best.json"


def write_trained_pointer(project: Workspace, pointer: dict[str, Any]) -> None:
    atomic_write_json(_pointer(project), pointer)


def read_trained_pointer(project: Workspace) -> dict[str, Any]:
    """{"folder": model folder, "run_id": ledger run, "mlflow_run_id": ..., ...}."""
    path = _pointer(project)
    if not path.is_file():
        raise StepOrderError(
            "There is no trained model in this project yet.",
            expected=str(path),
            received="none",
            fix="run `dlw train` first",
        )
    return read_json(path)


def trained_meta(project: Workspace) -> dict[str, Any] | None:
    """model.json of the trained model, or None when there is none (or it cannot be read).
    The folder is found relative to the project first, so a moved project still finds it."""
    try:
        pointer = read_trained_pointer(project)
        relative = pointer.get("folder_in_project")
        folder = project.root / relative if relative else Path(pointer["folder"])
        return read_json(folder / "model.json")
    except (StepOrderError, OSError, ValueError, KeyError, TypeError):
        return None
