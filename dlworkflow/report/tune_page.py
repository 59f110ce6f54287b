"""reports/tune.html: one self-contained page (PNG figures inlined as data: URIs, no script,
no network) about a `dlw tune` study, drawn from the Optuna study itself: the optimisation
history (each trial's value and the best so far, pruned trials marked at the value they were
stopped on), the validation curve of every trial (where the pruner cut), the parameter
importances (Optuna's fANOVA evaluator, FanovaImportanceEvaluator, on the complete trials),
parallel coordinates (one normalised axis per parameter, lines coloured by value) and a table
of the trials (number, state, value, parameters, epochs run, duration, worker)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import atomic_write_text
from dlworkflow.plots import new_figure, png_bytes
from dlworkflow.report.html import Section, page, paragraph, png_figure, table

if TYPE_CHECKING:
    import optuna

    from dlworkflow.workspace import Workspace

REPORT_NAME = "tune.html"
IMPORTANCE_METHOD = "fANOVA (optuna.importance.FanovaImportanceEvaluator, seed 0)"
SPACE_ATTRS = ("space_source", "space_basis", "space")  # the study's user attributes (step.py)
STATE_NAMES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
MAX_PARALLEL_TRIALS = 500  # parallel coordinates draws at most this many (the best ones)


@dataclass
class TrialView:
    """What the page shows of one Optuna trial (FrozenTrial), in plain values."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    curve: list[tuple[int, float]]  # (epoch, validation value) as reported
    seconds: float | None
    worker: Any = None

    @property
    def last(self) -> float | None:
        """The value the trial ended on: its final value, else its last reported one."""
        if self.value is not None:
            return self.value
        return self.curve[-1][1] if self.curve else None

    @property
    def epochs(self) -> int:
        return len(self.curve)


def _value(t: TrialView) -> float:
    """The value of a trial the caller kept for having one."""
    assert t.value is not None
    return t.value


@dataclass
class StudyView:
    name: str
    metric: str
    maximize: bool
    trials: list[TrialView]
    distributions: dict[str, Any] = field(default_factory=dict)  # name -> optuna distribution

    def by_state(self, state: str) -> list[TrialView]:
        return [t for t in self.trials if t.state == state]

    @property
    def best(self) -> TrialView | None:
        done = [t for t in self.by_state("COMPLETE") if t.value is not None]
        if not done:
            return None
        return (max if self.maximize else min)(done, key=_value)

    def counts(self) -> dict[str, int]:
        out = {s: len(self.by_state(s)) for s in STATE_NAMES}
        return {k: v for k, v in out.items() if v or k in ("COMPLETE", "PRUNED", "FAIL")}


def study_view(study: optuna.Study, metric: str | None = None) -> StudyView:
    """The study's trials as plain values (reads the storage once)."""
    from optuna.study import StudyDirection

    trials, distributions = [], {}
    for t in study.get_trials(deepcopy=False):
        distributions.update(t.distributions)
        curve = sorted(
            (int(k), float(v))
            for k, v in t.intermediate_values.items()
            if v is not None and math.isfinite(v)
        )
        value = t.value if t.value is not None and math.isfinite(t.value) else None
        seconds = t.duration.total_seconds() if t.duration is not None else None
        worker = t.user_attrs.get("pid", t.user_attrs.get("worker"))
        trials.append(
            TrialView(t.number, t.state.name, value, dict(t.params), curve, seconds, worker)
        )
    attrs = study.user_attrs
    return StudyView(
        name=study.study_name,
        metric=str(metric or attrs.get("metric") or "validation metric"),
        maximize=study.direction == StudyDirection.MAXIMIZE,
        trials=sorted(trials, key=lambda t: t.number),
        distributions=distributions,
    )


# ---- numbers ------------------------------------------------------------------------------
def best_so_far(view: StudyView) -> list[tuple[int, float]]:
    """(trial number, best complete value up to and including it) for each complete trial on."""
    out: list[tuple[int, float]] = []
    best: float | None = None
    for t in view.trials:
        if t.state == "COMPLETE" and t.value is not None:
            better = best is None or (t.value > best if view.maximize else t.value < best)
            best = t.value if better else best
        if best is not None:
            out.append((t.number, best))
    return out


