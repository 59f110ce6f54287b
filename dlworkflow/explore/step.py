"""`dlw explore`: step 3 of the workflow, an EDA report with a trust summary first."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dlworkflow.explore.gather import Stages, gather
from dlworkflow.explore.pixels import PixelReader
from dlworkflow.explore.records import write_records
from dlworkflow.explore.report import render_report
from dlworkflow.explore.result import ExploreResult
from dlworkflow.explore.samples import SampleView
from dlworkflow.explore.targets import target_kind
from dlworkflow.explore.trust import warnings_for
from dlworkflow.fileio import atomic_write_text, sha256_file
from dlworkflow.store import (
    SplitInfo,
    read_assignments,
    read_dataset_info,
    read_manifest,
    read_quarantine,
    read_split_info,
)
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.explore.trust import Warning
    from dlworkflow.workspace import Workspace

REPORT_FILE = "eda.html"
TEST_PURPOSE = "dlw explore --include-test: exploratory analysis of the test set"


def explore(
    project: Workspace, *, include_test: bool = False, progress: bool = True
) -> ExploreResult:
    """Explore the ingested data and write reports/eda.html (trust summary first).

    After `dlw split` it explores the train and validation rows only: the sealed test set (and
    the fresh slices of `dlw retrain`) stays out. include_test (`dlw explore --include-test`):
    the test set too, read through the seal (`dlworkflow.store.sealed`), the read logged in
    the ledger with its purpose, and the report says so."""
    from dlworkflow.progress import progress_bar

    started = time.perf_counter()
    manifest = read_manifest(project)
    quarantine = read_quarantine(project)
    info = read_dataset_info(project)
    split = _split_state(project)
    inputs = {
        "ingest": project.upstream_hash("ingest") or "",
        "split": project.upstream_hash("split") or "",
    }
    if include_test and split is not None:
        from dlworkflow.store.sealed import EXPLORE_INPUT

        inputs[EXPLORE_INPUT] = split[1].seal_hash  # the sealed reader looks for this entry
    path = project.paths.reports / REPORT_FILE
    with project.step("explore", inputs=inputs) as run:
        scope: list[str] = []
        assignments = held_out = None
        if split is not None:
            manifest, assignments, held_out, scope = _scope(
                project, manifest, split[0], include_test=include_test
            )
        reader = PixelReader(project)
        with progress_bar(transient=True, disable=not progress) as bar:
            stages = Stages(bar)
            ev = gather(
                project,
                manifest,
                quarantine,
                info,
                stages,
                reader,
                assignments=assignments,
                held_out=held_out,
            )
            for line in scope:
                ev.note("overview", line)
            stages.start("writing the report")
            view = SampleView(
                manifest,
                project.config.task,
                reader if task_of(project.config.task).modality == "image" else None,
                drawn=_drawn(ev),
            )
            cfg = project.config.explore
            warnings = warnings_for(ev)
            text = render_report(
                ev,
                warnings,
                view,
                name=project.config.name,
                grid_per_class=cfg.grid_per_class,
                distance=cfg.near_duplicate_distance,
                seed=project.config.seed,
                exclude_ids=ev.test_ids,
            )
        atomic_write_text(path, text)
        write_records(project.paths.reports, ev)  # reports/explore/records/*.csv (dlw ui)
        result = _result(ev, warnings, report=str(path), seconds=time.perf_counter() - started)
        run.outputs = {"hash": sha256_file(path), "report": str(path)}
        run.summary = {
            "headline": f"{result.headline}; report {path.name}",
            "warnings": [w.line() for w in warnings],
            "n_samples": result.n_samples,
            "imbalance_ratio": (
                result.imbalance_ratio if result.imbalance_ratio == result.imbalance_ratio else None
            ),
            "label_issues": result.label_issues,
            "label_checked": result.label_checked,
            "embedded": result.embedded,
            "embedded_cached": result.embedded_cached,
            "near_searched": result.near_searched,
        }
        if split is not None:
            run.summary["test_set"] = "included (read logged)" if include_test else "left out"
        if ev.target is not None:
            run.summary["target"] = ev.target.summary()
        for key, found in (("series", ev.series), ("audio", ev.audio)):
            if found is not None:
                run.summary[key] = found.summary()
    return result


def _drawn(ev: Evidence) -> Callable[[str, Any], str | None] | None:
    """How a series or a clip is drawn on a sample tile (None for the other modalities)."""
    if ev.series is not None:
        from dlworkflow.explore.series_view import tile_drawer

        return tile_drawer(ev.series)
    if ev.audio is not None:
        from dlworkflow.explore.audio_view import tile_drawer as clip_drawer

        return clip_drawer(ev.audio)
    return None


def _split_state(project: Workspace) -> tuple[pd.DataFrame, SplitInfo] | None:
    """The assignment (sample_id, split: no labels) and the split's info, if a split exists."""
    if not (project.paths.split_dir / "split.json").is_file():
        return None
    return read_assignments(project), read_split_info(project)


