"""reports/monitor.html: one self-contained page (PNG figures inlined as data: URIs, no script,
no network) with the headline (OK / ALERT and why), the table of checks, time series over
`monitor.buckets` time buckets with the reference level drawn as a dashed line, and the
distributions behind the prediction and out-of-distribution checks. The prediction figures
follow the task's kind (`PREDICTION_FIGURES`): classification the predicted-class shares and
the confidence; regression the predicted value (its mean over time, its histogram reference
vs live); multi-label each label's predicted rate (over time, and reference vs live);
detection and segmentation: monitor/dense_html.py."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.monitor import dense_html
from dlworkflow.monitor.drift import Drift, feature_label, label_matrix
from dlworkflow.monitor.logread import Sample
from dlworkflow.plots import new_figure, png_bytes
from dlworkflow.report.html import Section, bullet_list, esc, page, png_figure, table
from dlworkflow.runtime.observe import metadata_task
from dlworkflow.style import PALETTE, must_know

if TYPE_CHECKING:
    from collections.abc import Callable

    from dlworkflow.monitor.step import MonitorResult
    from dlworkflow.tasks.base import Task

TOP_CLASSES = 6
SERIES_FEATURES = {
    "image": ("mean", "std"),
    "text": ("chars", "unk"),
    "row": ("missing", "fields"),
    # a series' length and its first channel's level and spread (pooled: all channels')
    "series": ("length", "series_mean_0", "series_std_0", "series_mean", "series_std"),
    "audio": ("rms_dbfs", "duration_s", "centroid_hz"),
}
VERDICT_CLASS = {"OK": "PASS", "ALERT": "FAIL"}


@dataclass
class Timeline:
    x: list[Any]  # bucket centres (datetimes) or bucket numbers
    times: bool  # x holds datetimes
    n: np.ndarray
    bucket: np.ndarray  # bucket of each live record


def timeline(live: Sample, *, buckets: int) -> Timeline:
    """Equal-width time buckets over the live records (equal-count buckets in record order
    when their times span less than a second per bucket, e.g. --inputs from files written
    together: such times say nothing about when the inputs arrived)."""
    n = len(live)
    ts = live.ts
    span = float(np.nanmax(ts) - np.nanmin(ts)) if n else 0.0
    if n and span >= buckets:
        edges = np.linspace(np.nanmin(ts), np.nanmax(ts), buckets + 1)
        bucket = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, buckets - 1)
        centres = (edges[:-1] + edges[1:]) / 2
        x: list[Any] = [datetime.fromtimestamp(c, UTC) for c in centres]
        times = True
    else:
        k = max(1, min(buckets, n))
        bucket = (np.arange(n) * k) // max(n, 1)
        x, times = list(range(1, k + 1)), False
    counts = np.bincount(bucket, minlength=len(x)).astype(float)
    return Timeline(x=x, times=times, n=counts, bucket=bucket)


def _per_bucket(line: Timeline, values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Mean of `values` per bucket (NaN where a bucket has none); `where` picks records."""
    bucket = line.bucket if where is None else line.bucket[where]
    ok = np.isfinite(values)
    sums = np.bincount(bucket[ok], weights=values[ok], minlength=len(line.x))
    counts = np.bincount(bucket[ok], minlength=len(line.x))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


# ---- figures ------------------------------------------------------------------------------
def _series(
    ax: Any,
    line: Timeline,
    values: np.ndarray,
    *,
    label: str,
    reference: float | None = None,
    color: str | None = None,
) -> None:
    drawn = ax.plot(line.x, values, marker="o", markersize=3, label=label, color=color)
    if reference is not None and math.isfinite(reference):
        ax.axhline(reference, linestyle="--", linewidth=1, color=drawn[0].get_color())
    if line.times:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        ax.set_xlabel("bucket (records in arrival order)")
    ax.tick_params(labelsize=8)


