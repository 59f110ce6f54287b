"""The series section of the report (sequence-classification): lengths, per-channel
statistics, a class-mean curve with a 10-90% band for each class, sample plots per class,
near-duplicate series and the features of the map and the label-issue search.

Pure functions over (C, T) float arrays and manifest rows; `read_series_rows` is the one
reader (store.series.read_series on the manifest's `path`). Class curves and near
duplicates resample every series linearly to a common length, so series of different
lengths compare step for step over their whole duration.

Near duplicates: each series resampled to FINGERPRINT_STEPS steps per channel and scaled
by the data set's per-channel mean and std (a global z-normalisation: level and amplitude
count, as they do for the networks), then pairs whose RMS difference is at most NEAR_RMS
channel stds (explore.duplicates.close_vectors: no quadratic pass beyond a few thousand
series). A per-series z-normalisation was measured and left out: it makes smooth series of
one class look alike (GunPoint: 893 pairs at correlation >= 0.99, none of them copies),
while the closest distinct GunPoint series are 0.033 stds apart with the global one.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.explore.distributions import distribution
from dlworkflow.explore.render import Raw, figure, figures, fmt, heading, para, section, table
from dlworkflow.explore.trust import Warning

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.explore.duplicates import Duplicates
    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.explore.features import Features

MAX_READ = 20_000  # series read for statistics, curves and duplicates (a stratified choice)
CURVE_STEPS_MAX = 256  # class curves: the median length, at most this many steps
FINGERPRINT_STEPS = 64  # near duplicates: steps per channel of the fingerprint
FINGERPRINT_VALUES = 4_096  # ... and at most this many values a series (fewer steps)
CURVE_MEMBERS = 2_000  # series a class averaged in the class curves (a random choice)
NEAR_RMS = 0.02  # near duplicates: RMS difference in channel stds
FEATURE_STEPS = 32  # map / label-issue features: steps per channel (with statistics)
SHORT_SHARE = 0.25  # a series shorter than this share of the median length is very short
SHORT_STEPS = 4  # ... or shorter than this many steps
SHOWN_CLASSES = 12  # classes drawn in the curves and the sample plots
SHOWN_CHANNELS = 4  # channels with a class-curve figure
DRAWN_CHANNELS = 6  # channels drawn in a sample plot
SHOWN_SHORT = 20  # very short series listed
RECORDED_CHANNELS = 64  # channels whose statistics the ledger records (the report has all)
BAND = (0.1, 0.9)  # the class curves' band: these quantiles at each step
SHORTCUT_MARGIN = 0.25  # length tells the class this much better than the majority: warn
SHORTCUT_HIGH = 0.9  # ... medium when it tells it this often


@dataclass
class ChannelStat:
    name: str
    mean: float
    std: float
    minimum: float
    maximum: float


@dataclass
class ClassCurve:
    label: str
    n: int
    mean: np.ndarray  # (C, L)
    low: np.ndarray  # (C, L): the BAND[0] quantile at each step
    high: np.ndarray  # (C, L)


@dataclass
class SeriesEvidence:
    lengths: np.ndarray  # every manifest row's length (the manifest column)
    channels: dict[int, int]  # channel count -> series
    n_read: int  # series read for the statistics below
    stats: list[ChannelStat]
    curves: list[ClassCurve]
    curve_steps: int
    examples: dict[str, list[tuple[str, np.ndarray]]]  # class -> (sample id, series)
    short: list[tuple[str, str, int]]  # (sample id, label, length) of very short series
    short_limit: int
    flat: list[tuple[str, str, int]]  # (sample id, label, channel) of constant channels
    gap_share: float | None = None  # share of steps filled at ingest, if recorded
    shortcut: tuple[float, float] | None = None  # (accuracy from the length alone, majority)
    notes: list[str] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # read, by id

    @property
    def equal_lengths(self) -> bool:
        return len(self.lengths) > 0 and int(self.lengths.min()) == int(self.lengths.max())

    def summary(self) -> dict[str, Any]:
        """What the ledger records (explore's summary["series"])."""
        lengths = self.lengths
        return {
            "n_series": len(lengths),
            "length_min": int(lengths.min()) if len(lengths) else None,
            "length_median": float(np.median(lengths)) if len(lengths) else None,
            "length_max": int(lengths.max()) if len(lengths) else None,
            "channels": {str(k): v for k, v in self.channels.items()},
            "channel_stats": [s.__dict__ for s in self.stats[:RECORDED_CHANNELS]],
            "very_short": len(self.short),
            "flat_channels": len(self.flat),
            "gap_share": self.gap_share,
            "length_accuracy": self.shortcut[0] if self.shortcut else None,
        }


# --- array helpers ----------------------------------------------------------------------------


def resample(series: np.ndarray, steps: int) -> np.ndarray:
    """(C, T) -> (C, steps), linear interpolation over the whole duration."""
    a = np.asarray(series, dtype=np.float64)
    if a.shape[1] == steps:
        return a
    if a.shape[1] == 1:
        return np.repeat(a, steps, axis=1)
    where = np.linspace(0.0, a.shape[1] - 1.0, steps)
    left = np.floor(where).astype(int).clip(0, a.shape[1] - 2)
    frac = where - left
    return a[:, left] * (1.0 - frac) + a[:, left + 1] * frac


def _moments(arrays: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per-channel (mean, std, min, max) over every step of every series, one series at a
    time (memory stays that of one series); steps counted in float64."""
    channels = arrays[0].shape[0]
    total, square = np.zeros(channels), np.zeros(channels)
    low, high = np.full(channels, np.inf), np.full(channels, -np.inf)
    steps = 0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        total += a.sum(axis=1)
        square += np.square(a).sum(axis=1)
        low, high = np.minimum(low, a.min(axis=1)), np.maximum(high, a.max(axis=1))
        steps += a.shape[1]
    mean = total / steps
    return mean, np.sqrt(np.maximum(square / steps - mean**2, 0.0)), low, high


def channel_moments(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over every step of every series (std 1 where 0)."""
    mean, std, _, _ = _moments(arrays)
    return mean, np.where(std > 0, std, 1.0)


def fingerprints(arrays: list[np.ndarray], *, steps: int = FINGERPRINT_STEPS) -> np.ndarray:
    """float32 (N, C * steps): resampled, scaled by the data set's channel moments, divided
    by sqrt(C * steps) so that a Euclidean distance is an RMS difference in channel stds.
    Many channels: fewer steps, at most FINGERPRINT_VALUES values a series (8 steps least)."""
    if not arrays:
        return np.zeros((0, steps), np.float32)
    steps = max(8, min(steps, FINGERPRINT_VALUES // arrays[0].shape[0]))
    mean, std = channel_moments(arrays)
    out = np.empty((len(arrays), arrays[0].shape[0] * steps), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i] = ((resample(a, steps) - mean[:, None]) / std[:, None]).ravel()
    return out / np.float32(np.sqrt(out.shape[1]))


def channel_stats(arrays: list[np.ndarray], names: list[str]) -> list[ChannelStat]:
    mean, std, low, high = _moments(arrays)
    return [
        ChannelStat(
            name=names[c] if c < len(names) else f"channel {c}",
            mean=float(mean[c]),
            std=float(std[c]),
            minimum=float(low[c]),
            maximum=float(high[c]),
        )
        for c in range(len(mean))
    ]


def class_curves(
    arrays: list[np.ndarray], labels: np.ndarray, *, steps: int, seed: int = 0
) -> list[ClassCurve]:
    """Each class's mean curve and BAND quantiles over the first SHOWN_CHANNELS channels, the
    series resampled to `steps` (at most CURVE_MEMBERS series a class, a random choice)."""
    rng = np.random.default_rng(seed)
    curves = []
    for label in sorted(set(labels.tolist()), key=_natural)[:SHOWN_CLASSES]:
        members = np.flatnonzero(labels == label)
        if len(members) > CURVE_MEMBERS:
            members = np.sort(rng.choice(members, size=CURVE_MEMBERS, replace=False))
        stacked = np.stack([resample(arrays[i][:SHOWN_CHANNELS], steps) for i in members])
        low, high = np.quantile(stacked, BAND, axis=0)
        n = int((labels == label).sum())
        curves.append(ClassCurve(str(label), n, stacked.mean(axis=0), low, high))
    return curves


def summary_features(series: np.ndarray) -> np.ndarray:
    """Each channel's mean, std, min, max and the mean and std of its step-to-step change,
    then the log length: 6 C + 1 values."""
    a = np.asarray(series, dtype=np.float64)
    step = np.diff(a, axis=1) if a.shape[1] > 1 else np.zeros((a.shape[0], 1))
    return np.concatenate(
        [a.mean(1), a.std(1), a.min(1), a.max(1), np.abs(step).mean(1), step.std(1)]
        + [[np.log(a.shape[1])]]
    )


def series_features(
    arrays: list[np.ndarray], labels: np.ndarray | None = None, *, seed: int = 0
) -> Features:
    """Map and label-issue features, standardised: the series' shape (each resampled to
    FEATURE_STEPS steps per channel, with summary_features) or summary_features alone. With
    `labels`, the set on which a quick model is more accurate (cross-validated): the shape
    wins where the classes differ in their course (GunPoint 86% vs 78%), the statistics where
    the phase of a motion varies (BasicMotions 99% vs 46%); without, the shape."""
    from dlworkflow.explore.features import Features, _impute_standardise

    if not arrays:
        return Features(X=np.zeros((0, 1), np.float32), keep=np.zeros(0, bool), method="none")
    summary = _impute_standardise(np.stack([summary_features(a) for a in arrays]))
    shape = _impute_standardise(
        np.stack(
            [
                np.concatenate([resample(a, FEATURE_STEPS).ravel(), summary_features(a)])
                for a in arrays
            ]
        )
    )
    words = {
        "shape": f"series resampled to {FEATURE_STEPS} steps per channel with each channel's "
        "mean, std, min, max, step-to-step change and the length",
        "statistics": "each channel's mean, std, min, max and step-to-step change, and the length",
    }
    chosen, why = "shape", ""
    if labels is not None:
        scores = {
            k: quick_accuracy(X, labels, seed=seed)
            for k, X in (("shape", shape), ("statistics", summary))
        }
        if scores["statistics"] == scores["statistics"] and scores["shape"] == scores["shape"]:
            chosen = "statistics" if scores["statistics"] > scores["shape"] else "shape"
            other = "statistics" if chosen == "shape" else "shape"
            why = (
                f"; chosen over the {other} by a quick model's cross-validated accuracy "
                f"({scores[chosen]:.0%} vs {scores[other]:.0%})"
            )
    return Features(
        X=shape if chosen == "shape" else summary,
        keep=np.ones(len(arrays), dtype=bool),
        method=f"{words[chosen]} (standardised){why}",
    )


CHOICE_ROWS = 1_000  # rows of the subsample the feature choice is cross-validated on


def quick_accuracy(X: np.ndarray, labels: np.ndarray, *, seed: int) -> float:
    """3-fold accuracy of the label-issue search's quick model (PCA, then a logistic
    regression) on at most CHOICE_ROWS rows; NaN when a class has fewer than 3 rows."""
    import warnings

    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from dlworkflow.explore.features import reduce
    from dlworkflow.explore.pixels import stratified_sample

    y = np.asarray(labels).astype(str)
    rows = stratified_sample(pd.Series(y), limit=CHOICE_ROWS, seed=seed)
    X, y = X[rows], y[rows]
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < 3:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.5))
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cross_val_score(model, reduce(X, seed=seed), y, cv=folds).mean())


def sample_series_features(
    sample: pd.DataFrame, se: SeriesEvidence | None, *, seed: int = 0
) -> Features:
    """series_features of the map's subsample: the series already read, the rest read now
    (a row that does not read is left out through `keep`)."""
    known = se.arrays if se is not None else {}
    ids = sample["sample_id"].astype(str).tolist()
    missing = sample[[s not in known for s in ids]]
    arrays, ok, _ = read_series_rows(missing)
    found = {**known, **dict(zip(missing["sample_id"].astype(str)[ok].tolist(), arrays))}
    keep = np.array([s in found for s in ids], dtype=bool)
    labels = sample["label"].astype(str).to_numpy()[keep]
    features = series_features([found[s] for s, k in zip(ids, keep) if k], labels, seed=seed)
    features.keep = keep
    return features


def read_series_rows(rows: pd.DataFrame) -> tuple[list[np.ndarray], np.ndarray, dict[str, str]]:
    """The rows' series (those that read), which rows read, and why the others did not."""
    from dlworkflow.store.series import read_series

    arrays, ok, failed = [], np.zeros(len(rows), dtype=bool), {}
    for i, (sid, path) in enumerate(zip(rows["sample_id"].astype(str), rows["path"])):
        try:
            arrays.append(read_series(str(path)))
            ok[i] = True
        except (OSError, ValueError) as exc:
            failed[sid] = f"series unreadable: {exc}"
    return arrays, ok, failed


# --- evidence ---------------------------------------------------------------------------------


def series_evidence(
    manifest: pd.DataFrame,
    arrays: list[np.ndarray],
    read: np.ndarray,
    *,
    names: list[str] | None = None,
    per_class: int = 4,
    seed: int = 0,
) -> SeriesEvidence:
    """Evidence from the manifest (lengths and channel counts of every row) and the series
    of its rows `read` (a boolean mask, rows in order; `arrays` one per True)."""
    lengths = manifest["length"].to_numpy(dtype=np.int64)
    labels = manifest["label"].astype(str).to_numpy()[read]
    ids = manifest["sample_id"].astype(str).to_numpy()[read]
    median = float(np.median(lengths)) if len(lengths) else 0.0
    limit = max(SHORT_STEPS, int(SHORT_SHARE * median))
    short = [
        (str(s), str(lab), int(n))
        for s, lab, n in zip(manifest["sample_id"], manifest["label"], lengths)
        if n < limit
    ]
    ev = SeriesEvidence(
        lengths=lengths,
        channels=dict(sorted(Counter(manifest["channels"].astype(int).tolist()).items())),
        n_read=len(arrays),
        stats=[],
        curves=[],
        curve_steps=0,
        examples={},
        short=short,
        short_limit=limit,
        flat=_flat_channels(arrays, ids, labels),
        arrays=dict(zip(ids.tolist(), arrays)),
    )
    ev.shortcut = length_shortcut(lengths, manifest["label"].astype(str).to_numpy(), seed=seed)
    if "gaps_filled" in manifest.columns and lengths.sum():
        ev.gap_share = float(manifest["gaps_filled"].fillna(0).sum() / lengths.sum())
    if not arrays:
        ev.notes.append("no series could be read: statistics and curves left out")
        return ev
    ev.stats = channel_stats(arrays, names or [])
    ev.curve_steps = int(min(CURVE_STEPS_MAX, max(2, round(float(np.median(lengths[read]))))))
    ev.curves = class_curves(arrays, labels, steps=ev.curve_steps, seed=seed)
    rng = np.random.default_rng(seed)
    for curve in ev.curves[:SHOWN_CLASSES]:
        members = np.flatnonzero(labels == curve.label)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        ev.examples[curve.label] = [(str(ids[i]), arrays[i]) for i in chosen]
    return ev


def length_shortcut(
    lengths: np.ndarray, labels: np.ndarray, *, seed: int = 0
) -> tuple[float, float] | None:
    """(cross-validated accuracy of a depth-3 tree on the log length alone, the majority
    class's share), or None when the lengths do not vary or a class has < 2 samples."""
    import warnings

    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    x = np.log(np.maximum(np.asarray(lengths, dtype=np.float64), 1e-9)).reshape(-1, 1)
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2 or counts.min() < 2 or np.ptp(x) == 0:
        return None
    folds = StratifiedKFold(int(min(5, counts.min())), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(
            DecisionTreeClassifier(max_depth=3, random_state=seed), x, labels, cv=folds
        )
    return float(scores.mean()), float(counts.max() / counts.sum())


def shortcut_warning(
    shortcut: tuple[float, float] | None, *, what: str, section: str
) -> list[Warning]:
    """A warning when `what` (the length, the duration) alone tells the class."""
    if shortcut is None or shortcut[0] < shortcut[1] + SHORTCUT_MARGIN:
        return []
    accuracy, majority = shortcut
    return [
        Warning(
            "medium" if accuracy >= SHORTCUT_HIGH else "low",
            f"the {what} alone tells the class {accuracy:.0%} of the time (the largest class "
            f"is {majority:.0%})",
            f"a network can learn the {what} instead of the content: check that it is how the "
            "classes differ where the model will be used, or crop all samples alike",
            section,
        )
    ]


def _flat_channels(
    arrays: list[np.ndarray], ids: np.ndarray, labels: np.ndarray
) -> list[tuple[str, str, int]]:
    flat = []
    for sid, label, a in zip(ids, labels, arrays):
        if a.shape[1] > 1:
            flat += [(str(sid), str(label), int(c)) for c in np.flatnonzero(np.ptp(a, axis=1) == 0)]
    return flat


def series_near_duplicates(
    manifest: pd.DataFrame, arrays: list[np.ndarray], read: np.ndarray
) -> Duplicates:
    from dlworkflow.explore.duplicates import vector_duplicates

    return vector_duplicates(
        manifest,
        np.flatnonzero(read),
        fingerprints(arrays),
        radius=NEAR_RMS,
        method=(
            "Near duplicates (not identical): series resampled to "
            f"{max(8, min(FINGERPRINT_STEPS, FINGERPRINT_VALUES // _channels(arrays)))} steps "
            f"per channel whose RMS difference is at most {NEAR_RMS} of each channel's std"
        ),
    )


def _channels(arrays: list[np.ndarray]) -> int:
    return int(arrays[0].shape[0]) if arrays else 1


def series_warnings(ev: Evidence) -> list[Warning]:
    se = ev.series
    if se is None:
        return []
    out = shortcut_warning(se.shortcut, what="series length", section="series")
    if se.short:
        out.append(
            Warning(
                "low",
                f"{len(se.short)} very short series (fewer than {se.short_limit} steps; the "
                f"median is {fmt(float(np.median(se.lengths)))})",
                "look at them: a cut recording, or a class that is told by its length alone",
                "series",
            )
        )
    if se.flat:
        n = len({s for s, _, _ in se.flat})
        out.append(
            Warning(
                "medium",
                f"{n} series with a constant channel ({len(se.flat)} channels never change)",
                "check the sensor or the export: a dead channel carries no information",
                "series",
            )
        )
    return out


# --- the section ------------------------------------------------------------------------------


def series_section(ev: Evidence) -> Raw:
    se = ev.series
    assert se is not None
    parts = [para(_length_sentence(se))]
    if not se.equal_lengths:
        lengths = distribution(se.lengths, title="series length", xlabel="steps", noun="series")
        parts += [*lengths.text, figures(*lengths.figures)]
    if se.n_read < len(se.lengths):
        parts.append(
            para(
                f"Statistics, curves and near duplicates from {se.n_read:,} of the "
                f"{len(se.lengths):,} series (a stratified choice).",
                "note",
            )
        )
    parts += [heading("Statistics per channel"), _stats_table(se)]
    if se.curves:
        parts += [
            heading("Class-mean curves"),
            para(
                f"Each class's mean (line) and its {BAND[0]:.0%}-{BAND[1]:.0%} band at every "
                f"step, every series resampled to {se.curve_steps} steps; the gray dashed line "
                "is the mean of all classes."
            ),
            figures(
                *[
                    figure(_curves_png(se, c), f"class curves, channel {c}")
                    for c in range(min(SHOWN_CHANNELS, len(se.stats)))
                ]
            ),
        ]
        if len(se.stats) > SHOWN_CHANNELS:
            parts.append(para(f"Curves of the first {SHOWN_CHANNELS} channels shown.", "note"))
        n_classes = len(set(ev.manifest["label"].astype(str)))
        if n_classes > len(se.curves):
            parts.append(
                para(f"The first {len(se.curves)} of {n_classes} classes are drawn.", "note")
            )
        parts += [
            heading("Sample series per class (a fixed random choice)"),
            figure(_samples_png(se), "sample series"),
        ]
    if se.short:
        parts += [
            heading(f"Very short series (fewer than {se.short_limit} steps): {len(se.short)}"),
            table(["sample", "label", "steps"], se.short[:SHOWN_SHORT]),
        ]
    if se.flat:
        parts += [
            heading(f"Constant channels: {len(se.flat)}"),
            table(["sample", "label", "channel"], se.flat[:SHOWN_SHORT]),
        ]
    parts.append(Raw("".join(para(n, "note") for n in se.notes)))
    return section("series", "4. Series", *parts)


def _length_sentence(se: SeriesEvidence) -> str:
    n = len(se.lengths)
    channels = ", ".join(f"{k} ({v:,} series)" for k, v in se.channels.items())
    if not n:
        return "No series."
    if se.equal_lengths:
        text = f"All {n:,} series have one length: {int(se.lengths[0]):,} steps."
    else:
        q = np.quantile(se.lengths, [0.1, 0.5, 0.9])
        text = (
            f"{n:,} series of {int(se.lengths.min()):,} to {int(se.lengths.max()):,} steps "
            f"(median {fmt(float(q[1]))}; 10-90%: {fmt(float(q[0]))} to {fmt(float(q[2]))}); "
            "a batch is NaN-padded to its longest series and the networks mask the padding."
        )
    text += f" Channels: {channels}."
    if se.gap_share is not None:
        text += f" Gaps filled at ingest: {se.gap_share:.2%} of the steps."
    if se.shortcut is not None:
        text += (
            f" The length alone tells the class {se.shortcut[0]:.0%} of the time "
            f"(cross-validated depth-3 tree; the largest class is {se.shortcut[1]:.0%})."
        )
    return text


def _stats_table(se: SeriesEvidence) -> Raw:
    rows = [(s.name, fmt(s.mean), fmt(s.std), fmt(s.minimum), fmt(s.maximum)) for s in se.stats]
    return table(["channel", "mean", "std", "min", "max"], rows)


def _uri(fig: Any) -> str:
    from dlworkflow.plots import png_bytes

    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode("ascii")


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, max(1, n))
    return (n + cols - 1) // cols, cols


def _curves_png(se: SeriesEvidence, channel: int) -> str:
    from dlworkflow.plots import new_figure

    curves = se.curves[:SHOWN_CLASSES]
    rows, cols = _grid(len(curves))
    fig = new_figure(2.6 * cols, 1.9 * rows + 0.4, dpi=80)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    steps = np.arange(se.curve_steps)
    overall = np.sum([c.mean[channel] * c.n for c in curves], axis=0) / sum(c.n for c in curves)
    for ax, curve in zip(axes, curves):
        ax.fill_between(steps, curve.low[channel], curve.high[channel], alpha=0.3, lw=0)
        ax.plot(steps, curve.mean[channel], lw=1.4)
        ax.plot(steps, overall, color="#777", lw=0.8, ls="--")
        ax.set_title(f"{curve.label[:18]} ({curve.n:,})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    name = se.stats[channel].name if channel < len(se.stats) else f"channel {channel}"
    fig.suptitle(f"class means, {name}", fontsize=9)
    return _uri(fig)


def _samples_png(se: SeriesEvidence) -> str:
    from dlworkflow.plots import new_figure

    classes = list(se.examples)
    cols = max((len(v) for v in se.examples.values()), default=1)
    fig = new_figure(2.3 * cols, 1.3 * len(classes) + 0.3, dpi=70)
    axes = fig.subplots(len(classes), cols, squeeze=False)
    for r, label in enumerate(classes):
        for c in range(cols):
            ax = axes[r, c]
            ax.tick_params(labelsize=6)
            if c >= len(se.examples[label]):
                ax.set_visible(False)
                continue
            sid, a = se.examples[label][c]
            for ch in range(min(DRAWN_CHANNELS, a.shape[0])):
                ax.plot(a[ch], lw=0.9)
            ax.set_title(f"{label[:14]}: {_short(sid)}", fontsize=7)
    return _uri(fig)


def tile_drawer(se: SeriesEvidence) -> Any:
    """(sample id, manifest row) -> the series' sparkline (read again if not kept), or None."""

    def drawn(sample_id: str, row: Any) -> str | None:
        array = se.arrays.get(sample_id)
        if array is None:
            from dlworkflow.store.series import read_series

            try:
                array = read_series(str(row.get("path")))
            except (OSError, ValueError):
                return None
        return sparkline(array)

    return drawn


def sparkline(series: np.ndarray, *, width: int = 240, height: int = 80) -> str:
    """A small PNG data URI of the series (up to 3 channels, each scaled to the height), for
    sample tiles."""
    from PIL import Image, ImageDraw

    a = np.asarray(series, dtype=np.float64)[:3]
    image = Image.new("RGB", (width, height), (248, 248, 248))
    draw = ImageDraw.Draw(image)
    colours = ((31, 119, 180), (255, 127, 14), (44, 160, 44))
    x = np.linspace(1, width - 2, a.shape[1]) if a.shape[1] > 1 else np.array([width / 2])
    for ch, colour in zip(a, colours):  # each channel on its own scale (units differ)
        lo, span = float(ch.min()), float(np.ptp(ch)) or 1.0
        y = (height - 3) - (ch - lo) / span * (height - 5)
        points = list(zip(x.tolist(), y.tolist()))
        if len(points) > 1:
            draw.line(points, fill=colour, width=1)
        else:
            draw.point(points, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(sample_id: str, limit: int = 14) -> str:
    return sample_id if len(sample_id) <= limit else "…" + sample_id[-limit + 1 :]


def _natural(text: str) -> tuple[int, Any]:
    return (0, int(text)) if text.isdigit() else (1, text)
