"""`dlw explore`: step 3 of the workflow, an EDA report with a trust summary first."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from dlworkflow.explore.gather import Stages, gather
from dlworkflow.explore.pixels import PixelReader
from dlworkflow.explore.report import render_report
from dlworkflow.explore.result import ExploreResult
from dlworkflow.explore.samples import SampleView
from dlworkflow.explore.targets import target_kind
from dlworkflow.explore.trust import warnings_for
from dlworkflow.fileio import atomic_write_text, sha256_file
from dlworkflow.store import read_dataset_info, read_manifest, read_quarantine
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.explore.trust import Warning
    from dlworkflow.workspace import Workspace

REPORT_FILE = "eda.html"


def explore(project: Workspace, *, progress: bool = True) -> ExploreResult:
    """Explore the ingested data and write reports/eda.html (trust summary first)."""
    from rich.progress import Progress

    started = time.perf_counter()
    manifest = read_manifest(project)
    quarantine = read_quarantine(project)
    info = read_dataset_info(project)
    inputs = {
        "ingest": project.upstream_hash("ingest") or "",
        "split": project.upstream_hash("split") or "",
    }
    path = project.paths.reports / REPORT_FILE
    with project.step("explore", inputs=inputs) as run:
        reader = PixelReader(project)
        with Progress(transient=True, disable=not progress) as bar:
            stages = Stages(bar)
            ev = gather(project, manifest, quarantine, info, stages, reader)
            stages.start("writing the report")
            view = SampleView(
                manifest,
                project.config.task,
                reader if task_of(project.config.task).modality == "image" else None,
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
        }
        if ev.target is not None:
            run.summary["target"] = ev.target.summary()
    return result


def _result(ev: Evidence, warnings: list[Warning], *, report: str, seconds: float) -> ExploreResult:
    li = ev.label_issues
    single = ev.target is None  # classification: the overview's classes are the target
    return ExploreResult(
        report=report,
        n_samples=ev.overview.n_samples,
        n_classes=len(ev.overview.classes),
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
    )