def importances(study: optuna.Study) -> tuple[dict[str, float], str | None]:
    """fANOVA importance of each parameter (summing to 1) over the complete trials, or
    ({}, why) when they cannot be computed (fewer than 2 complete trials, one parameter...)."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"{len(complete)} complete trial(s): importances need at least 2"
    try:
        values = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except Exception as exc:  # e.g. a parameter with one value: the page still renders
        return {}, f"{type(exc).__name__}: {exc}"
    return {k: float(v) for k, v in values.items()}, None


def axis_position(value: Any, dist: Any, values: list[Any]) -> float | None:
    """`value` on a 0..1 axis: the distribution's range (log scale for log distributions),
    categorical choices evenly spaced; the observed range when no distribution is known."""
    if value is None:
        return None
    choices = getattr(dist, "choices", None)
    if choices is not None:
        index = (
            [repr(c) for c in choices].index(repr(value))
            if repr(value) in [repr(c) for c in choices]
            else 0
        )
        return index / max(1, len(choices) - 1) if len(choices) > 1 else 0.5
    low, high = getattr(dist, "low", None), getattr(dist, "high", None)
    if low is None or high is None:
        numeric = [float(v) for v in values if isinstance(v, (int, float))]
        if not numeric or not isinstance(value, (int, float)):
            return 0.5
        low, high = min(numeric), max(numeric)
    log = bool(getattr(dist, "log", False)) and low > 0 and value > 0
    a, b, x = (math.log(low), math.log(high), math.log(value)) if log else (low, high, value)
    return 0.5 if b == a else min(1.0, max(0.0, (x - a) / (b - a)))


def fmt_param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def fmt_value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# ---- figures ------------------------------------------------------------------------------
def history_png(view: StudyView) -> bytes | None:
    """Left: each trial's value by trial number (pruned trials as crosses at the value they
    were stopped on, failed ones on the axis) and the best so far. Right: every trial's
    validation curve per epoch, pruned ones dashed."""
    if not view.trials:
        return None
    fig = new_figure(10.0, 3.6)
    hist, curves = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    done = [t for t in view.by_state("COMPLETE") if t.value is not None]
    pruned = [t for t in view.by_state("PRUNED") if t.last is not None]
    if done:
        hist.scatter(
            [t.number for t in done],
            [t.value for t in done],
            s=22,
            color="C0",
            label="complete",
            zorder=3,
        )
    if pruned:
        hist.scatter(
            [t.number for t in pruned],
            [t.last for t in pruned],
            s=28,
            marker="x",
            color="C3",
            label="pruned (last value)",
            zorder=3,
        )
    best = best_so_far(view)
    if best:
        hist.step(
            [b[0] for b in best],
            [b[1] for b in best],
            where="post",
            color="C2",
            label="best so far",
        )
    hist.set_xlabel("trial")
    hist.set_ylabel(f"validation {view.metric}")
    hist.set_title("optimisation history", fontsize=10)
    hist.legend(fontsize=8)
    for t in view.trials:
        if len(t.curve) < 1:
            continue
        style = "--" if t.state == "PRUNED" else "-"
        color = "C3" if t.state == "PRUNED" else "C0"
        curves.plot(
            [c[0] for c in t.curve],
            [c[1] for c in t.curve],
            style,
            color=color,
            alpha=0.6,
            marker="o",
            markersize=2.5,
            linewidth=1,
        )
    from matplotlib.ticker import MaxNLocator

    for ax in (hist, curves):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_xlabel("epoch")
    curves.set_title("validation per epoch (pruned dashed, red)", fontsize=10)
    return png_bytes(fig)


def importance_png(values: dict[str, float]) -> bytes | None:
    if not values:
        return None
    names = sorted(values, key=lambda k: values[k])
    fig = new_figure(7.0, max(1.8, 0.4 * len(names) + 1.0))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), [values[n] for n in names], color="C0")
    ax.set_yticks(list(range(len(names))))
    ax.set_yticklabels(names, fontsize=9)
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("importance (share of the variance of the value, fANOVA)")
    ax.set_title("parameter importances", fontsize=10)
    return png_bytes(fig)


def _parallel_axes(view: StudyView, trials: list[TrialView]) -> list[str]:
    names = sorted({k for t in trials for k in t.params})
    return [n for n in names if n in view.distributions] + [
        n for n in names if n not in view.distributions
    ]


def parallel_png(view: StudyView) -> bytes | None:
    """One vertical axis per parameter (0..1 over its range, log where sampled on a log
    scale, categories evenly spaced) and the value last; a line per trial, coloured by its
    value (complete trials; pruned ones grey)."""
    trials = [t for t in view.trials if t.state in ("COMPLETE", "PRUNED") and t.params]
    names = _parallel_axes(view, trials)
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    if not names or not done:
        return None
    done = sorted(done, key=_value, reverse=view.maximize)[:MAX_PARALLEL_TRIALS]
    values = [_value(t) for t in done]
    vlow, vhigh = min(values), max(values)
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    cmap, norm = colormaps["viridis"], Normalize(vlow, vhigh if vhigh > vlow else vlow + 1e-9)
    fig = new_figure(max(6.0, 1.6 * (len(names) + 1) + 1.5), 4.0)
    ax = fig.add_subplot()
    observed = {n: [t.params.get(n) for t in trials] for n in names}
    x = list(range(len(names) + 1))

    def ys(t: TrialView) -> list[float]:
        pos = [
            axis_position(t.params.get(n), view.distributions.get(n), observed[n]) for n in names
        ]
        last = t.last
        v = None if last is None else (0.5 if vhigh == vlow else (last - vlow) / (vhigh - vlow))
        return [math.nan if p is None else p for p in pos] + [
            math.nan if v is None else min(1.0, max(0.0, v))
        ]

    for t in view.by_state("PRUNED"):
        if t.params:
            ax.plot(x, ys(t), color="0.75", linewidth=0.8, linestyle="--", zorder=1)
    for t in sorted(done, key=_value, reverse=not view.maximize):  # best on top
        ax.plot(x, ys(t), color=cmap(norm(_value(t))), linewidth=1.4, alpha=0.9, zorder=2)
    _label_axes(ax, view, names, observed, (vlow, vhigh))
    from matplotlib.cm import ScalarMappable

    fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02, label=f"validation {view.metric}"
    )
    ax.set_title(
        "parallel coordinates (each axis normalised to its range; pruned grey)", fontsize=10
    )
    return png_bytes(fig)


def _label_axes(
    ax: Any,
    view: StudyView,
    names: list[str],
    observed: dict[str, list[Any]],
    value_range: tuple[float, float],
) -> None:
    for i in range(len(names) + 1):
        ax.axvline(i, color="0.3", linewidth=0.8, zorder=0)
    for i, name in enumerate(names):
        dist = view.distributions.get(name)
        choices = getattr(dist, "choices", None)
        if choices is not None:
            for j, choice in enumerate(choices):
                y = j / max(1, len(choices) - 1) if len(choices) > 1 else 0.5
                ax.text(i + 0.04, y, fmt_param(choice)[:14], fontsize=7, va="center")
            continue
        low = getattr(dist, "low", None)
        high = getattr(dist, "high", None)
        if low is None:
            numeric = [v for v in observed[name] if isinstance(v, (int, float))]
            low, high = (min(numeric), max(numeric)) if numeric else (None, None)
        ax.text(i + 0.04, 0.0, fmt_param(low), fontsize=7, va="bottom")
        ax.text(i + 0.04, 1.0, fmt_param(high), fontsize=7, va="top")
    ax.text(len(names) + 0.04, 0.0, f"{value_range[0]:.3f}", fontsize=7, va="bottom")
    ax.text(len(names) + 0.04, 1.0, f"{value_range[1]:.3f}", fontsize=7, va="top")
    ax.set_xticks(list(range(len(names) + 1)))
    ax.set_xticklabels([n.replace(".", ".\n", 1) for n in names] + [view.metric], fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(names) + 0.6)


# ---- page ---------------------------------------------------------------------------------
def summary_section(
    view: StudyView, study_db: str | None, searched: dict[str, Any] | None = None
) -> Section:
    """searched: the study's user attributes space_source, space_basis and space (step.py)."""
    counts = view.counts()
    best = view.best
    rows = [
        ("study", view.name),
        ("direction", "maximise" if view.maximize else "minimise"),
        (
            "trials",
            f"{len(view.trials)} ("
            + ", ".join(f"{k.lower()} {v}" for k, v in counts.items())
            + ")",
        ),
        (f"best validation {view.metric}", fmt_value(best.value) if best else "n/a"),
        ("best trial", best.number if best else "n/a"),
        ("epochs trained (all trials)", sum(t.epochs for t in view.trials)),
        ("trial time (all trials)", f"{sum(t.seconds or 0.0 for t in view.trials):.1f} s"),
    ]
    if study_db:
        rows.append(("storage", study_db))
    searched = searched or {}
    if searched.get("space_basis"):
        rows.append(("search space", searched["space_basis"]))
    body = [table(None, rows)]
    body.append(_space_table(searched))
    if best is not None:
        body.append("<h3>Best parameters</h3>")
        body.append(
            table(
                ["parameter", "value"], [(k, fmt_param(v)) for k, v in sorted(best.params.items())]
            )
        )
        body.append(
            paragraph(
                "Write them into dlworkflow.yaml with `dlw tune --apply`, then "
                "train the final model with `dlw train`."
            )
        )
    body.append(
        paragraph(
            "Every trial trained on the train split and was scored on the "
            "validation split only; the sealed test set was not read."
        )
    )
    return Section("summary", "Study", "".join(body))


