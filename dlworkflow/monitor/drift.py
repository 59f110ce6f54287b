"""Every check `dlw monitor` runs, and the alert rule.

A check compares the live sample with the reference and gives {name, group, statistic,
p_value, effect, threshold, alert, sentence}. Groups: input (summary statistics of the inputs;
raw feature columns of `--inputs` tables), embedding (MMD of the 32-number projections),
prediction, confidence (classification only), ood (out-of-distribution rate) and performance
(the live primary metric, with `--labels`). The prediction checks follow the task's kind
(`PREDICTION_PLANS`): classification the predicted-class shares; regression the predicted
values (KS + PSI on the reference's deciles, like a numeric input); multi-label each label's
predicted rate (two-proportion z tests, Bonferroni over the labels; the labels that moved
significantly by monitor.prediction_shift are flagged) with its mean probability; detection
the boxes per image, box sizes and box scores, segmentation the predicted class shares
(monitor/dense.py).

Alert rule: p < alpha / m (Bonferroni over the m statistical checks that ran, so in-distribution
traffic raises any alert with probability at most monitor.alpha) AND the effect reaches its
practical threshold (PSI for inputs, total variation for predictions, drop for confidence,
excess rate for OOD). The embedding MMD has no natural effect scale, so significance alone
alerts on it; its sample cap (monitor.mmd_max_samples per side) bounds its power, so a
negligible shift in a huge window does not alert either. Performance alerts when the
one-sided bound of the live metric (level alpha / m) is worse than the test estimate by more
than the allowed change, in the metric's direction: for accuracy or F1 when the upper bound
is below test - monitor.metric_drop; for RMSE or MAE (lower is better, in the target's units)
when the lower bound is above test x (1 + metric_drop) (`allowed_change`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.monitor import dense
from dlworkflow.monitor import stats as S
from dlworkflow.monitor.logread import Sample
from dlworkflow.runtime.observe import metadata_task

if TYPE_CHECKING:
    from dlworkflow.config import Monitor
    from dlworkflow.tasks.base import Task

GROUPS = (
    "input",
    "embedding",
    "prediction",
    "confidence",
    "ood",
    "performance",
    "numerics",
    "age",
)
FEATURE_LABELS = {
    "width": "image width (px)",
    "height": "image height (px)",
    "mean": "brightness (mean of the normalised input)",
    "std": "contrast (std of the normalised input)",
    "chars": "text length (characters)",
    "words": "text length (words)",
    "tokens": "text length (tokens)",
    "unk": "vocabulary: share of unknown word pieces",
    "fields": "fields per row",
    "missing": "missing values per row",
    "length": "series length (time steps)",
    "series_mean": "level: mean of all channels (raw values)",
    "series_std": "spread: std of all channels (raw values)",
    "duration_s": "clip duration (seconds)",
    "rms_dbfs": "loudness (RMS level, dBFS: 0 is full scale, -20 is 10x quieter)",
    "centroid_hz": "spectral centroid (Hz: higher is a brighter, more high-pitched sound)",
    "silence_share": "silence share (of 20 ms windows below data.audio.silence_dbfs)",
}
SHORT_NAMES = {
    "width": "image width",
    "height": "image height",
    "mean": "brightness",
    "std": "contrast",
    "chars": "length (characters)",
    "words": "length (words)",
    "tokens": "length (tokens)",
    "unk": "unknown word pieces",
    "fields": "fields per row",
    "missing": "missing values",
    "length": "series length",
    "series_mean": "series level",
    "series_std": "series spread",
    "duration_s": "clip duration",
    "rms_dbfs": "loudness",
    "centroid_hz": "spectral centroid",
    "silence_share": "silence share",
}
NUMERIC_SHARE = 0.95


@dataclass
class Check:
    name: str
    group: str
    test: str
    statistic: float | None
    p_value: float | None
    effect: float | None
    threshold: float | None
    alert: bool
    sentence: str
    reference: float | None = None  # the reference level (mean, rate, metric ...)
    live: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: _json_safe(v) for k, v in asdict(self).items()}


@dataclass
class OodScores:
    source: str  # "embedding" (k-NN distance) or "confidence" (1 - confidence)
    reference: np.ndarray
    live: np.ndarray
    threshold: float
    reference_rate: float


@dataclass
class Drift:
    checks: list[Check]
    m: int  # statistical checks that ran
    level: float  # alpha / m
    ood: OodScores | None
    notes: list[str]
    labelled: dict[str, Any] | None = None  # live rows with labels: y, proba, indices

    @property
    def alerts(self) -> list[Check]:
        return [c for c in self.checks if c.alert]


@dataclass
class _Plan:
    name: str
    group: str
    test: str
    threshold: float | None
    run: Callable[[float], S.Outcome]
    levels: Callable[[S.Outcome], tuple[float | None, float | None]]
    alert_rule: Callable[[S.Outcome, float], bool] | None = None


def short_name(feature: str) -> str:
    """The check's name for a feature: brightness, contrast, channel 1 mean, feature 'age'."""
    if feature.startswith("channel_"):
        return f"channel {feature.split('_', 1)[1]} mean"
    if feature.startswith("column:"):
        return f"feature {feature.split(':', 1)[1]!r}"
    channel = _series_channel(feature)
    if channel is not None:
        return f"channel {channel[1]} {channel[0]}"
    return SHORT_NAMES.get(feature, feature)