def figures(
    reference: Sample, live: Sample, drift: Drift, *, buckets: int, metadata: dict[str, Any]
) -> list[tuple[str, bytes]]:
    """(caption, PNG) of every plot the data allows. The series over time only when the
    live times span at least a second per bucket (`timeline`): times closer than that, as
    of --inputs files written together, say nothing about arrival, and the records' order
    (file names, often by class) would draw a false trend."""
    if len(live) == 0:
        return []
    task, target = metadata_task(metadata)
    names = [str(c) for c in metadata.get("classes") or []]
    series, distributions = PREDICTION_FIGURES[task.kind]
    signals = input_distributions(reference, live, drift)
    first = [signals] if signals is not None else []
    finite = live.ts[np.isfinite(live.ts)]
    if len(finite) == 0 or float(finite.max() - finite.min()) < buckets:
        return [*first, distributions(reference, live, drift, names)]
    line = timeline(live, buckets=buckets)
    out = first + series(reference, live, drift, line, names)
    inputs = _inputs(reference, live, line)
    if inputs is not None:
        out.append(inputs)
    metric = _metric(live, drift, line, metadata, task, target)
    if metric is not None:
        out.append(metric)
    out.append(distributions(reference, live, drift, names))
    return out


def _class_series(
    reference: Sample, live: Sample, drift: Drift, line: Timeline, names: list[str]
) -> list[tuple[str, bytes]]:
    return [_confidence_and_ood(reference, live, drift, line), _classes(reference, live, line)]


def _class_distributions(
    reference: Sample, live: Sample, drift: Drift, names: list[str]
) -> tuple[str, bytes]:
    return _distributions(reference, live, drift)


def _value_series(
    reference: Sample, live: Sample, drift: Drift, line: Timeline, names: list[str]
) -> list[tuple[str, bytes]]:
    """Regression: the mean predicted value per bucket (and the OOD rate)."""
    if reference.value is None or live.value is None:
        return []
    fig = new_figure(8.0, 3.0)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _series(
        left,
        line,
        _per_bucket(line, live.value),
        label="live",
        reference=float(np.nanmean(reference.value)),
    )
    left.set_title("mean predicted value", fontsize=10)
    _ood_series(right, drift, line)
    return [
        (
            "Mean predicted value and out-of-distribution rate per time bucket (dashed: the "
            "reference level)",
            png_bytes(fig),
        )
    ]


def _value_distributions(
    reference: Sample, live: Sample, drift: Drift, names: list[str]
) -> tuple[str, bytes]:
    """Regression: histograms of the predicted values, reference vs live."""
    fig = new_figure(8.0, 3.0)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    if reference.value is not None and live.value is not None:
        both = np.concatenate([reference.value, live.value])
        both = both[np.isfinite(both)]
        edges = np.linspace(both.min(), both.max(), 30) if len(both) and np.ptp(both) > 0 else 10
        left.hist(reference.value, bins=edges, density=True, alpha=0.5, label="reference")
        left.hist(live.value, bins=edges, density=True, alpha=0.5, label="live")
        left.legend(fontsize=8)
    left.set_title("predicted value", fontsize=10)
    _ood_histogram(right, drift)
    for ax in (left, right):
        ax.tick_params(labelsize=8)
    return "Distributions: live against the reference", png_bytes(fig)


def _label_series(
    reference: Sample, live: Sample, drift: Drift, line: Timeline, names: list[str]
) -> list[tuple[str, bytes]]:
    """Multi-label: the predicted rate of the labels that moved most, per bucket."""
    ref, cur = label_matrix(reference, names), label_matrix(live, names)
    if not names or not len(ref) or not len(cur):
        return []
    change = np.abs(cur.mean(axis=0) - ref.mean(axis=0))
    top = np.argsort(-change, kind="stable")[:TOP_CLASSES]
    fig = new_figure(8.0, 3.0)
    ax = fig.add_subplot()
    for j in top:
        _series(
            ax,
            line,
            _per_bucket(line, cur[:, j].astype(float)),
            label=names[j][:20],
            reference=float(ref[:, j].mean()),
        )
    ax.set_ylabel("share predicted", fontsize=8)
    ax.legend(fontsize=7, ncol=min(len(top), 6), loc="upper left")
    return [
        (
            "Predicted rate per time bucket of the labels whose rate changed most (dashed: "
            "the reference rate)",
            png_bytes(fig),
        )
    ]


