"""The tune study page's data: the project's Optuna study (`dlw tune`, .dlw/tune/study.db),
read through report/tune_page.py's study_view (the numbers reports/tune.html shows).

Which study: the one the last `dlw tune` recorded in the ledger (its summary names it), else
the newest one in the file (a study stopped before its ledger row). The SQLite file is opened
read-only (`mode=ro`), each read a short transaction, and the engine is closed after: the page
never holds a lock a running `dlw tune` waits for, and never creates or migrates the file.
The view is cached per study and per state of the file (size and modification time of the
database and its journal), so a reload reads nothing when no trial has changed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.report.tune_page import StudyView, best_so_far, fmt_param, study_view
from dlworkflow.train.tune.study import study_db
from dlworkflow.ui.paging import paged
from dlworkflow.ui.svg import Chart, Series, line_chart

if TYPE_CHECKING:
    from dlworkflow.project import Project

PAGE_SIZE = 50
COMMAND = "dlw tune --trials 20"
MLFLOW_ATTR = "mlflow_run_id"  # the trial's user attribute (train/tune/trial.py note())
_CACHE: dict[tuple[Any, ...], tuple[StudyView, dict[int, str], int]] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    value: float | None
    params: list[tuple[str, str]]
    seconds: float | None
    epochs: int
    pruned_at: int | None  # the epoch a pruned trial was stopped after
    mlflow_run_id: str | None
    best: bool


@dataclass
class StudyPage:
    page: int
    note: str | None = None  # why there is no study to show
    command: str = COMMAND
    name: str = ""
    storage: str = ""
    metric: str = ""
    maximize: bool = True
    n_trials: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    best: TrialRow | None = None
    rows: list[TrialRow] = field(default_factory=list)
    has_next: bool = False
    history: Chart | None = None
    other_studies: int = 0


def study_page(project: Project, page: int = 1, size: int = PAGE_SIZE) -> StudyPage:
    result = StudyPage(page=page)
    db = study_db(project)
    result.storage = str(db.relative_to(project.root)) if db.is_relative_to(project.root) else ""
    if not db.is_file():
        result.note = "No tuning study yet."
        return result
    recorded = project.ledger.latest("tune")
    summary = (recorded.summary or {}) if recorded else {}
    wanted = str(summary.get("study") or "")
    metric = str(summary.get("metric") or project.config.problem.primary_metric or "accuracy")
    try:
        loaded = _load(db, wanted, metric)
    except Exception as exc:  # not a study file, or a schema this optuna cannot read
        first = str(exc).splitlines()[0] if str(exc) else ""
        result.note = f"The study file could not be read ({type(exc).__name__}: {first[:200]})."
        return result
    if loaded is None:
        result.note = "The study file has no study yet (a `dlw tune` may be starting)."
        return result
    view, mlflow_ids, n_studies = loaded
    result.other_studies = n_studies - 1
    best = view.best
    rows = [_row(view, t, mlflow_ids, best.number if best else None) for t in view.trials]
    result.name, result.metric, result.maximize = view.name, view.metric, view.maximize
    result.n_trials, result.counts = len(rows), view.counts()
    result.best = next((r for r in rows if r.best), None)
    shown = paged(rows, page, size)
    result.rows, result.has_next = shown["items"], shown["has_next"]
    result.history = history_chart(view)
    return result


def _row(view: StudyView, t: Any, mlflow_ids: dict[int, str], best: int | None) -> TrialRow:
    value = t.value if t.value is not None else t.last
    return TrialRow(
        number=t.number,
        state=t.state.lower(),
        value=value,
        params=[(k, fmt_param(v)) for k, v in sorted(t.params.items())],
        seconds=t.seconds,
        epochs=t.epochs,
        pruned_at=t.curve[-1][0] if t.state == "PRUNED" and t.curve else None,
        mlflow_run_id=mlflow_ids.get(t.number),
        best=t.number == best,
    )


def history_chart(view: StudyView) -> Chart:
    """Each complete trial's value, each pruned trial's last value (crosses), and the best so
    far, by trial number."""
    done = [(t.number, t.value) for t in view.by_state("COMPLETE") if t.value is not None]
    pruned = [(t.number, t.last) for t in view.by_state("PRUNED") if t.last is not None]
    series = [
        Series(
            "best so far",
            [(float(n), float(v)) for n, v in best_so_far(view)],
            markers=False,
            step=True,
            colour="#009e73",
        ),
        Series("complete trial", [(float(n), float(v)) for n, v in done], line=False),
        Series(
            "pruned (last value)",
            [(float(n), float(v)) for n, v in pruned],
            line=False,
            marker="cross",
            colour="#d55e00",
        ),
    ]
    return line_chart(
        series,
        x_label="trial",
        y_label=f"validation {view.metric}",
        title="optimisation history",
        chart_id="study-history",
    )


def _state(db: Path) -> tuple[Any, ...]:
    out: list[Any] = []
    for path in (db, db.with_name(db.name + "-journal"), db.with_name(db.name + "-wal")):
        try:
            st = path.stat()
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [None, None]
    return tuple(out)


def _load(db: Path, wanted: str, metric: str) -> tuple[StudyView, dict[int, str], int] | None:
    """(the study's view, trial number -> MLflow run id, studies in the file), or None."""
    key = (str(db), wanted, metric, *_state(db))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///file:{db}?mode=ro&uri=true",
        skip_compatibility_check=True,
        skip_table_creation=True,
    )
    try:
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        if not summaries:
            return None
        names = [s.study_name for s in summaries]
        name = wanted if wanted in names else _newest(summaries)
        study = optuna.load_study(study_name=name, storage=storage)
        view = study_view(study, metric)
        mlflow_ids = {
            t.number: str(t.user_attrs[MLFLOW_ATTR])
            for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get(MLFLOW_ATTR)
        }
    finally:
        storage.engine.dispose()
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (view, mlflow_ids, len(summaries))
    return view, mlflow_ids, len(summaries)


def _newest(summaries: list[Any]) -> str:
    def started(s: Any) -> float:
        return s.datetime_start.timestamp() if s.datetime_start else 0.0

    return str(max(summaries, key=started).study_name)