def _series_channel(feature: str) -> tuple[str, str] | None:
    """("mean" | "std", channel) of a series feature series_mean_<c> / series_std_<c>."""
    for stat in ("mean", "std"):
        prefix = f"series_{stat}_"
        if feature.startswith(prefix) and feature[len(prefix) :].isdigit():
            return stat, feature[len(prefix) :]
    return None


def feature_label(name: str) -> str:
    """The longer description of a feature, for sentences and plots."""
    if name.startswith("channel_"):
        return f"channel {name.split('_', 1)[1]} mean (normalised input)"
    if name.startswith("column:"):
        return f"feature {name.split(':', 1)[1]!r}"
    channel = _series_channel(name)
    if channel is not None:
        what = "level: mean" if channel[0] == "mean" else "spread: std"
        return f"channel {channel[1]} {what} over the series' steps (raw values)"
    return FEATURE_LABELS.get(name, name)


def run_checks(
    reference: Sample,
    live: Sample,
    *,
    config: Monitor,
    seed: int,
    metadata: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    classes: list[str] | None = None,
) -> Drift:
    """Plan the checks that apply, then run them at level alpha / m."""
    notes: list[str] = []
    plans = _input_plans(reference, live, config)
    if (
        reference.emb is not None
        and live.emb is not None
        and reference.emb.shape[1] == live.emb.shape[1]
    ):
        plans.append(
            _Plan(
                "embedding MMD",
                "embedding",
                "MMD permutation test",
                None,
                lambda level: S.mmd_test(
                    reference.emb,
                    live.emb,
                    permutations=config.mmd_permutations,
                    max_samples=config.mmd_max_samples,
                    seed=seed,
                    resolve=level,
                ),
                lambda o: (None, o.effect),
                alert_rule=lambda o, level: o.p_value is not None and o.p_value < level,
            )
        )
    else:
        notes.append(
            "No embeddings in the records (an export from before embeddings were "
            "logged): the embedding check is skipped and the OOD score is "
            + (
                "1 - confidence."
                if len(live) and np.isfinite(live.confidence).all()
                else "not computed (the predictions carry no single confidence)."
            )
        )
    task, target = metadata_task(metadata or {})
    names = list(classes or [])
    plans += PREDICTION_PLANS[task.kind](reference, live, config, names)
    ood = ood_scores(reference, live, rate=config.ood_reference_rate)
    if ood is not None:
        plans.append(
            _Plan(
                "out-of-distribution rate",
                "ood",
                "beta-binomial ("
                + ("k-NN distance" if ood.source == "embedding" else "1 - confidence")
                + ")",
                config.ood_rate_excess,
                lambda level: S.ood_rate_test(
                    ood.reference, ood.live, rate=config.ood_reference_rate
                ),
                lambda o: (o.details.get("reference_rate"), o.details.get("live_rate")),
            )
        )
    labelled = None
    if labels is not None:
        plan, labelled, note = PERFORMANCE_PLANS[task.single_label](
            live, labels, metadata or {}, names, config, seed, task, target
        )
        if plan is not None:
            plans.append(plan)
        if note:
            notes.append(note)
    m = len(plans)
    level = config.alpha / max(m, 1)
    checks = [_run(plan, level) for plan in plans]
    if labelled is not None and labelled.get("check") is not None:
        checks.append(labelled.pop("check"))
    return Drift(checks=checks, m=m, level=level, ood=ood, notes=notes, labelled=labelled)


def _run(plan: _Plan, level: float) -> Check:
    outcome = plan.run(level)
    if plan.alert_rule is not None:
        alert = bool(plan.alert_rule(outcome, level))
    else:
        alert = (
            outcome.p_value is not None
            and outcome.p_value < level
            and plan.threshold is not None
            and outcome.effect >= plan.threshold
        )
    ref_level, live_level = plan.levels(outcome)
    check = Check(
        name=plan.name,
        group=plan.group,
        test=plan.test,
        statistic=outcome.statistic,
        p_value=outcome.p_value,
        effect=outcome.effect,
        threshold=plan.threshold,
        alert=alert,
        sentence="",
        reference=ref_level,
        live=live_level,
        details={**outcome.details, "level": level},
    )
    check.sentence = sentence(check, level)
    return check