def _label_distributions(
    reference: Sample, live: Sample, drift: Drift, names: list[str]
) -> tuple[str, bytes]:
    """Multi-label: each label's predicted rate and mean probability, reference vs live."""
    ref, cur = label_matrix(reference, names), label_matrix(live, names)
    fig = new_figure(8.0, 3.0)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = np.arange(len(names))
    moved = set(
        next(
            (
                c.details.get("moved") or []
                for c in drift.checks
                if c.details.get("shape") == "labels"
            ),
            [],
        )
    )
    for ax, (a, b), title in (
        (
            left,
            (
                ref.mean(axis=0) if len(ref) else np.zeros(len(names)),
                cur.mean(axis=0) if len(cur) else np.zeros(len(names)),
            ),
            "predicted rate per label",
        ),
        (
            right,
            (_means(reference.probs, len(names)), _means(live.probs, len(names))),
            "mean probability per label",
        ),
    ):
        ax.bar(x - 0.2, a, width=0.4, label="reference")
        ax.bar(x + 0.2, b, width=0.4, label="live")
        ax.set_xticks(
            x, [("* " if n in moved else "") + n[:12] for n in names], rotation=90, fontsize=7
        )
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        ax.tick_params(labelsize=8)
    return (
        "Labels: live against the reference (* the labels whose predicted rate moved)",
        png_bytes(fig),
    )


def _means(probs: np.ndarray | None, k: int) -> np.ndarray:
    if probs is None or probs.ndim != 2 or probs.shape[1] != k or not len(probs):
        return np.zeros(k)
    return probs.mean(axis=0)


def _ood_series(ax: Any, drift: Drift, line: Timeline) -> None:
    if drift.ood is not None:
        flags = (drift.ood.live > drift.ood.threshold).astype(float)
        _series(
            ax,
            line,
            _per_bucket(line, flags),
            label="live",
            reference=drift.ood.reference_rate,
            color="tab:red",
        )
        ax.set_title(f"out-of-distribution rate ({drift.ood.source})", fontsize=10)


def _ood_histogram(ax: Any, drift: Drift) -> None:
    if drift.ood is None:
        return
    both = np.concatenate([drift.ood.reference, drift.ood.live])
    both = both[np.isfinite(both)]
    edges = np.linspace(both.min(), both.max(), 30) if len(both) and np.ptp(both) > 0 else 10
    ax.hist(drift.ood.reference, bins=edges, density=True, alpha=0.5, label="reference")
    ax.hist(drift.ood.live, bins=edges, density=True, alpha=0.5, label="live")
    ax.axvline(
        drift.ood.threshold, color="tab:red", linestyle="--", linewidth=1, label="OOD threshold"
    )
    ax.set_title(
        "OOD score ("
        + (
            "k-NN distance to the reference"
            if drift.ood.source == "embedding"
            else "1 - confidence"
        )
        + ")",
        fontsize=10,
    )
    ax.legend(fontsize=8)


def _confidence_and_ood(
    reference: Sample, live: Sample, drift: Drift, line: Timeline
) -> tuple[str, bytes]:
    fig = new_figure(8.0, 3.0)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _series(
        left,
        line,
        _per_bucket(line, live.confidence),
        label="live",
        reference=float(reference.confidence.mean()),
    )
    left.set_title("mean confidence", fontsize=10)
    if drift.ood is not None:
        flags = (drift.ood.live > drift.ood.threshold).astype(float)
        _series(
            right,
            line,
            _per_bucket(line, flags),
            label="live",
            reference=drift.ood.reference_rate,
            color="tab:red",
        )
        right.set_title(f"out-of-distribution rate ({drift.ood.source})", fontsize=10)
    return (
        "Mean confidence and out-of-distribution rate per time bucket (dashed: the "
        "reference level)",
        png_bytes(fig),
    )


def _classes(reference: Sample, live: Sample, line: Timeline) -> tuple[str, bytes]:
    keys, ref_counts = np.unique(reference.labels.astype(str), return_counts=True)
    live_keys, live_counts = np.unique(live.labels.astype(str), return_counts=True)
    share: dict[str, float] = {}
    for k, c in zip(keys, ref_counts):
        share[k] = share.get(k, 0.0) + c / len(reference)
    for k, c in zip(live_keys, live_counts):
        share[k] = share.get(k, 0.0) + c / len(live)
    top = sorted(share, key=lambda k: -share[k])[:TOP_CLASSES]
    fig = new_figure(8.0, 3.0)
    ax = fig.add_subplot()
    labels = live.labels.astype(str)
    ref_labels = reference.labels.astype(str)
    for key in top:
        _series(
            ax,
            line,
            _per_bucket(line, (labels == key).astype(float)),
            label=key[:20],
            reference=float((ref_labels == key).mean()),
        )
    ax.set_ylabel("share of predictions", fontsize=8)
    ax.legend(fontsize=7, ncol=min(len(top), 6), loc="upper left")
    more = " (the most frequent classes)" if len(share) > TOP_CLASSES else ""
    return (
        f"Predicted-class shares per time bucket{more} (dashed: the reference share)",
        png_bytes(fig),
    )