def _scope(
    project: Workspace,
    manifest: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    include_test: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """The rows explore may look at after a split: train, validation and samples ingested since
    the split (not assigned yet); the test set only through the seal, when asked. Returns the
    rows, their assignment, the sealed rows left out (sample_id, split, content_hash, group:
    no label, for the leakage check) and the report's notes on what was left out."""
    import pandas as pd

    from dlworkflow.store.splits import is_sealed

    ids = manifest["sample_id"].astype(str)
    split_of = dict(zip(assignments["sample_id"].astype(str), assignments["split"].astype(str)))
    sealed = ids.map(lambda s: is_sealed(split_of.get(s, ""))).astype(bool)
    is_test = ids.map(lambda s: split_of.get(s) == "test").astype(bool)
    rows = manifest[~sealed]
    left_out = sealed & ~is_test if include_test else sealed
    columns = [c for c in ("sample_id", "content_hash", "group") if c in manifest.columns]
    held_out = manifest.loc[left_out, columns].assign(split=ids[left_out].map(split_of).to_numpy())
    n_test, n_fresh = int(is_test.sum()), int((sealed & ~is_test).sum())
    notes = []
    if include_test and n_test:
        from dlworkflow.store.sealed import open_test_set

        test_rows = open_test_set(project, purpose=TEST_PURPOSE)
        order = {s: i for i, s in enumerate(ids)}
        rows = pd.concat([rows, test_rows[list(manifest.columns)]], ignore_index=True)
        rows = rows.iloc[rows["sample_id"].astype(str).map(order).argsort()]
        notes.append(
            f"This report includes the sealed test set ({len(test_rows):,} samples, "
            "`dlw explore --include-test`): the read is logged in the ledger with its purpose, "
            "and the test set no longer counts as unseen by whoever reads this report."
        )
    elif n_test:
        notes.append(
            f"Train and validation only: the sealed test set ({n_test:,} samples) is left out "
            "(`dlw explore --include-test` includes it; the read is logged in the ledger)."
        )
    if n_fresh:
        notes.append(
            f"The sealed fresh slices of `dlw retrain` ({n_fresh:,} samples) are left out."
        )
    rows = rows.reset_index(drop=True)
    kept = set(rows["sample_id"].astype(str))
    table = assignments[assignments["sample_id"].astype(str).isin(kept)].reset_index(drop=True)
    return rows, table, held_out.reset_index(drop=True), notes


def _result(ev: Evidence, warnings: list[Warning], *, report: str, seconds: float) -> ExploreResult:
    li = ev.label_issues
    single = ev.target is None  # classification: the overview's classes are the target
    return ExploreResult(
        report=report,
        n_samples=ev.overview.n_samples,
        n_classes=(  # dense labels are all distinct: count the classes they name
            len(task_of(ev.task).target_counts(dict(ev.overview.class_counts)))
            if task_of(ev.task).dense
            else len(ev.overview.classes)
        ),
        imbalance_ratio=(
            ev.overview.imbalance_ratio
            if single
            else float(getattr(ev.target, "imbalance_ratio", float("nan")))
        ),
        exact_groups=ev.exact.n_groups,
        exact_conflicting=ev.exact.n_conflicting,
        near_pairs=ev.near.n_groups if ev.near is not None else None,
        near_conflicting=ev.near.n_conflicting if ev.near is not None else None,
        n_outliers=(
            len(ev.images.blank) + len(ev.images.saturated) if ev.images is not None else None
        ),
        label_issues=len(li.candidates) if li is not None else None,
        label_checked=li.n_checked if li is not None else None,
        seconds=seconds,
        warnings=warnings,
        class_counts=dict(ev.overview.class_counts) if single else {},
        target_rows=[] if single else target_kind(ev.task).key_numbers(ev),
        embedded=len(ev.map.xy) if ev.map is not None else None,
        embedded_cached=ev.map.n_cached if ev.map is not None else 0,
        near_searched=ev.near.n_searched if ev.near is not None else None,
    )
