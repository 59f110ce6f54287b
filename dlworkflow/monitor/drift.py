"""Every check `dlw monitor` runs, and the alert rule.

A check compares the live sample with the reference and gives {name, group, statistic,
p_value, effect, threshold, alert, sentence}. Groups: input (summary statistics of the inputs;
raw feature columns of `--inputs` tables), embedding (MMD of the 32-number projections),
prediction (predicted-class shares), confidence, ood (out-of-distribution rate) and
performance (the live primary metric, with `--labels`).

Alert rule: p < alpha / m (Bonferroni over the m statistical checks that ran, so in-distribution
traffic raises any alert with probability at most monitor.alpha) AND the effect reaches its
practical threshold (PSI for inputs, total variation for predictions, drop for confidence,
excess rate for OOD). The embedding MMD has no natural effect scale, so significance alone
alerts on it; its sample cap (monitor.mmd_max_samples per side) bounds its power, so a
negligible shift in a huge window does not alert either. Performance alerts when the
one-sided upper bound of the live metric (level alpha / m) is below the test estimate minus
monitor.metric_drop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.monitor import stats as S
from dlworkflow.monitor.logread import Sample

if TYPE_CHECKING:
    from dlworkflow.config import Monitor

GROUPS = ("input", "embedding", "prediction", "confidence", "ood", "performance")
FEATURE_LABELS = {
    "width": "image width (px)", "height": "image height (px)",
    "mean": "brightness (mean of the normalised input)",
    "std": "contrast (std of the normalised input)",
    "chars": "text length (characters)", "words": "text length (words)",
    "tokens": "text length (tokens)", "unk": "vocabulary: share of unknown word pieces",
    "fields": "fields per row", "missing": "missing values per row",
}
SHORT_NAMES = {
    "width": "image width", "height": "image height", "mean": "brightness",
    "std": "contrast", "chars": "length (characters)", "words": "length (words)",
    "tokens": "length (tokens)", "unk": "unknown word pieces", "fields": "fields per row",
    "missing": "missing values",
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
    return SHORT_NAMES.get(feature, feature)


def feature_label(name: str) -> str:
    """The longer description of a feature, for sentences and plots."""
    if name.startswith("channel_"):
        return f"channel {name.split('_', 1)[1]} mean (normalised input)"
    if name.startswith("column:"):
        return f"feature {name.split(':', 1)[1]!r}"
    return FEATURE_LABELS.get(name, name)


def run_checks(reference: Sample, live: Sample, *, config: Monitor, seed: int,
               metadata: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
               classes: list[str] | None = None) -> Drift:
    """Plan the checks that apply, then run them at level alpha / m."""
    notes: list[str] = []
    plans = _input_plans(reference, live, config)
    if reference.emb is not None and live.emb is not None \
            and reference.emb.shape[1] == live.emb.shape[1]:
        plans.append(_Plan("embedding MMD", "embedding", "MMD permutation test", None,
                           lambda level: S.mmd_test(
                               reference.emb, live.emb, permutations=config.mmd_permutations,
                               max_samples=config.mmd_max_samples, seed=seed, resolve=level),
                           lambda o: (None, o.effect),
                           alert_rule=lambda o, level: o.p_value is not None
                           and o.p_value < level))
    else:
        notes.append("No embeddings in the records (an export from before embeddings were "
                      "logged): the embedding check is skipped and the OOD score is "
                      "1 - confidence.")
    plans.append(_Plan("predicted classes", "prediction", "chi-square", config.prediction_shift,
                       lambda level: S.class_shift(list(reference.labels), list(live.labels)),
                       lambda o: (None, None)))
    plans.append(_Plan("confidence", "confidence", "Mann-Whitney U (one-sided)",
                       config.confidence_drop,
                       lambda level: S.confidence_drop(reference.confidence, live.confidence),
                       lambda o: (o.details.get("reference_mean"), o.details.get("live_mean"))))
    ood = ood_scores(reference, live, rate=config.ood_reference_rate)
    plans.append(_Plan("out-of-distribution rate", "ood",
                       "beta-binomial (" + ("k-NN distance" if ood.source == "embedding"
                                            else "1 - confidence") + ")",
                       config.ood_rate_excess,
                       lambda level: S.ood_rate_test(ood.reference, ood.live,
                                                     rate=config.ood_reference_rate),
                       lambda o: (o.details.get("reference_rate"), o.details.get("live_rate"))))
    labelled = None
    if labels is not None:
        plan, labelled, note = _performance_plan(live, labels, metadata or {}, classes or [],
                                                 config, seed)
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
        alert = (outcome.p_value is not None and outcome.p_value < level
                 and plan.threshold is not None and outcome.effect >= plan.threshold)
    ref_level, live_level = plan.levels(outcome)
    check = Check(name=plan.name, group=plan.group, test=plan.test,
                  statistic=outcome.statistic, p_value=outcome.p_value, effect=outcome.effect,
                  threshold=plan.threshold, alert=alert, sentence="", reference=ref_level,
                  live=live_level, details={**outcome.details, "level": level})
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
        return S.Outcome(ks.statistic, ks.p_value, value, {
            **ks.details, "feature": name, "ks": ks.statistic, "psi": value,
            "reference_mean": _mean(ref), "live_mean": _mean(cur)})

    return _Plan(short_name(name), "input", "KS + PSI", config.psi_threshold, run,
                 lambda o: (o.details["reference_mean"], o.details["live_mean"]))


def _category_plan(name: str, ref: list[Any], cur: list[Any], config: Monitor) -> _Plan:
    def run(level: float) -> S.Outcome:
        out = S.category_test([_category(v) for v in ref], [_category(v) for v in cur])
        return S.Outcome(out.statistic, out.p_value, out.effect, {**out.details, "feature": name})

    return _Plan(short_name(name), "input", "chi-square + PSI", config.psi_threshold, run,
                 lambda o: (None, None))


def _performance_plan(live: Sample, labels: dict[str, str], metadata: dict[str, Any],
                      classes: list[str], config: Monitor, seed: int
                      ) -> tuple[_Plan | None, dict[str, Any] | None, str | None]:
    """The live metric on the labelled live rows, against the test estimate."""
    metric = str(metadata.get("metric") or "accuracy")
    test_value = metadata.get("test_value")
    index = {c: i for i, c in enumerate(classes)}
    rows = [(i, index[labels[key]]) for i, key in enumerate(live.ids)
            if key in labels and labels[key] in index]
    unknown = sum(1 for key in live.ids if key in labels and labels[key] not in index)
    info: dict[str, Any] = {"metric": metric, "test_value": test_value, "n": len(rows),
                            "unknown_labels": unknown,
                            "matched": sum(1 for key in live.ids if key in labels)}
    if not rows:
        return None, info, ("--labels matched none of the live predictions (ids are the "
                            "server's `id`, or the --inputs file names / row ids).")
    where = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    proba = _proba(live, where, classes)
    if proba is None and metric == "auroc":
        return None, info, ("auroc needs the probabilities, which these records lack (a log "
                            "from before probabilities were logged): not tested.")
    if proba is None:  # predicted labels are enough for the other metrics
        proba = _onehot(live, where, classes)
    info.update(indices=where, y=y, proba=proba)
    if len(rows) < config.min_samples:
        info["check"] = _note_check(metric, f"{len(rows)} labelled live predictions: fewer "
                                    f"than monitor.min_samples ({config.min_samples}); the "
                                    "live metric is not tested.")
        return None, info, None
    if not isinstance(test_value, (int, float)):
        info["check"] = _note_check(metric, "The champion has no test estimate (exported "
                                    "without a PASS from `dlw test`): nothing to compare "
                                    "the live metric with.")
        return None, info, None
    floor = float(test_value) - config.metric_drop

    def run(level: float) -> S.Outcome:
        if metric == "accuracy":
            hits = int((proba.argmax(1) == y).sum())
            out = S.wilson_bound(hits, len(y), floor=floor, level=level)
        else:
            from dlworkflow.evaluate.scores import scalar_metrics

            out = S.bootstrap_bound(lambda w: scalar_metrics(y, proba, w, only=metric)[metric],
                                    len(y), floor=floor, level=level, seed=seed)
        return S.Outcome(out.statistic, out.p_value, float(test_value) - out.statistic,
                         {**out.details, "metric": metric, "test_value": float(test_value),
                          "floor": floor})

    def rule(outcome: S.Outcome, level: float) -> bool:
        interval = outcome.details.get("interval")
        return bool(interval and interval[1] < floor)

    plan = _Plan(f"live {metric}", "performance", "Wilson interval" if metric == "accuracy"
                 else "bootstrap interval", config.metric_drop, run,
                 lambda o: (float(test_value), o.statistic), alert_rule=rule)
    return plan, info, None


def _note_check(metric: str, text: str) -> Check:
    return Check(name=f"live {metric}", group="performance", test="-", statistic=None,
                 p_value=None, effect=None, threshold=None, alert=False, sentence=text)


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


# ---- OOD scores ---------------------------------------------------------------------------
def ood_scores(reference: Sample, live: Sample, *, rate: float) -> OodScores:
    """Distance to the 5th-nearest reference embedding (leave-one-out on the reference); or
    1 - confidence when the records have no embeddings."""
    if reference.emb is not None and live.emb is not None \
            and reference.emb.shape[1] == live.emb.shape[1] and len(reference) > S.OOD_K:
        ref = S.knn_distances(reference.emb, k=S.OOD_K)
        cur = S.knn_distances(reference.emb, live.emb, k=S.OOD_K)
        source = "embedding"
    else:
        ref, cur, source = 1.0 - reference.confidence, 1.0 - live.confidence, "confidence"
    outcome = S.ood_rate_test(ref, cur, rate=rate)
    return OodScores(source, ref, cur, float(outcome.details.get("threshold", math.inf)),
                     float(outcome.details.get("reference_rate", rate)))


# ---- words --------------------------------------------------------------------------------
def sentence(check: Check, level: float) -> str:
    """One plain sentence: what moved, the evidence, and the verdict."""
    p = check.p_value
    label = feature_label(str(check.details.get("feature", check.name)))
    what = {
        "input": lambda: f"{label}: {_shares_moved(check.details)}; PSI "
                         f"{_g(check.effect)}" if "categories" in check.details else
                         f"{label}: live mean {_g(check.live)} vs "
                         f"reference {_g(check.reference)}; PSI {_g(check.effect)}",
        "embedding": lambda: f"Embeddings: MMD {_g(check.effect)} between live and reference "
                             f"({check.details.get('permutations', 0):,} permutations)",
        "prediction": lambda: f"Predicted classes: {_shares_moved(check.details)}; total "
                              f"variation {_g(check.effect)}",
        "confidence": lambda: f"Confidence: mean {_g(check.live)} live vs {_g(check.reference)}"
                              f" reference (drop {_g(check.effect)})",
        "ood": lambda: f"Out-of-distribution rate: {_pct(check.live)} live vs "
                       f"{_pct(check.reference)} expected (excess {_pct(check.effect)})",
        "performance": lambda: f"Live {check.details.get('metric')}: {_g(check.live)} "
                               f"[{_g(_iv(check, 0))}, {_g(_iv(check, 1))}] on "
                               f"{check.details.get('n', 0):,} labelled vs test "
                               f"{_g(check.reference)}",
    }[check.group]()
    evidence = f"{check.test.split(' + ')[0]} p = {_p(p)} (level {level:.2g})"
    if check.group == "performance":
        floor = check.details.get("floor")
        verdict = (f"ALERT: the upper bound is below {_g(floor)} (test - metric_drop)"
                   if check.alert else f"no alert (alert when the upper bound < {_g(floor)})")
    elif check.alert:
        verdict = "ALERT"
    elif p is not None and p < level and check.threshold is not None:
        verdict = f"significant but below the threshold {_g(check.threshold)}: no alert"
    elif check.threshold is not None and check.effect is not None \
            and check.effect >= check.threshold:
        verdict = "large but not significant at this sample size: no alert"
    else:
        verdict = "no drift"
    return f"{what}. {evidence}: {verdict}."


def _iv(check: Check, i: int) -> float | None:
    interval = check.details.get("interval")
    return interval[i] if interval else None


def _shares_moved(details: dict[str, Any]) -> str:
    ref, cur = details.get("reference_counts") or {}, details.get("live_counts") or {}
    n_ref, n_cur = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
    moves = sorted(((cur.get(k, 0) / n_cur - ref.get(k, 0) / n_ref, k) for k in ref | cur),
                   key=lambda t: -abs(t[0]))[:2]
    return ", ".join(f"{k} {ref.get(k, 0) / n_ref:.0%} -> {cur.get(k, 0) / n_cur:.0%}"
                     for _, k in moves) or "no classes"


def _g(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
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
    return "(missing)" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else str(value)


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
