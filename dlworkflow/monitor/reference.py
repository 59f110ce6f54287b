"""The reference of `dlw monitor`: the champion's prediction records on the validation split.

Validation, because train predictions are over-confident (the model has seen them) and the
test set is sealed. The records are made exactly as the server makes its log
(`observe.prepare` + `observe.infer` + `observe.records`, through the exported ONNX model), on
a seeded subsample of at most `monitor.reference_samples` validation samples, and cached as

    .dlw/monitor/reference-v<N>-<split hash[:12]>.jsonl   one record per line
    .dlw/monitor/reference-v<N>-<split hash[:12]>.json    what it was built from (written last)

A new champion or a new split gives a new file name; a cache whose .json does not match the
model file, the sample cap, the seed or the format is rebuilt. Tabular records also keep the
raw feature values (`values`), so `--inputs` tables can be compared feature by feature. Only
the newest few reference files are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError, StepOrderError
from dlworkflow.fileio import atomic_path, atomic_write_json, read_json

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.runtime.bundle import Bundle
    from dlworkflow.workspace import Workspace

FORMAT = 2  # 2: records carry the task's prediction fields (regression, multi-label)
BATCH = 256
KEEP = 6  # reference files (pairs) kept in .dlw/monitor/
# fewer usable validation predictions than this is no reference; under 200 the monitor
# notes that its tests have little power (a four-image detection set holds ~12 validation tiles)
MIN_REFERENCE = 10


@dataclass
class Reference:
    records: list[dict[str, Any]]
    path: Path
    built: bool  # True: built now; False: read from the cache
    n_validation: int  # validation samples available (before the cap)
    skipped: int  # validation samples the model could not take (missing files, ...)


def monitor_dir(project: Workspace) -> Path:
    return project.paths.state / "monitor"


def reference_path(project: Workspace, version: int, split_hash: str) -> Path:
    return monitor_dir(project) / f"reference-v{int(version)}-{split_hash[:12]}.jsonl"


def _expected_meta(project: Workspace, bundle: Bundle, split_hash: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": int(bundle.version),
        "split_hash": split_hash,
        "onnx_sha256": (bundle.metadata.get("files") or {}).get("model.onnx"),
        "reference_samples": int(project.config.monitor.reference_samples),
        "seed": int(project.config.seed),
    }


def load_reference(project: Workspace, bundle: Bundle) -> Reference:
    """The cached reference of this champion and split, or a new one (built and cached)."""
    from dlworkflow.store import read_split_info

    split_hash = read_split_info(project).hash
    path = reference_path(project, bundle.version, split_hash)
    expected = _expected_meta(project, bundle, split_hash)
    cached = _read_cache(path, expected)
    if cached is not None:
        records, meta = cached
        return Reference(
            records,
            path,
            False,
            int(meta.get("n_validation", len(records))),
            int(meta.get("skipped", 0)),
        )
    records, n_val, skipped = build_records(project, bundle)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    atomic_write_json(
        path.with_suffix(".json"),
        {
            **expected,
            "n": len(records),
            "n_validation": n_val,
            "skipped": skipped,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    _prune(path.parent, keep=path)
    return Reference(records, path, True, n_val, skipped)


def _read_cache(
    path: Path, expected: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        return None
    try:
        meta = read_json(meta_path)
        if any(meta.get(k) != v for k, v in expected.items()):
            return None
        with open(path, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError):
        return None
    return (records, meta) if len(records) == meta.get("n") else None


def _prune(folder: Path, *, keep: Path) -> None:
    files = sorted(folder.glob("reference-v*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP:]:
        if old != keep:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)


def validation_rows(project: Workspace) -> tuple[pd.DataFrame, int]:
    """The seeded subsample of the validation split (at most monitor.reference_samples rows,
    in sample-id order) and the split's size."""
    from dlworkflow.store import load_split

    rows = load_split(project, "val")
    if len(rows) == 0:
        raise StepOrderError(
            "The validation split is empty: there is no reference to compare live data with.",
            expected="a validation split with samples",
            received="0 validation samples",
            fix="re-split with a validation fraction > 0 (`split:` in "
            "dlworkflow.yaml), retrain and export",
        )
    cap = int(project.config.monitor.reference_samples)
    n = len(rows)
    if n > cap:
        rng = np.random.default_rng(int(project.config.seed))
        rows = rows.iloc[np.sort(rng.choice(n, size=cap, replace=False))]
    return rows.sort_values("sample_id").reset_index(drop=True), n


def build_records(project: Workspace, bundle: Bundle) -> tuple[list[dict[str, Any]], int, int]:
    """(records, validation size, samples skipped) through the champion bundle."""
    from dlworkflow.runtime.bundle import InputError
    from dlworkflow.runtime.observe import infer, prepare, records, rows_to_values

    rows, n_val = validation_rows(project)
    out: list[dict[str, Any]] = []
    skipped = 0
    for start in range(0, len(rows), BATCH):
        chunk = rows.iloc[start : start + BATCH]
        chunk, missing = _readable(bundle, chunk)
        skipped += missing
        if len(chunk) == 0:
            continue
        values = rows_to_values(bundle, chunk)
        try:
            x, summaries = prepare(bundle, values)
        except InputError as exc:
            raise DlwError(
                f"The champion cannot take its own validation data: {exc.what}",
                received=exc.received,
                fix="export the model again (`dlw export`) from this project",
            ) from None
        probs, emb = infer(bundle, x)
        made = records(bundle, summaries, probs, emb, ids=chunk["sample_id"].astype(str).tolist())
        if bundle.modality == "tabular":
            for k, record in enumerate(made):
                record["values"] = values[k]
        out.extend(made)
    if len(out) < MIN_REFERENCE:
        raise DlwError(
            f"Only {len(out)} validation samples could be used as the reference.",
            expected=f"at least {MIN_REFERENCE}",
            received=f"{len(out)} of {len(rows)} ({skipped} unreadable)",
            fix="check that the data files are still in place (`dlw status`)"
            if skipped
            else "re-split with a larger validation fraction (`split:` in dlworkflow.yaml), "
            "retrain and export",
        )
    return out, n_val, skipped


def _readable(bundle: Bundle, chunk: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows whose file is still there (the data may have moved since the split): images,
    audio clips (read in place), series (.dlw/series/ arrays)."""
    if bundle.modality not in ("image", "audio", "sequence"):
        return chunk, 0
    present = chunk["path"].map(lambda p: Path(p).is_file())
    return chunk[present], int((~present).sum())
