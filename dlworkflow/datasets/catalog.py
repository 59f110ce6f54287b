"""The catalogue of built-in datasets: real data that arrives inside installed packages.

Each entry knows how to write itself once into a folder of the project (`materialise`), as a
source that `dlw ingest` reads like any user source: a folder of class sub-folders of images,
or a table (CSV / Parquet) with path, text or feature columns and a label column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlworkflow.registry import Registry


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    task: str  # image-classification | text-classification | tabular-classification
    description: str
    n_samples: int
    size: str  # e.g. "28x28", "text", "30 features"
    licence: str
    source: str
    package: str  # where the data comes from (pip or Debian package)
    materialise: Callable[[Path], Path]  # write into the folder; return the ingest source path
    redistributable: bool = True
    # installed package data the materialised source's paths point into (read in place)
    reads_from: Callable[[], Path] | None = None
    # config keys the dataset needs, set by its ingest where unset (trees: data.tiles)
    settings: Mapping[str, Any] = field(default_factory=dict)


BUILTINS: Registry[BuiltinDataset] = Registry("built-in dataset")


def get_builtin(name: str) -> BuiltinDataset:
    return BUILTINS.get(name)


def list_builtins() -> list[BuiltinDataset]:
    return [BUILTINS.get(name) for name in BUILTINS.names()]


#: the built-in a hint names when a task has several (else the first of its task by name)
HINT_PREFERRED = ("mnist5k", "gunpoint", "sonic-pi")


def builtin_example(task: str) -> str | None:
    """The name of a built-in dataset of `task` for hints (`dlw ingest builtin:NAME`), None
    when the catalogue has none for the task."""
    import dlworkflow.datasets  # noqa: F401  (registers the built-ins)

    names = [d.name for d in list_builtins() if d.task == task]
    preferred = [n for n in HINT_PREFERRED if n in names]
    found = preferred or names
    return found[0] if found else None


def ingest_hint(task: str) -> str:
    """`dlw ingest builtin:NAME` of the task's example built-in, else `dlw ingest SOURCE`."""
    name = builtin_example(task)
    return f"dlw ingest builtin:{name}" if name else "dlw ingest SOURCE"


def write_parquet_source(folder: Path, name: str, table: object) -> Path:
    """folder/<name>.parquet written atomically from a DataFrame; the ingest source path."""
    from dlworkflow.fileio import atomic_write_with

    target = folder / f"{name}.parquet"
    atomic_write_with(target, lambda path: table.to_parquet(path, index=False))  # type: ignore[attr-defined]
    return target


def write_csv_source(
    folder: Path, name: str, columns: list[str], rows: Iterable[Mapping[str, Any]], card: str
) -> Path:
    """folder/DATASET.md (the card), then folder/<name> written atomically as a CSV of the
    rows under `columns` (header first, "\\n" line ends); the ingest source path."""
    import csv
    import io

    from dlworkflow.fileio import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / "DATASET.md", card)
    target = folder / name
    atomic_write_text(target, buffer.getvalue())
    return target