def _inputs(reference: Sample, live: Sample, line: Timeline) -> tuple[str, bytes] | None:
    names = [
        n
        for n in SERIES_FEATURES.get(live.kind or "", ())
        if n in live.features and n in reference.features
    ]
    if not names or reference.kind != live.kind:
        return None
    fig = new_figure(8.0, 3.0)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        ref = reference.features[name]
        _series(
            ax,
            line,
            _per_bucket(line, live.features[name]),
            label="live",
            reference=float(np.nanmean(ref)) if np.isfinite(ref).any() else None,
        )
        ax.set_title(textwrap.fill(feature_label(name), 36), fontsize=8)
    return "Input statistics per time bucket, mean (dashed: the reference mean)", png_bytes(fig)


INPUT_DISTRIBUTIONS = "Input distributions"  # captions that render under Distributions
DISTRIBUTION_KINDS = ("series", "audio")  # the input kinds drawn as histograms
MAX_INPUT_PANELS = 4


def input_distributions(reference: Sample, live: Sample, drift: Drift) -> tuple[str, bytes] | None:
    """Series and clips: histograms of the input features, reference against live, for the
    features whose checks alerted first, then the largest PSI (at most MAX_INPUT_PANELS):
    what moved, in the feature's own units."""
    if live.kind not in DISTRIBUTION_KINDS or reference.kind != live.kind:
        return None
    checks = [c for c in drift.checks if c.group == "input" and c.details.get("feature")]
    checks.sort(key=lambda c: (not c.alert, -(c.effect or 0.0)))
    shown = [c for c in checks if c.details["feature"] in live.features][:MAX_INPUT_PANELS]
    if not shown:
        return None
    fig = new_figure(2.4 * len(shown) + 1.0, 2.8)
    for i, check in enumerate(shown):
        name = str(check.details["feature"])
        ax = fig.add_subplot(1, len(shown), i + 1)
        ref, cur = reference.features[name], live.features[name]
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        if len(both) == 0:
            continue
        edges = np.histogram_bin_edges(both, bins=20)
        ax.hist(
            ref, bins=edges, density=True, alpha=0.5, label="reference", color=PALETTE["reference"]
        )
        ax.hist(cur, bins=edges, density=True, alpha=0.5, label="live", color=PALETTE["bad"])
        ax.set_title(
            textwrap.fill(feature_label(name), 30) + ("\nALERT" if check.alert else ""),
            fontsize=8,
            color=PALETTE["bad"] if check.alert else PALETTE["ink"],
        )
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    fig.axes[0].legend(fontsize=7)
    return (
        f"{INPUT_DISTRIBUTIONS}: reference (grey) against live (red), the alerting features first",
        png_bytes(fig),
    )


def _metric(
    live: Sample,
    drift: Drift,
    line: Timeline,
    metadata: dict[str, Any],
    task: Task,
    target: dict[str, Any],
) -> tuple[str, bytes] | None:
    info = drift.labelled
    if not info or info.get("y") is None or len(info["y"]) == 0:
        return None
    metric = str(info["metric"])
    if task.single_label:
        from dlworkflow.metrics import METRICS

        function = METRICS.get(metric)
    else:

        def function(y: np.ndarray, out: np.ndarray) -> float:
            return task.score(metric, y, out, target)

    where, y, proba = info["indices"], info["y"], info["proba"]
    values = np.full(len(line.x), np.nan)
    for b in range(len(line.x)):
        pick = line.bucket[where] == b
        if pick.sum() >= 5:
            values[b] = function(y[pick], proba[pick])
    fig = new_figure(8.0, 3.0)
    ax = fig.add_subplot()
    test_value = metadata.get("test_value")
    _series(
        ax,
        line,
        values,
        label=f"live {metric}",
        reference=float(test_value) if isinstance(test_value, (int, float)) else None,
    )
    lower = info.get("higher_is_better") is False
    key = "ceiling" if lower else "floor"
    bound = next(
        (
            c.details.get(key)
            for c in drift.checks
            if c.group == "performance" and c.details.get(key) is not None
        ),
        None,
    )
    if bound is not None:
        ax.axhline(bound, linestyle=":", linewidth=1, color="tab:red")
    ax.set_title(f"live {metric} on labelled predictions (buckets with 5 or more)", fontsize=10)
    what = (
        "the alert ceiling, test + allowed worsening (lower is better)"
        if lower
        else "the alert floor, test - metric_drop"
    )
    return (
        f"Live {metric} per time bucket (dashed: the test estimate; dotted: {what})",
        png_bytes(fig),
    )


