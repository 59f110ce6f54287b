"""The catalogue of built-in datasets: real data that arrives inside installed packages.

Each entry knows how to write itself once into a folder of the project (`materialise`), as a
source that `dlw ingest` reads like any user source: a folder of class sub-folders of images,
or a table (CSV / Parquet) with path, text or feature columns and a label column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def write_parquet_source(folder: Path, name: str, table: object) -> Path:
    """folder/<name>.parquet written atomically from a DataFrame; the ingest source path."""
    from dlworkflow.fileio import atomic_write_with

    target = folder / f"{name}.parquet"
    atomic_write_with(target, lambda path: table.to_parquet(path, index=False))  # type: ignore[attr-defined]
    return target