def _space_table(searched: dict[str, Any]) -> str:
    """The searched space, and whether it was tune.space or the default one."""
    space = searched.get("space") or {}
    if not space:
        return ""
    if searched.get("space_source") == "default":
        intro = (
            "tune.space in dlworkflow.yaml is empty, so the default search space of the "
            "model and its training strategy was searched (dlworkflow/train/tune/space.py; "
            "`dlw config show` lists it; write your own under tune.space to search others):"
        )
    else:
        intro = "The search space, tune.space of dlworkflow.yaml:"
    rows = [
        (
            key,
            spec.get("type", ""),
            ", ".join(fmt_param(c) for c in spec.get("choices") or [])
            or f"{fmt_param(spec.get('low'))} .. {fmt_param(spec.get('high'))}",
        )
        for key, spec in space.items()
    ]
    return "<h3>Search space</h3>" + paragraph(intro) + table(["parameter", "type", "range"], rows)


def figures_sections(view: StudyView, study: optuna.Study) -> list[Section]:
    sections = []
    png = history_png(view)
    sections.append(
        Section(
            "history",
            "Optimisation history",
            png_figure(
                png,
                f"Left: validation {view.metric} of each trial and the best so far; pruned "
                "trials are crosses at the value they were stopped on. Right: the validation "
                "curve of each trial, pruned ones dashed.",
            )
            if png
            else paragraph("No trial has run yet."),
        )
    )
    values, why = importances(study)
    png = importance_png(values)
    body = (
        png_figure(
            png,
            f"Importance of each parameter for the validation {view.metric}: "
            f"{IMPORTANCE_METHOD} over the complete trials.",
        )
        + table(["parameter", "importance"], [(k, f"{v:.3f}") for k, v in values.items()])
        if png
        else paragraph(f"Importances not available: {why}.")
    )
    sections.append(Section("importances", "Parameter importances", body))
    png = parallel_png(view)
    sections.append(
        Section(
            "parallel",
            "Parallel coordinates",
            png_figure(
                png,
                "Each line is a trial; each axis a parameter normalised to its search range "
                "(log scale where sampled log-uniformly), the value last.",
            )
            if png
            else paragraph("Parallel coordinates need a complete trial with parameters."),
        )
    )
    return sections