# ---- plans --------------------------------------------------------------------------------
def _input_plans(reference: Sample, live: Sample, config: Monitor) -> list[_Plan]:
    plans = []
    if reference.kind == live.kind:
        for name, ref in reference.features.items():
            cur = live.features.get(name)
            if cur is not None:
                plans.append(_numeric_plan(name, ref, cur, config))
    for name, ref_values in reference.values.items():
        cur_values = live.values.get(name)
        if cur_values is None:
            continue
        numbers = _as_numbers(ref_values)
        if numbers is not None:
            cur = np.array([_float(v) for v in cur_values])
            plans.append(_numeric_plan(f"column:{name}", numbers, cur, config))
        else:
            plans.append(_category_plan(f"column:{name}", ref_values, cur_values, config))
    return plans


def _numeric_plan(name: str, ref: np.ndarray, cur: np.ndarray, config: Monitor) -> _Plan:
    def run(level: float) -> S.Outcome:
        ks = S.ks_test(ref, cur)
        value = S.psi(ref, cur)
        return S.Outcome(
            ks.statistic,
            ks.p_value,
            value,
            {
                **ks.details,
                "feature": name,
                "ks": ks.statistic,
                "psi": value,
                "reference_mean": _mean(ref),
                "live_mean": _mean(cur),
            },
        )

    return _Plan(
        short_name(name),
        "input",
        "KS + PSI",
        config.psi_threshold,
        run,
        lambda o: (o.details["reference_mean"], o.details["live_mean"]),
    )


def _category_plan(name: str, ref: list[Any], cur: list[Any], config: Monitor) -> _Plan:
    def run(level: float) -> S.Outcome:
        out = S.category_test([_category(v) for v in ref], [_category(v) for v in cur])
        return S.Outcome(out.statistic, out.p_value, out.effect, {**out.details, "feature": name})

    return _Plan(
        short_name(name),
        "input",
        "chi-square + PSI",
        config.psi_threshold,
        run,
        lambda o: (None, None),
    )


def _class_plans(reference: Sample, live: Sample, config: Monitor, names: list[str]) -> list[_Plan]:
    """Classification: the predicted-class shares and the confidence."""
    return [
        _Plan(
            "predicted classes",
            "prediction",
            "chi-square",
            config.prediction_shift,
            lambda level: S.class_shift(list(reference.labels), list(live.labels)),
            lambda o: (None, None),
        ),
        _Plan(
            "confidence",
            "confidence",
            "Mann-Whitney U (one-sided)",
            config.confidence_drop,
            lambda level: S.confidence_drop(reference.confidence, live.confidence),
            lambda o: (o.details.get("reference_mean"), o.details.get("live_mean")),
        ),
    ]


def _value_plans(reference: Sample, live: Sample, config: Monitor, names: list[str]) -> list[_Plan]:
    """Regression: the distribution of the predicted values (KS, and PSI on the reference's
    deciles), as for a numeric input."""
    if reference.value is None or live.value is None:
        return []
    ref, cur = reference.value, live.value

    def run(level: float) -> S.Outcome:
        ks = S.ks_test(ref, cur)
        value = S.psi(ref, cur)
        return S.Outcome(
            ks.statistic,
            ks.p_value,
            value,
            {
                **ks.details,
                "shape": "value",
                "ks": ks.statistic,
                "psi": value,
                "reference_mean": _mean(ref),
                "live_mean": _mean(cur),
                "reference_quantiles": _quantiles(ref),
                "live_quantiles": _quantiles(cur),
            },
        )

    return [
        _Plan(
            "predicted value",
            "prediction",
            "KS + PSI",
            config.psi_threshold,
            run,
            lambda o: (o.details["reference_mean"], o.details["live_mean"]),
        )
    ]


def _label_plans(reference: Sample, live: Sample, config: Monitor, names: list[str]) -> list[_Plan]:
    """Multi-label: each label's predicted rate (two-proportion test, Bonferroni over the
    labels inside the check) and its mean probability; the labels whose rate moved
    significantly by at least monitor.prediction_shift are flagged."""
    ref, cur = label_matrix(reference, names), label_matrix(live, names)
    if not names or len(ref) == 0 or len(cur) == 0:
        return []

    def run(level: float) -> S.Outcome:
        return label_shift(
            ref,
            cur,
            names,
            reference.probs,
            live.probs,
            level=level,
            threshold=config.prediction_shift,
        )

    def rule(outcome: S.Outcome, level: float) -> bool:
        return bool(outcome.details.get("moved"))

    return [
        _Plan(
            "predicted labels",
            "prediction",
            "two-proportion z (per label)",
            config.prediction_shift,
            run,
            lambda o: (None, None),
            alert_rule=rule,
        )
    ]