def _distributions(reference: Sample, live: Sample, drift: Drift) -> tuple[str, bytes]:
    fig = new_figure(8.0, 3.0)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    bins = np.linspace(min(reference.confidence.min(), live.confidence.min()), 1.0, 30)
    left.hist(reference.confidence, bins=bins, density=True, alpha=0.5, label="reference")
    left.hist(live.confidence, bins=bins, density=True, alpha=0.5, label="live")
    left.set_title("confidence", fontsize=10)
    left.legend(fontsize=8)
    _ood_histogram(right, drift)
    for ax in (left, right):
        ax.tick_params(labelsize=8)
    return "Distributions: live against the reference", png_bytes(fig)


# (time series, distributions) per task kind
PREDICTION_FIGURES: dict[
    str,
    tuple[
        Callable[[Sample, Sample, Drift, Timeline, list[str]], list[tuple[str, bytes]]],
        Callable[[Sample, Sample, Drift, list[str]], tuple[str, bytes]],
    ],
] = {
    "classification": (_class_series, _class_distributions),
    "regression": (_value_series, _value_distributions),
    "multilabel": (_label_series, _label_distributions),
    "detection": (dense_html.detection_series, dense_html.detection_distributions),
    "segmentation": (dense_html.segmentation_series, dense_html.segmentation_distributions),
}


# ---- the page -----------------------------------------------------------------------------
def render(result: MonitorResult, pngs: list[tuple[str, bytes]]) -> str:
    status = result.status
    css = VERDICT_CLASS.get(status, "NONE")
    every = [*result.checks_objects, *result.counts_objects]
    reasons = [c.sentence for c in every if c.alert]
    summary = (
        f"<p class='verdict {css}'>{esc(status)}: {esc(result.headline)}</p>"
        + (bullet_list(reasons, "findings") if reasons else "")
        + table(None, result.facts())
        + (bullet_list(result.notes) if result.notes else "")
    )
    sections = [Section("summary", "Monitoring verdict", summary)]
    if every:
        rows = [
            (
                c.name,
                c.group,
                c.test,
                _num(c.statistic),
                _pval(c.p_value),
                _num(c.effect),
                _num(c.threshold),
                "ALERT" if c.alert else "-",
            )
            for c in every
        ]
        body = (
            f"<p>{result.m} statistical checks; each alerts when p &lt; alpha / m = "
            f"{esc(f'{result.level:.3g}')} (monitor.alpha {esc(result.alpha)}, Bonferroni) "
            "and its effect reaches the threshold. Two counts run on every monitor, outside "
            "the Bonferroni family: non-finite outputs (numerics: any NaN or infinite "
            "probability or value alerts) and the champion's age (age: alerts past "
            "monitor.max_model_age_days).</p>"
            + table(
                ["check", "group", "test", "statistic", "p-value", "effect", "threshold", "alert"],
                rows,
                numeric=True,
            )
            + bullet_list([c.sentence for c in every], "findings")
        )
        sections.append(Section("checks", "Checks", body))
    if pngs:
        kept = [(c, p) for c, p in pngs[:-1] if not c.startswith(INPUT_DISTRIBUTIONS)]
        spread = [(c, p) for c, p in pngs[:-1] if c.startswith(INPUT_DISTRIBUTIONS)]
        if kept:
            series = "".join(png_figure(png, caption) for caption, png in kept)
            sections.append(Section("time", "Over time", series))
        sections.append(
            Section(
                "distributions",
                "Distributions",
                "".join(png_figure(png, caption) for caption, png in [*spread, pngs[-1]]),
            )
        )
    sections.append(Section("method", "How the checks work", _METHOD))
    when = datetime.now(UTC).isoformat(timespec="seconds")
    return page(
        f"Monitoring: model version {result.version}",
        f"{result.project_name} · {when} · {result.source}",
        sections,
        opening=opening(result, reasons),
    )


