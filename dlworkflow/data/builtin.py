"""Built-in datasets are written once into the project (.dlw/raw/NAME), then ingested like any
user source. User data is never copied; these are copies of package data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.datasets import get_builtin
from dlworkflow.errors import DataError
from dlworkflow.fileio import atomic_write_json, read_json

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace


def materialise(project: Workspace, name: str) -> Path:
    """The ingest source for builtin:NAME (a folder or a table file); written on first use."""
    dataset = get_builtin(name)
    if dataset.task != project.config.task:
        raise DataError(
            f"builtin:{name} is a {dataset.task} dataset, but this project's task is "
            f"{project.config.task}.",
            expected=f"task: {dataset.task}",
            received=f"task: {project.config.task}",
            fix=f"set `task: {dataset.task}` in dlworkflow.yaml (or `dlw init --task "
            f"{dataset.task}`)",
        )
    root = project.paths.raw / name
    marker = root / ".complete.json"
    if marker.is_file():
        info = read_json(marker)
        if info.get("n_samples") == dataset.n_samples and Path(info["source"]).exists():
            return Path(info["source"])
    if root.exists():
        shutil.rmtree(root)  # an interrupted earlier write: start over
    root.mkdir(parents=True)
    source = dataset.materialise(root)
    atomic_write_json(
        marker,
        {
            "n_samples": dataset.n_samples,
            "source": str(source),
            "origin": dataset.source,
            "licence": dataset.licence,
        },
    )
    return source


def builtin_settings(project: Workspace, source: str) -> dict[str, Any]:
    """The config keys builtin:NAME needs (BuiltinDataset.settings) that the project has not
    set (null): `dlw ingest builtin:trees` sets data.tiles, unless the project chose tiles."""
    from dlworkflow.datasets import BUILTINS

    name = source.removeprefix("builtin:")
    if not source.startswith("builtin:") or name not in BUILTINS:
        return {}  # an unknown name fails inside the ingest step, recorded
    dataset = get_builtin(name)
    config = project.config.model_dump()
    out = {}
    for key, value in dataset.settings.items():
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            out[key] = value
    return out


def installed_folder(project: Workspace, source: Path) -> Path | None:
    """For a built-in dataset's materialised source (.dlw/raw/NAME/...), the installed package
    folder its paths point into (read in place: BuiltinDataset.reads_from); else None."""
    from dlworkflow.datasets import BUILTINS

    raw = project.paths.raw.resolve()
    resolved = source.resolve()
    if not resolved.is_relative_to(raw) or resolved == raw:
        return None
    name = resolved.relative_to(raw).parts[0]
    reads_from = BUILTINS.get(name).reads_from if name in BUILTINS else None
    return reads_from().resolve() if reads_from is not None else None


def table_root(project: Workspace, table: Path) -> Path:
    """The folder every path of a table must lie in: a built-in dataset's installed folder
    (installed_folder), else data.root, else the table's own folder (data/tables.py)."""
    from dlworkflow.data.tables import data_root

    return installed_folder(project, table) or data_root(project.config, project.root, table)