def label_matrix(sample: Sample, names: list[str]) -> np.ndarray:
    """Bool (N, L): the labels each record predicted."""
    from dlworkflow.tasks.multilabel import SEP

    index = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(sample), len(names)), dtype=bool)
    for i, text in enumerate(sample.labels):
        for label in str(text).split(SEP):
            if label in index:
                out[i, index[label]] = True
    return out


def label_shift(
    reference: np.ndarray,
    live: np.ndarray,
    names: list[str],
    ref_probs: np.ndarray | None,
    live_probs: np.ndarray | None,
    *,
    level: float,
    threshold: float,
) -> S.Outcome:
    """Per label: the predicted rates (reference vs live), the two-sided two-proportion z
    test's p-value times the number of labels (Bonferroni), the mean probabilities; p = the
    smallest adjusted p, effect = the largest rate change, statistic = the largest |z|.
    A label is flagged (details "moved") when its adjusted p < level and its rate moved by at
    least `threshold`."""
    from scipy.stats import norm

    n_ref, n_cur, k = len(reference), len(live), max(len(names), 1)
    a, b = reference.sum(axis=0).astype(np.float64), live.sum(axis=0).astype(np.float64)
    r_ref, r_cur = a / n_ref, b / n_cur
    pooled = (a + b) / (n_ref + n_cur)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, (r_cur - r_ref) / np.where(se > 0, se, 1), 0.0)
    p = np.minimum(1.0, k * 2 * norm.sf(np.abs(z)))
    mean_ref = _column_means(ref_probs, len(names))
    mean_cur = _column_means(live_probs, len(names))
    per_label = []
    for j, name in enumerate(names):
        per_label.append(
            {
                "label": name,
                "reference_rate": float(r_ref[j]),
                "live_rate": float(r_cur[j]),
                "change": float(r_cur[j] - r_ref[j]),
                "p_value": float(p[j]),
                "reference_mean_probability": mean_ref[j],
                "live_mean_probability": mean_cur[j],
                "moved": bool(p[j] < level and abs(r_cur[j] - r_ref[j]) >= threshold),
            }
        )
    moved = [row["label"] for row in per_label if row["moved"]]
    change = np.abs(r_cur - r_ref)
    return S.Outcome(
        float(np.abs(z).max()) if len(z) else 0.0,
        float(p.min()) if len(p) else 1.0,
        float(change.max()) if len(change) else 0.0,
        {"shape": "labels", "per_label": per_label, "moved": moved, "labels": len(names)},
    )


def _column_means(probs: np.ndarray | None, k: int) -> list[float | None]:
    if probs is None or probs.ndim != 2 or probs.shape[1] != k or len(probs) == 0:
        return [None] * k
    return [float(v) for v in probs.mean(axis=0)]


def _quantiles(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return []
    return [float(q) for q in np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])]


# the prediction checks, per task kind
PREDICTION_PLANS: dict[str, Callable[[Sample, Sample, Monitor, list[str]], list[_Plan]]] = {
    "classification": _class_plans,
    "regression": _value_plans,
    "multilabel": _label_plans,
    "detection": dense.detection_plans,
    "segmentation": dense.segmentation_plans,
}


def _performance_plan(
    live: Sample,
    labels: dict[str, str],
    metadata: dict[str, Any],
    classes: list[str],
    config: Monitor,
    seed: int,
    task: Task,
    target: dict[str, Any],
) -> tuple[_Plan | None, dict[str, Any] | None, str | None]:
    """Classification: the live metric on the labelled live rows, against the test
    estimate."""
    metric = str(metadata.get("metric") or "accuracy")
    test_value = metadata.get("test_value")
    index = {c: i for i, c in enumerate(classes)}
    rows = [
        (i, index[labels[key]])
        for i, key in enumerate(live.ids)
        if key in labels and labels[key] in index
    ]
    unknown = sum(1 for key in live.ids if key in labels and labels[key] not in index)
    info: dict[str, Any] = {
        "metric": metric,
        "test_value": test_value,
        "n": len(rows),
        "unknown_labels": unknown,
        "matched": sum(1 for key in live.ids if key in labels),
    }
    if not rows:
        return (
            None,
            info,
            (
                "--labels matched none of the live predictions (ids are the "
                "server's `id`, or the --inputs file names / row ids)."
            ),
        )
    where = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    proba = _proba(live, where, classes)
    if proba is None and metric == "auroc":
        return (
            None,
            info,
            (
                "auroc needs the probabilities, which these records lack (a log "
                "from before probabilities were logged): not tested."
            ),
        )
    if proba is None:  # predicted labels are enough for the other metrics
        proba = _onehot(live, where, classes)
    info.update(indices=where, y=y, proba=proba)
    untested = _untested(metric, len(rows), test_value, config)
    if untested is not None or test_value is None:
        info["check"] = untested
        return None, info, None
    floor = float(test_value) - config.metric_drop

    def run(level: float) -> S.Outcome:
        if metric == "accuracy":
            hits = int((proba.argmax(1) == y).sum())
            out = S.wilson_bound(hits, len(y), floor=floor, level=level)
        else:
            from dlworkflow.evaluate.scores import scalar_metrics

            out = S.bootstrap_bound(
                lambda w: scalar_metrics(y, proba, w, only=metric)[metric],
                len(y),
                floor=floor,
                level=level,
                seed=seed,
            )
        return S.Outcome(
            out.statistic,
            out.p_value,
            float(test_value) - out.statistic,
            {**out.details, "metric": metric, "test_value": float(test_value), "floor": floor},
        )

    def rule(outcome: S.Outcome, level: float) -> bool:
        interval = outcome.details.get("interval")
        return bool(interval and interval[1] < floor)

    plan = _Plan(
        f"live {metric}",
        "performance",
        "Wilson interval" if metric == "accuracy" else "bootstrap interval",
        config.metric_drop,
        run,
        lambda o: (float(test_value), o.statistic),
        alert_rule=rule,
    )
    return plan, info, None


