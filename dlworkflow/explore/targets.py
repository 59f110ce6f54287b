"""The target section of the report, per target kind (the task's `kind`).

Classification: class balance (overview.py's counts, as before). Regression: the target's
distribution (describe-like numbers, skew, share of zeros, histogram) and, for tables, each
numeric feature's correlation with the target. Multi-label: support per label, label
cardinality (labels per sample), co-occurrence of label pairs, rare labels.

Each kind is a `TargetKind` in `KINDS`, keyed by `task.kind`: what it gathers, its section,
its trust-summary warnings, its key numbers and the groups that colour the map and pick the
sample grids (classes; value ranges; a sample's rarest label).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.explore import figures as fig
from dlworkflow.explore.distributions import distribution
from dlworkflow.explore.render import Raw, figure, figures, fmt, heading, para, section, table
from dlworkflow.explore.trust import MIN_CLASS_SAMPLES, Warning
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.tasks.base import Task

SKEW_WARN = 2.0  # |skewness| of a regression target worth a warning
ZEROS_WARN = 0.3  # share of zero targets worth a warning
FEW_VALUES = 10  # fewer distinct target values: perhaps a classification problem
SHOWN_PAIRS = 15  # label pairs listed in the co-occurrence table
SHOWN_CORRELATIONS = 30  # features listed with their correlation with the target
MAX_HEATMAP_LABELS = 40  # labels in the co-occurrence heat map


# --- regression -------------------------------------------------------------------------------


@dataclass
class RegressionTarget:
    values: np.ndarray  # float64, one per sample
    count: int
    mean: float
    std: float  # sample standard deviation (ddof 1, as pandas' describe)
    minimum: float
    quantiles: dict[str, float]  # "25%", "50%", "75%"
    maximum: float
    skew: float  # adjusted Fisher-Pearson (pandas' skew)
    zeros: float  # share of targets equal to 0
    distinct: int
    correlations: list[tuple[str, float, int]] = field(default_factory=list)  # feature, r, n

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            **self.quantiles,
            "max": self.maximum,
            "skew": self.skew,
            "zeros": self.zeros,
            "distinct": self.distinct,
        }


def regression_target(manifest: pd.DataFrame) -> RegressionTarget:
    import pandas as pd

    values = pd.to_numeric(manifest["label"], errors="coerce").to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    series = pd.Series(values)
    nan = float("nan")
    q = series.quantile([0.25, 0.5, 0.75]).tolist() if len(values) else [nan] * 3
    result = RegressionTarget(
        values=values,
        count=len(values),
        mean=float(series.mean()) if len(values) else nan,
        std=float(series.std()) if len(values) > 1 else nan,
        minimum=float(series.min()) if len(values) else nan,
        quantiles={"25%": float(q[0]), "50%": float(q[1]), "75%": float(q[2])},
        maximum=float(series.max()) if len(values) else nan,
        skew=float(np.asarray(series.skew(), dtype=np.float64)) if len(values) > 2 else nan,
        zeros=float((values == 0).mean()) if len(values) else nan,
        distinct=int(series.nunique()),
    )
    result.correlations = _feature_correlations(manifest)
    return result


def _feature_correlations(manifest: pd.DataFrame) -> list[tuple[str, float, int]]:
    """Pearson correlation of each numeric feature column with the target, strongest first."""
    import pandas as pd

    from dlworkflow.explore.tabular import feature_columns

    target = pd.to_numeric(manifest["label"], errors="coerce").to_numpy(dtype=np.float64)
    out = []
    for name in feature_columns(manifest):
        raw = manifest[name]
        x = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isfinite(x).sum() < 0.9 * raw.notna().sum() or not np.isfinite(x).any():
            continue  # not a numeric column
        ok = np.isfinite(x) & np.isfinite(target)
        if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(target[ok]) == 0:
            continue
        out.append((str(name)[2:], float(np.corrcoef(x[ok], target[ok])[0, 1]), int(ok.sum())))
    return sorted(out, key=lambda t: -abs(t[1]))


def _regression_section(ev: Evidence) -> Raw:
    t: RegressionTarget = ev.target
    rows = [
        ("count", fmt(t.count)),
        ("mean", fmt(t.mean, 4)),
        ("std", fmt(t.std, 4)),
        ("min", fmt(t.minimum, 4)),
    ]
    rows += [(k, fmt(v, 4)) for k, v in t.quantiles.items()]
    rows += [
        ("max", fmt(t.maximum, 4)),
        ("skew", fmt(t.skew)),
        ("share of zeros", f"{t.zeros:.1%}" if t.zeros == t.zeros else "–"),
        ("distinct values", fmt(t.distinct)),
    ]
    spread = distribution(t.values, title="target", xlabel="target value", noun="samples")
    parts = [
        para(
            "The value to predict, one number per sample. The network is trained on the "
            "standardised target (the train split's mean and standard deviation); "
            "predictions come back in these units."
        ),
        table([], rows, cls="numbers"),
        *spread.text,
        figures(*spread.figures),
    ]
    if t.correlations:
        shown = t.correlations[:SHOWN_CORRELATIONS]
        parts += [
            heading("Correlation of each numeric feature with the target (Pearson)"),
            table(
                ["feature", "correlation", "rows"], [(n, f"{r:+.3f}", fmt(k)) for n, r, k in shown]
            ),
        ]
        if len(t.correlations) > len(shown):
            parts.append(
                para(f"… {len(t.correlations) - len(shown)} weaker ones not shown.", "note")
            )
    return section("classes", "3. Target", *parts)


def _regression_warnings(ev: Evidence) -> list[Warning]:
    t: RegressionTarget = ev.target
    out = []
    if t.distinct < FEW_VALUES:
        out.append(
            Warning(
                "medium",
                f"the target takes only {t.distinct} distinct values",
                "check whether this is a classification problem "
                "(`dlw init --task ...-classification`)",
                "classes",
            )
        )
    if t.skew == t.skew and abs(t.skew) >= SKEW_WARN:
        out.append(
            Warning(
                "low",
                f"the target is strongly skewed (skew {t.skew:+.2f})",
                "RMSE is dominated by the largest values: consider predicting "
                "log(target), or judge with mae",
                "classes",
            )
        )
    if t.zeros == t.zeros and t.zeros >= ZEROS_WARN:
        out.append(
            Warning(
                "low",
                f"{t.zeros:.0%} of the targets are 0",
                "mape leaves them out; check that 0 means a value, not a missing one",
                "classes",
            )
        )
    return out


def _regression_numbers(ev: Evidence) -> list[tuple[str, str]]:
    t: RegressionTarget = ev.target
    return [
        (
            "target",
            f"mean {fmt(t.mean, 4)}, std {fmt(t.std, 4)}, range "
            f"{fmt(t.minimum, 4)} to {fmt(t.maximum, 4)}",
        )
    ]


def _regression_groups(task: Task, targets: Sequence[str]) -> list[str]:
    """Each sample's value range: the split's quantile bins, named by their ranges."""
    if not len(targets):
        return []
    strata = np.array(task.strata(list(targets)))
    values = np.array([float(t) for t in targets])
    names = {}
    for s in np.unique(strata):
        inside = values[strata == s]
        names[s] = f"{inside.min():.4g} to {inside.max():.4g}"
    return [names[s] for s in strata]


# --- multi-label ------------------------------------------------------------------------------


@dataclass
class MultiLabelTarget:
    labels: list[str]
    support: dict[str, int]  # samples carrying each label
    n_samples: int
    cardinality: float  # mean labels per sample
    cardinality_counts: dict[int, int]  # labels per sample -> samples
    distinct_sets: int
    cooccurrence: np.ndarray  # (L, L) samples carrying both labels
    pairs: list[tuple[str, str, int]]  # most frequent pairs first
    rare: list[str]  # labels with fewer than MIN_CLASS_SAMPLES samples

    @property
    def imbalance_ratio(self) -> float:
        counts = [c for c in self.support.values() if c > 0]
        return max(counts) / min(counts) if counts else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "labels": len(self.labels),
            "support": self.support,
            "cardinality": self.cardinality,
            "distinct_sets": self.distinct_sets,
            "rare": self.rare,
            "imbalance_ratio": self.imbalance_ratio,
        }


def multilabel_target(manifest: pd.DataFrame, task: Task) -> MultiLabelTarget:
    targets = manifest["label"].astype(str).tolist()
    labels = task.output_names(targets)
    y = task.encode(targets, labels)
    y = (np.nan_to_num(y) > 0.5).astype(np.int64)
    per_sample = y.sum(axis=1)
    co = y.T @ y
    pairs = [
        (labels[i], labels[j], int(co[i, j]))
        for i in range(len(labels))
        for j in range(i + 1, len(labels))
        if co[i, j]
    ]
    pairs.sort(key=lambda p: (-p[2], p[0], p[1]))
    support = {name: int(n) for name, n in zip(labels, y.sum(axis=0))}
    values, counts = np.unique(per_sample, return_counts=True)
    return MultiLabelTarget(
        labels=labels,
        support=support,
        n_samples=len(targets),
        cardinality=float(per_sample.mean()) if len(targets) else float("nan"),
        cardinality_counts={int(v): int(c) for v, c in zip(values, counts)},
        distinct_sets=len(set(targets)),
        cooccurrence=co,
        pairs=pairs,
        rare=[name for name, n in support.items() if n < MIN_CLASS_SAMPLES],
    )


def _multilabel_section(ev: Evidence) -> Raw:
    t: MultiLabelTarget = ev.target
    names, values = list(t.support), list(t.support.values())
    total = max(t.n_samples, 1)
    support = fig.bar_chart(
        names, values, title="samples per label", highlight=[n in t.rare for n in names]
    )
    card = fig.bar_chart(
        [str(k) for k in t.cardinality_counts],
        list(t.cardinality_counts.values()),
        title="labels per sample",
    )
    parts = [
        para(
            f"{len(t.labels)} labels; a sample carries {t.cardinality:.2f} on average "
            f"(label cardinality); {t.distinct_sets:,} distinct label sets. Imbalance "
            f"(most / least frequent label): {t.imbalance_ratio:.2f}."
            + (f" Rare labels (fewer than {MIN_CLASS_SAMPLES} samples) in red." if t.rare else "")
        ),
        figures(figure(support, "label support"), figure(card, "label cardinality")),
        table(
            ["label", "samples", "share of samples"],
            [(k, fmt(v), f"{v / total:.1%}") for k, v in t.support.items()],
        ),
        heading("Labels per sample"),
        table(["labels", "samples"], [(k, fmt(v)) for k, v in t.cardinality_counts.items()]),
        heading(f"Most frequent label pairs (of {len(t.pairs):,} that occur together)"),
        table(
            ["label", "label", "samples with both"],
            [(a, b, fmt(n)) for a, b, n in t.pairs[:SHOWN_PAIRS]],
        ),
    ]
    if 2 <= len(t.labels) <= MAX_HEATMAP_LABELS:
        diag = np.maximum(np.diag(t.cooccurrence), 1)
        share = t.cooccurrence / diag[:, None]  # row: P(column label | row label)
        parts.append(
            figure(
                fig.heatmap(
                    share,
                    t.labels,
                    title="co-occurrence: share of the "
                    "row label's samples that carry the column label",
                    vmin=0.0,
                    cmap="Blues",
                ),
                "label co-occurrence",
            )
        )
    parts.append(heading("Rare labels"))
    parts.append(
        para(", ".join(f"{k} ({t.support[k]})" for k in t.rare)) if t.rare else para("none", "ok")
    )
    return section("classes", "3. Labels", *parts)


def _multilabel_warnings(ev: Evidence) -> list[Warning]:
    from dlworkflow.explore.trust import imbalance_warning

    t: MultiLabelTarget = ev.target
    out = imbalance_warning(
        t.imbalance_ratio,
        "label imbalance {ratio} (most / least frequent label)",
        "judge with macro_f1 or map, which weigh every label equally",
    )
    if t.rare:
        names = ", ".join(f"{k} ({t.support[k]})" for k in t.rare[:5])
        out.append(
            Warning(
                "medium",
                f"{len(t.rare)} label{'s' if len(t.rare) > 1 else ''} "
                f"with fewer than {MIN_CLASS_SAMPLES} samples: {names}",
                "collect more samples: validation and test estimates (and the "
                "tuned thresholds) for these labels will be unreliable",
                "classes",
            )
        )
    return out


def _multilabel_numbers(ev: Evidence) -> list[tuple[str, str]]:
    t: MultiLabelTarget = ev.target
    return [
        ("labels", fmt(len(t.labels))),
        ("labels per sample", f"{t.cardinality:.2f}"),
        ("imbalance (most / least frequent label)", f"{t.imbalance_ratio:.2f}"),
    ]


def _multilabel_groups(task: Task, targets: Sequence[str]) -> list[str]:
    return task.strata(list(targets))  # the sample's rarest label


# --- classification ---------------------------------------------------------------------------


def _classification_section(ev: Evidence) -> Raw:
    from dlworkflow.explore.sections_core import classes_section

    return classes_section(ev)


def _classification_warnings(ev: Evidence) -> list[Warning]:
    from dlworkflow.explore.trust import class_warnings

    return class_warnings(ev)


def _classification_numbers(ev: Evidence) -> list[tuple[str, str]]:
    ov = ev.overview
    return [
        ("classes", fmt(len(ov.classes))),
        ("imbalance (max / min)", f"{ov.imbalance_ratio:.2f}"),
    ]


def _classification_groups(task: Task, targets: Sequence[str]) -> list[str]:
    return [str(t) for t in targets]


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetKind:
    gather: Callable[[pd.DataFrame, Task], Any]  # the target's evidence (None: overview's)
    section: Callable[[Evidence], Raw]
    warnings: Callable[[Evidence], list[Warning]]
    key_numbers: Callable[[Evidence], list[tuple[str, str]]]
    groups: Callable[[Task, Sequence[str]], list[str]]  # map colours, sample grids, text
    group_word: str  # what a group is, for headings: "class", "target range", ...
    # one target in words, for captions (a boxes label: "12 boxes (Tree 12)"); dense labels
    # are JSON, not words
    caption: Callable[[str], str] = str


KINDS: dict[str, TargetKind] = {
    "classification": TargetKind(
        gather=lambda manifest, task: None,
        section=_classification_section,
        warnings=_classification_warnings,
        key_numbers=_classification_numbers,
        groups=_classification_groups,
        group_word="class",
    ),
    "regression": TargetKind(
        gather=lambda manifest, task: regression_target(manifest),
        section=_regression_section,
        warnings=_regression_warnings,
        key_numbers=_regression_numbers,
        groups=_regression_groups,
        group_word="target range",
    ),
    "multilabel": TargetKind(
        gather=multilabel_target,
        section=_multilabel_section,
        warnings=_multilabel_warnings,
        key_numbers=_multilabel_numbers,
        groups=_multilabel_groups,
        group_word="rarest label",
    ),
    "detection": TargetKind(
        gather=lambda manifest, task: _boxes().box_target(manifest, task),
        section=lambda ev: _boxes().boxes_section(ev),
        warnings=lambda ev: _boxes().boxes_warnings(ev),
        key_numbers=lambda ev: _boxes().boxes_numbers(ev),
        groups=lambda task, targets: _boxes().boxes_groups(task, targets),
        group_word="main class",
        caption=lambda text: _boxes().box_caption(text),
    ),
    "segmentation": TargetKind(
        gather=lambda manifest, task: _masks().mask_target(manifest, task),
        section=lambda ev: _masks().masks_section(ev),
        warnings=lambda ev: _masks().masks_warnings(ev),
        key_numbers=lambda ev: _masks().masks_numbers(ev),
        groups=lambda task, targets: _masks().masks_groups(task, targets),
        group_word="main class",
        caption=lambda text: _masks().mask_caption(text),
    ),
}


def _boxes() -> Any:
    from dlworkflow.explore import boxes

    return boxes


def _masks() -> Any:
    from dlworkflow.explore import masks_view

    return masks_view


def target_kind(task: str) -> TargetKind:
    """The target kind of a task name (classification for a kind without a section here)."""
    return KINDS.get(task_of(task).kind, KINDS["classification"])


def groups(task: str, labels: Any) -> np.ndarray:
    """One display group per target (the map's colours, the sample grids, text per class)."""
    targets = [str(t) for t in labels]
    return np.array(target_kind(task).groups(task_of(task), targets), dtype=object).astype(str)
