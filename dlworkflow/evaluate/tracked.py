"""`dlw evaluate` and `dlw test` as MLflow runs, beside the train and tune runs, so that
`mlflow ui` (and the runs page of `dlw ui`) shows them too.

One run per call, in the project's experiment: named "evaluate val" (or "evaluate train") and
"test"; tagged with the step (dlw.step), its ledger run, and the evaluated model (the MLflow
run and the ledger run that trained it, its weights' sha256, the exported versions of those
weights when there are any: dlw.model_versions); params: the split, the dataset
version, the model, the primary metric (and for test the target and the gate); metrics: every
metric of the report as `<split>_<metric>` (train's own names are val_*), with its bootstrap
interval as `<split>_<metric>_ci_low` and `_ci_high`, and n; artifacts: metrics.json (the
whole report) and the report's few summary figures, never per-sample images.

A project without its MLflow store (tracking.uri null and no mlruns.db: a model trained
elsewhere) gets no run and no store. A tracking store that cannot be reached costs the MLflow
run (the result's table says why; the ledger summary's mlflow_run_id is null), never the
evaluation or the test read.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DlwError
from dlworkflow.store import tracking

if TYPE_CHECKING:
    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.workspace import Workspace

EVALUATED_RUN_TAG = "dlw.evaluated_mlflow_run"  # the train run whose model was evaluated
VERSIONS_TAG = "dlw.model_versions"  # the exported versions of the evaluated weights ("1,3")
CI_SUFFIXES = ("_ci_low", "_ci_high")
_KEY = re.compile(r"[^A-Za-z0-9_.\- /]")  # what MLflow accepts in a metric's name


class TrackingError(DlwError):
    """The MLflow store refused an evaluate or test run."""


@dataclass(frozen=True)
class Logged:
    """The MLflow run of an evaluate or test call, or why there is none."""

    run_id: str | None
    note: str = ""

    def row(self) -> tuple[str, str]:
        return ("MLflow run", self.run_id or f"not logged: {self.note}")


def model_versions(project: Workspace, weights_sha256: str) -> list[int]:
    """The exported versions (models/v<N>) of these weights: what `dlw export` shipped."""
    if not weights_sha256:
        return []
    from dlworkflow.runtime.versions import versions

    return [
        int(m["version"])
        for m in versions(project.root)
        if (m.get("trained") or {}).get("weights_sha256") == weights_sha256 and "version" in m
    ]


def no_store(project: Workspace) -> bool:
    """The project's own store (tracking.uri null) does not exist: `dlw train` creates it.
    Evaluating a model trained elsewhere does not create one (and pay its migrations)."""
    return project.config.tracking.uri is None and not project.paths.mlflow_db.is_file()


def warm_up(project: Workspace) -> threading.Thread | None:
    """Import mlflow and open the project's store in a thread while the step evaluates (a
    second or more in a fresh process); log_step_run waits for it. Errors are left for
    log_step_run to meet and report."""

    def work() -> None:
        with contextlib.suppress(Exception):  # log_step_run opens it again and says why
            tracking.open_client(project, error=TrackingError)

    if no_store(project):
        return None
    thread = threading.Thread(target=work, name="dlw-mlflow-warm-up", daemon=True)
    thread.start()
    return thread


def report_metrics(report: dict[str, Any], split: str) -> dict[str, float]:
    """`<split>_<metric>` (and its interval) for every defined metric of the report, and n;
    a value that is not a finite number (undefined, or a per-class list) is left out."""
    out: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            out[_KEY.sub("_", key)] = float(value)

    put(f"{split}_n", report.get("n"))
    for name, m in (report.get("metrics") or {}).items():
        if isinstance(m, dict):
            put(f"{split}_{name}", m.get("value"))
            put(f"{split}_{name}{CI_SUFFIXES[0]}", m.get("low"))
            put(f"{split}_{name}{CI_SUFFIXES[1]}", m.get("high"))
    return {k: v for k, v in out.items() if abs(v) != float("inf")}


def log_step_run(
    project: Workspace,
    *,
    step: str,
    split: str,
    report: dict[str, Any],
    meta: ModelMeta,
    ledger_run_id: int | None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    warmed: threading.Thread | None = None,
) -> Logged:
    """One FINISHED MLflow run for an evaluate (step "evaluate") or test (step "test") call;
    warmed: warm_up's thread, waited for first."""
    if warmed is not None:
        warmed.join()
    if no_store(project):
        return Logged(None, "no MLflow store in the project yet (`dlw train` creates it)")
    run_tags = {
        tracking.STEP_TAG: step,
        "dlw.split": split,
        EVALUATED_RUN_TAG: str(meta.get("mlflow_run_id") or ""),
        "dlw.evaluated_ledger_run": str(meta.get("ledger_run_id") or ""),
        "dlw.weights_sha256": str(meta.get("weights_sha256") or ""),
        **(tags or {}),
    }
    if ledger_run_id is not None:
        run_tags[tracking.LEDGER_TAG] = str(ledger_run_id)
    exported = model_versions(project, str(meta.get("weights_sha256") or ""))
    if exported:
        run_tags[VERSIONS_TAG] = ",".join(map(str, exported))
    run_params = {
        "split": split,
        "data.dataset_version": meta.get("dataset_version", ""),
        "data.split_hash": meta.get("split_hash", ""),
        "model.name": meta.get("name", ""),
        "metric": report.get("primary_metric", ""),
        **(params or {}),
    }
    folder = project.paths.reports / "evaluate" / split
    files = [folder / "metrics.json"]
    figures = report.get("figures") or {}
    files += [project.root / p for p in figures.values() if isinstance(p, str)]
    name = "test" if step == "test" else f"evaluate {split}"
    try:
        with tracking.open_run(
            project, tracking.RunLog, run_name=name, tags=run_tags, error=TrackingError
        ) as run:
            run.log_all(
                {k: v for k, v in run_params.items() if v not in (None, "")},
                {**report_metrics(report, split), **(metrics or {})},
            )
            run.log_artifacts([f for f in files if Path(f).is_file()], artifact_path="report")
        return Logged(run.run_id)
    except DlwError as exc:
        return Logged(None, exc.what + (f" ({exc.received})" if exc.received else ""))
    except Exception as exc:  # an artifact store that refuses a file: the step still stands
        return Logged(None, f"{type(exc).__name__}: {exc}")