def _task_performance_plan(
    live: Sample,
    labels: dict[str, str],
    metadata: dict[str, Any],
    classes: list[str],
    config: Monitor,
    seed: int,
    task: Task,
    target: dict[str, Any],
) -> tuple[_Plan | None, dict[str, Any] | None, str | None]:
    """Regression and multi-label: the live primary metric (`task.scores` over bootstrap
    draw counts) on the labelled live rows, against the test estimate, in the metric's
    direction: an alert when the metric got worse than the test estimate by more than the
    allowed change (`allowed_change`) at level alpha / m."""
    metric = str(metadata.get("metric") or task.default_metric)
    spec = task.metric(metric)
    test_value = metadata.get("test_value")
    pairs = [(i, labels[key]) for i, key in enumerate(live.ids) if key in labels]
    size = label_size(task, metadata)
    matched = [(i, text) for i, text in pairs if readable(task, text, classes, size)]
    y_all = task.encode([text for _, text in matched], classes, size=size)
    known = task.known(y_all) if matched else np.zeros(0, dtype=bool)
    where = np.array([i for (i, _), ok in zip(matched, known) if ok], dtype=np.int64)
    info: dict[str, Any] = {
        "metric": metric,
        "test_value": test_value,
        "n": int(len(where)),
        "unknown_labels": int(len(pairs) - len(where)),
        "matched": len(pairs),
        "higher_is_better": spec.higher_is_better,
    }
    if not len(where):
        return (
            None,
            info,
            (
                "--labels matched none of the live predictions (ids are the "
                "server's `id`, or the --inputs file names / row ids)"
                + (", or none of their labels could be read." if pairs else ".")
            ),
        )
    outputs = LIVE_OUTPUTS[task.kind](live, classes, size)
    if outputs is None:
        return (
            None,
            info,
            (
                "The records lack the model's outputs (values, label "
                "probabilities, or the predicted masks: a server log keeps only the "
                "class shares of a mask; `dlw monitor --inputs` keeps the masks): the "
                "live metric is not tested."
            ),
        )
    y, out = y_all[known], outputs[where]
    info.update(indices=where, y=y, proba=out)
    untested = _untested(metric, len(where), test_value, config)
    if untested is not None or test_value is None:
        info["check"] = untested
        return None, info, None
    test = float(test_value)
    higher = spec.higher_is_better
    allowed = allowed_change(spec, test, config.metric_drop)
    bound = test - allowed if higher else test + allowed
    sign = 1.0 if higher else -1.0  # bootstrap_bound tests "at least floor": flip lower-better

    def run(level: float) -> S.Outcome:
        out_ = S.bootstrap_bound(
            lambda w: sign * task.metric_scores(metric, y, out, w, target),
            len(y),
            floor=sign * bound,
            level=level,
            seed=seed,
        )
        value = sign * out_.statistic
        interval = out_.details.get("interval")
        if interval:
            interval = sorted([sign * interval[0], sign * interval[1]])
        return S.Outcome(
            value,
            out_.p_value,
            (test - value) if higher else (value - test),
            {
                **out_.details,
                "interval": interval,
                "metric": metric,
                "test_value": test,
                "bound": bound,
                "higher_is_better": higher,
                "allowed_change": allowed,
                **({"floor": bound} if higher else {"ceiling": bound}),
            },
        )

    def rule(outcome: S.Outcome, level: float) -> bool:
        interval = outcome.details.get("interval")
        if not interval:
            return False
        return bool(interval[1] < bound if higher else interval[0] > bound)

    plan = _Plan(
        f"live {metric}",
        "performance",
        "bootstrap interval",
        allowed,
        run,
        lambda o: (test, o.statistic),
        alert_rule=rule,
    )
    note = dense.LIVE_NOTES.get(task.kind)
    return plan, info, note(live, target) if note else None