def trials_section(view: StudyView) -> Section:
    names = _parallel_axes(view, view.trials)
    rows = []
    for t in view.trials:
        rows.append(
            (
                t.number,
                t.state.lower(),
                fmt_value(t.value if t.value is not None else t.last),
                *[fmt_param(t.params.get(n, "")) for n in names],
                t.epochs,
                "n/a" if t.seconds is None else f"{t.seconds:.1f}",
                "" if t.worker is None else t.worker,
            )
        )
    header = [
        "trial",
        "state",
        f"validation {view.metric}",
        *names,
        "epochs run",
        "seconds",
        "worker",
    ]
    note = paragraph(
        "A pruned trial's value is the last one it reported before the pruner stopped it."
    )
    return Section("trials", "Trials", note + table(header, rows))


def tune_html(
    study: optuna.Study, *, title: str, metric: str | None = None, study_db: str | None = None
) -> str:
    """The page for `study` (an optuna.Study), as a string."""
    view = study_view(study, metric)
    attrs = study.user_attrs
    sections = [
        summary_section(view, study_db, {k: attrs.get(k) for k in SPACE_ATTRS}),
        *figures_sections(view, study),
        trials_section(view),
    ]
    best = view.best
    subtitle = (
        f"{len(view.trials)} trials; best validation {view.metric} "
        f"{fmt_value(best.value) if best else 'n/a'}"
    )
    return page(title, subtitle, sections)


def write_tune_report(
    project: Workspace, study: optuna.Study, *, metric: str | None = None
) -> Path:
    """reports/tune.html for `study`; returns its path (written atomically)."""
    cfg = project.config
    metric = metric or study.user_attrs.get("metric") or cfg.problem.primary_metric or "accuracy"
    storage = project.paths.state / "tune" / "study.db"  # study.study_db(project)
    text = tune_html(
        study,
        title=f"{cfg.name}: hyperparameter search",
        metric=str(metric),
        study_db=str(storage.relative_to(project.root)) if storage.exists() else None,
    )
    path = project.paths.reports / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


__all__ = [
    "REPORT_NAME",
    "IMPORTANCE_METHOD",
    "StudyView",
    "TrialView",
    "importances",
    "study_view",
    "tune_html",
    "write_tune_report",
]