def opening(result: MonitorResult, reasons: list[str]) -> str:
    """The three things to know, first: the verdict, the strongest evidence (the live metric
    against the test estimate when labels came, else the first alert), and what to do."""
    said = f"{result.status}: {result.headline}."
    online = result.online or {}
    if online.get("tested"):
        from dlworkflow.evaluate.staleness import online_words

        evidence = f"Live against test: {online_words(online)}."
    elif reasons:
        evidence = reasons[0]
    else:
        evidence = (
            f"{result.n_live:,} live predictions of v{result.version} against "
            f"{result.n_reference:,} validation predictions."
        )
    if result.status == "ALERT":
        step = (
            "What to do: look at the distributions below; if the live data is the new normal, "
            "label some of it: `dlw retrain --data FRESH` trains a challenger and compares it "
            "with the champion before anything is promoted."
        )
        tone = "bad"
    elif result.status == "OK":
        step = "What to do: nothing now; run `dlw monitor` again on the next window."
        tone = "good"
    else:
        step = "What to do: wait for more live predictions (monitor.min_samples), then rerun."
        tone = "warn"
    return must_know([said, evidence, step], tone=tone)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value):.4g}"


def _pval(value: float | None) -> str:
    if value is None:
        return "-"
    return "< 1e-300" if value < 1e-300 else f"{value:.3g}"


_METHOD = (
    "<p>The reference is the champion's predictions on the validation split (computed with "
    "the exported model, exactly as the server logs them). Live predictions of the same "
    "model version are compared with it:</p><ul>"
    "<li><b>input</b>: summary statistics of each input (image size, brightness and contrast "
    "of the network input, channel means; text length and unknown word pieces; fields and "
    "missing values of rows; a time series' length in steps and each channel's level (mean) "
    "and spread (standard deviation) over its real steps, in the data's own units; an audio "
    "clip's duration, loudness (RMS level in dBFS: 0 is full scale, every -20 dB is ten times "
    "quieter) and share of silent 20 ms windows, measured on the clip as sent, and its "
    "spectral centroid (the spectrum's centre of mass in Hz: higher is brighter) on the "
    "waveform the network hears), two-sample Kolmogorov-Smirnov test plus the population "
    "stability index (PSI) on reference deciles; PSI below 0.1 is little change, above 0.2 "
    "(monitor.psi_threshold) a shift worth acting on.</li>"
    "<li><b>embedding</b>: a 32-number random projection of the network's penultimate "
    "features; maximum mean discrepancy (RBF kernel, median heuristic) with a permutation "
    "p-value.</li>"
    "<li><b>prediction</b>: classification: chi-square test of the predicted-class shares; "
    "effect: total variation distance. Regression: the predicted values, Kolmogorov-Smirnov "
    "test plus PSI on the reference deciles. Multi-label: each label's predicted rate, "
    "two-proportion z test (Bonferroni over the labels); effect: the largest rate change; "
    "the labels that moved by monitor.prediction_shift are flagged.</li>"
    "<li><b>confidence</b>: one-sided Mann-Whitney U; effect: drop of the mean.</li>"
    "<li><b>ood</b>: distance to the 5th nearest reference embedding (1 - confidence without "
    "embeddings); the threshold flags monitor.ood_reference_rate of the reference; the live "
    "count above it is tested against its exact beta-binomial null.</li>"
    "<li><b>performance</b> (with --labels): the live primary metric with a one-sided bound "
    "at the same level; alert when the bound is worse than the test estimate by more than "
    "monitor.metric_drop (in the metric's direction: for a lower-is-better metric such as "
    "RMSE, when its lower bound exceeds the test estimate by more than metric_drop x the "
    "test estimate). Offline against online: the live interval is set beside the test "
    "interval; they agree when the live interval reaches the test interval widened by the "
    "allowed change (the row 'live vs test', recorded for `dlw audit`).</li>"
    "<li><b>numerics</b>: live predictions whose outputs (probabilities, confidence, value) "
    "are NaN or infinite; any at all alerts, and they are left out of the other checks.</li>"
    "<li><b>age</b>: days since the champion was exported, against "
    "monitor.max_model_age_days.</li></ul>"
    "<p>Bonferroni over the checks keeps the chance of any false alarm on in-distribution "
    "traffic at most monitor.alpha; an effect threshold keeps statistically significant but "
    "negligible shifts (common with large samples) from alerting. The tests treat the live "
    "predictions as independent draws: traffic that comes in bursts of near-identical inputs "
    "(one client resending the same images) can look like drift, and is worth a look "
    "either way.</p>"
)