def allowed_change(spec: Any, test_value: float, metric_drop: float) -> float:
    """How much worse than the test estimate the live metric may get before it alerts:
    monitor.metric_drop in the metric's units for a metric bounded above (accuracy, F1,
    R^2), and metric_drop as a share of the test estimate for one in the target's units
    (RMSE, MAE: 0.05 = 5% worse)."""
    if spec.bounds[1] is None:
        return float(metric_drop) * abs(float(test_value))
    return float(metric_drop)


def _live_values(live: Sample, names: list[str], size: tuple[int, int] | None) -> np.ndarray | None:
    return None if live.value is None else live.value[:, None]


def _live_probs(live: Sample, names: list[str], size: tuple[int, int] | None) -> np.ndarray | None:
    k = len(names)
    return live.probs if live.probs is not None and live.probs.shape[1] == k else None


# the task outputs of the live records (what task.scores takes), per task kind; `size`: the
# network's input (height, width) for dense tasks (label_size)
LIVE_OUTPUTS: dict[
    str, Callable[[Sample, list[str], tuple[int, int] | None], np.ndarray | None]
] = {
    "classification": _live_probs,
    "regression": _live_values,
    "multilabel": _live_probs,
    "detection": dense.detection_outputs,
    "segmentation": dense.segmentation_outputs,
}


def label_size(task: Task, metadata: dict[str, Any]) -> tuple[int, int] | None:
    """The network's input (height, width) for a dense task's targets (masks are encoded at
    it); None for the others."""
    size = (metadata.get("preprocessing") or {}).get("size")
    if not task.dense or not isinstance(size, (list, tuple)) or len(size) != 2:
        return None
    return int(size[0]), int(size[1])


def readable(task: Task, text: str, names: list[str], size: tuple[int, int] | None) -> bool:
    """A --labels label the task can encode (a dense label is JSON that may be malformed:
    it is counted as unknown, not fatal)."""
    if not task.dense:
        return True
    try:
        task.encode([text], names, size=size)
    except Exception:  # noqa: BLE001 - any unreadable label text is one unknown label
        return False
    return True


# the live-metric check: classification's own (accuracy's Wilson interval, the
# classification metrics), or the task's metrics for the others
PERFORMANCE_PLANS = {True: _performance_plan, False: _task_performance_plan}


def _untested(metric: str, n: int, test_value: Any, config: Any) -> Any:
    """The note check when the live metric cannot be tested (too few labelled predictions,
    or no test estimate to compare with); None when it can."""
    if n < config.min_samples:
        return _note_check(
            metric,
            f"{n} labelled live predictions: fewer than "
            f"monitor.min_samples ({config.min_samples}); the live metric is "
            "not tested.",
        )
    if not isinstance(test_value, (int, float)):
        return _note_check(
            metric,
            "The champion has no test estimate (exported without a "
            "PASS from `dlw test`): nothing to compare the live metric with.",
        )
    return None


def _note_check(metric: str, text: str) -> Check:
    return Check(
        name=f"live {metric}",
        group="performance",
        test="-",
        statistic=None,
        p_value=None,
        effect=None,
        threshold=None,
        alert=False,
        sentence=text,
    )


def _proba(live: Sample, where: np.ndarray, classes: list[str]) -> np.ndarray | None:
    if live.probs is not None and live.probs.shape[1] == len(classes):
        return live.probs[where]
    return None


def _onehot(live: Sample, where: np.ndarray, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    onehot = np.zeros((len(where), len(classes)))
    for row, i in enumerate(where):
        onehot[row, index.get(str(live.labels[i]), 0)] = 1.0
    return onehot


# ---- checks that are counts, not tests ------------------------------------------------------
def non_finite_check(count: int, total: int) -> Check:
    """Live predictions whose outputs (probabilities, confidence, value) are NaN or infinite:
    any at all alerts (a numerically broken model); they are left out of the other checks."""
    alert = count > 0
    sentence = (
        f"Non-finite outputs: {count:,} of {total:,} live predictions had NaN or infinite "
        "outputs (probabilities or values); they are left out of the other checks. ALERT: "
        "the model is numerically broken on these inputs."
        if alert
        else f"Non-finite outputs: none of the {total:,} live predictions: no alert."
    )
    return Check(
        name="non_finite_outputs",
        group="numerics",
        test="count",
        statistic=float(count),
        p_value=None,
        effect=count / total if total else 0.0,
        threshold=0.0,
        alert=alert,
        sentence=sentence,
        reference=0.0,
        live=float(count),
        details={"count": count, "total": total},
    )


def age_check(metadata: dict[str, Any], limit: float | None, *, now: Any = None) -> Check | None:
    """The champion's age (its export time, metadata `created`) against
    monitor.max_model_age_days; None when no limit is set or the export time is unknown."""
    from dlworkflow.evaluate.staleness import age_days

    created = metadata.get("created")
    age = age_days(created, now) if limit is not None else None
    if limit is None or age is None:
        return None
    alert = age > float(limit)
    version = metadata.get("version")
    sentence = (
        f"Model age: v{version} was exported {age:.1f} days ago ({created}); the limit "
        f"(monitor.max_model_age_days) is {limit:g} days: "
        + (
            "ALERT: retrain it on recent data (`dlw retrain --data SOURCE`)."
            if alert
            else "no alert."
        )
    )
    return Check(
        name="model_age",
        group="age",
        test="export time",
        statistic=round(age, 4),
        p_value=None,
        effect=None,
        threshold=float(limit),
        alert=alert,
        sentence=sentence,
        reference=float(limit),
        live=round(age, 4),
        details={"created": str(created), "version": version, "age_days": round(age, 4)},
    )


def online_offline(
    checks: list[Check], metadata: dict[str, Any], *, metric_drop: float, task: Task
) -> dict[str, Any] | None:
    """The live metric (with its interval) against the champion's test estimate (with its
    interval), from the performance check: they agree when the live interval reaches the
    test interval widened by the allowed change (`allowed_change`: monitor.metric_drop in
    the metric's units, or as a share of the test value for RMSE and MAE). None without a
    tested performance check."""
    check = next((c for c in checks if c.group == "performance"), None)
    if check is None:
        return None
    metric = str(check.details.get("metric") or metadata.get("metric") or "")
    base: dict[str, Any] = {
        "version": metadata.get("version"),
        "metric": metric,
        "n": check.details.get("n"),
    }
    interval = check.details.get("interval")
    test = metadata.get("test_value")
    if check.statistic is None or not interval or not isinstance(test, (int, float)):
        return {**base, "tested": False, "why": check.sentence}
    from dlworkflow.errors import DlwError

    try:
        spec = task.metric(metric)
    except DlwError:  # a classification metric the task's list lacks: bounded, higher better
        spec = None
    allowed = allowed_change(spec, float(test), metric_drop) if spec else float(metric_drop)
    test_iv = metadata.get("test_interval") or [test, test]
    low = min(float(test_iv[0]), float(test)) - allowed
    high = max(float(test_iv[1]), float(test)) + allowed
    agree = bool(interval[1] >= low and interval[0] <= high)
    level = check.details.get("level")
    return {
        **base,
        "tested": True,
        "live": float(check.statistic),
        "live_interval": [float(interval[0]), float(interval[1])],
        "live_confidence": None if level is None else 1.0 - 2.0 * float(level),
        "test_value": float(test),
        "test_interval": [float(test_iv[0]), float(test_iv[1])],
        "allowed_change": allowed,
        "band": [low, high],
        "higher_is_better": spec.higher_is_better if spec else True,
        "agree": agree,
        "alert": bool(check.alert),
    }


# ---- OOD scores ---------------------------------------------------------------------------
def ood_scores(reference: Sample, live: Sample, *, rate: float) -> OodScores | None:
    """Distance to the 5th-nearest reference embedding (leave-one-out on the reference); or
    1 - confidence when the records have no embeddings; None when they have neither
    (regression and multi-label records have no confidence)."""
    if (
        reference.emb is not None
        and live.emb is not None
        and reference.emb.shape[1] == live.emb.shape[1]
        and len(reference) > S.OOD_K
    ):
        ref = S.knn_distances(reference.emb, k=S.OOD_K)
        cur = S.knn_distances(reference.emb, live.emb, k=S.OOD_K)
        source = "embedding"
    elif np.isfinite(reference.confidence).all() and np.isfinite(live.confidence).all():
        ref, cur, source = 1.0 - reference.confidence, 1.0 - live.confidence, "confidence"
    else:
        return None
    outcome = S.ood_rate_test(ref, cur, rate=rate)
    return OodScores(
        source,
        ref,
        cur,
        float(outcome.details.get("threshold", math.inf)),
        float(outcome.details.get("reference_rate", rate)),
    )


# ---- words --------------------------------------------------------------------------------
def sentence(check: Check, level: float) -> str:
    """One plain sentence: what moved, the evidence, and the verdict."""
    p = check.p_value
    label = feature_label(str(check.details.get("feature", check.name)))
    what = {
        "input": lambda: (
            f"{label}: {_shares_moved(check.details)}; PSI {_g(check.effect)}"
            if "categories" in check.details
            else f"{label}: live mean {_g(check.live)} vs "
            f"reference {_g(check.reference)}; PSI {_g(check.effect)}"
            f" (alerts from {_g(check.threshold)})"
        ),
        "embedding": lambda: (
            f"Embeddings: MMD {_g(check.effect)} between live and reference "
            f"({check.details.get('permutations', 0):,} permutations)"
        ),
        "prediction": lambda: PREDICTION_WORDS[check.details.get("shape", "classes")](check),
        "confidence": lambda: (
            f"Confidence: mean {_g(check.live)} live vs {_g(check.reference)}"
            f" reference (drop {_g(check.effect)})"
        ),
        "ood": lambda: (
            f"Out-of-distribution rate: {_pct(check.live)} live vs "
            f"{_pct(check.reference)} expected (excess {_pct(check.effect)})"
        ),
        "performance": lambda: (
            f"Live {check.details.get('metric')}: {_g(check.live)} "
            f"[{_g(_iv(check, 0))}, {_g(_iv(check, 1))}] on "
            f"{check.details.get('n', 0):,} labelled vs test "
            f"{_g(check.reference)}"
        ),
    }[check.group]()
    evidence = f"{check.test.split(' + ')[0]} p = {_p(p)} (level {level:.2g})"
    if check.group == "performance" and check.details.get("higher_is_better") is False:
        ceiling = check.details.get("ceiling")
        verdict = (
            f"ALERT: the lower bound is above {_g(ceiling)} (test + allowed worsening)"
            if check.alert
            else f"no alert (alert when the lower bound > {_g(ceiling)})"
        )
    elif check.group == "performance":
        floor = check.details.get("floor")
        verdict = (
            f"ALERT: the upper bound is below {_g(floor)} (test - metric_drop)"
            if check.alert
            else f"no alert (alert when the upper bound < {_g(floor)})"
        )
    elif check.alert:
        verdict = "ALERT"
    elif p is not None and p < level and check.threshold is not None:
        verdict = f"significant but below the threshold {_g(check.threshold)}: no alert"
    elif (
        check.threshold is not None and check.effect is not None and check.effect >= check.threshold
    ):
        verdict = "large but not significant at this sample size: no alert"
    else:
        verdict = "no drift"
    return f"{what}. {evidence}: {verdict}."


def _classes_words(check: Check) -> str:
    return f"Predicted classes: {_shares_moved(check.details)}; total variation {_g(check.effect)}"


def _value_words(check: Check) -> str:
    return (
        f"Predicted value: live mean {_g(check.live)} vs reference {_g(check.reference)}; "
        f"PSI {_g(check.effect)}"
    )


def _labels_words(check: Check) -> str:
    rows = check.details.get("per_label") or []
    moved = [r for r in rows if r.get("moved")] or sorted(
        rows, key=lambda r: -abs(r.get("change", 0.0))
    )[:2]
    shown = (
        ", ".join(
            f"{r['label']} {r['reference_rate']:.0%} -> {r['live_rate']:.0%}" for r in moved[:4]
        )
        or "no labels"
    )
    flagged = check.details.get("moved") or []
    return (
        f"Predicted labels ({'moved: ' if flagged else 'largest changes: '}{shown}"
        f"{f' and {len(flagged) - 4} more' if len(flagged) > 4 else ''}); largest rate "
        f"change {_g(check.effect)}"
    )


PREDICTION_WORDS: dict[str, Callable[[Check], str]] = {
    "classes": _classes_words,
    "value": _value_words,
    "labels": _labels_words,
    **dense.WORDS,
}


def _iv(check: Check, i: int) -> float | None:
    interval = check.details.get("interval")
    return interval[i] if interval else None


def _shares_moved(details: dict[str, Any]) -> str:
    ref, cur = details.get("reference_counts") or {}, details.get("live_counts") or {}
    n_ref, n_cur = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
    moves = sorted(
        ((cur.get(k, 0) / n_cur - ref.get(k, 0) / n_ref, k) for k in ref | cur),
        key=lambda t: -abs(t[0]),
    )[:2]
    return (
        ", ".join(
            f"{k} {ref.get(k, 0) / n_ref:.0%} -> {cur.get(k, 0) / n_cur:.0%}" for _, k in moves
        )
        or "no classes"
    )


def _g(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if 1e3 <= abs(float(value)) < 1e7:  # 1,550 Hz, not 1.55e+03
        return f"{float(value):,.0f}"
    return f"{float(value):.3g}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "< 1e-300" if value < 1e-300 else f"{value:.2g}"


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        return math.nan


def _as_numbers(values: list[Any]) -> np.ndarray | None:
    """A numeric column (>= 95% of its present values are numbers) as floats, else None."""
    numbers = np.array([_float(v) for v in values])
    present = sum(1 for v in values if v is not None and str(v).strip() != "")
    if present == 0 or np.isfinite(numbers).sum() < NUMERIC_SHARE * present:
        return None
    return numbers


def _category(value: Any) -> str:
    return (
        "(missing)"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else str(value)
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return None  # arrays stay in memory (figures); the JSON holds numbers only
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
