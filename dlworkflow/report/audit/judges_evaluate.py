"""Automatic judges of Model 6-7 and Data 2: data slices, inclusion, and the features that
earn their place."""

from __future__ import annotations

from typing import Any

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge

NEXT_SLICES = "set evaluate.slices: [COLUMN] in dlworkflow.yaml, then `dlw evaluate`"
NEXT_SENSITIVE = "data.sensitive_columns: [COLUMN] in dlworkflow.yaml, then `dlw evaluate`"


def _interval(item: dict[str, Any], digits: int = 3) -> str:
    if item.get("low") is None:
        return ""
    return f" [{item['low']:.{digits}f}, {item['high']:.{digits}f}]"


@judge("slice_quality")
def slice_quality(ev: Evidence) -> Judgement:
    found = ev.metrics()
    if found is None:
        return Judgement(
            0.0,
            "no evaluation of the current model is recorded",
            "`dlw evaluate` (slices by what the data has: evaluate.auto_slices)",
        )
    split, report = found
    if not report.get("slices"):
        return Judgement(0.0, f"no data slices are evaluated on {split}", NEXT_SLICES)
    target, on = ev.config.problem.target, ev.config.evaluate.gate_on  # judged as the test is
    spec = ev.metric_spec(report.get("primary_metric"))
    pessimistic = "low" if spec.higher_is_better else "high"  # the interval's worse end
    hopeful = "high" if spec.higher_is_better else "low"  # and its better end
    below: list[str] = []  # the whole interval misses the target: shown to fall short
    unsure: list[str] = []  # the judged value misses, the interval still reaches the target
    n = 0
    for column in report["slices"]:
        for s in column["slices"]:
            if s.get("low") is None:  # too few samples for an interval: not judged
                continue
            n += 1
            value = s[pessimistic] if on == "lower_bound" else s["metric"]
            if target is None or spec.meets(value, target):
                continue
            named = f"{column['column']}={s['value']} ({value:.3f}{_interval(s)})"
            (unsure if spec.meets(s[hopeful], target) else below).append(named)
    names = ", ".join(c["column"] for c in report["slices"])
    how = (
        " (chosen automatically from the data: evaluate.auto_slices)"
        if report.get("slices_auto")
        else ""
    )
    worst = report.get("worst_slice")
    flag = (
        f"; worst slice {worst['column']}={worst['value']}: {worst['metric']:.3f}"
        f"{_interval(worst)}, wholly {'below' if spec.higher_is_better else 'above'} the "
        f"overall {worst['overall']:.3f}"
        if worst
        else "; no slice's interval lies wholly on the worse side of the overall metric"
    )
    if below:
        word = "below" if spec.higher_is_better else "above"  # on the wrong side of it
        return Judgement(
            0.0,
            f"on {split}, slices {word} the target {target} (the whole interval): "
            + ", ".join(below + unsure)
            + flag,
            "improve the model on those slices (or gather more samples like them: "
            "`dlw retrain --data FOLDER`)",
            failed=True,
        )
    if unsure:
        word = "below" if spec.higher_is_better else "above"
        return Judgement(
            0.5,
            f"{n} slices of {names}{how} are evaluated with intervals; on {split}, "
            f"{len(unsure)} {'is' if len(unsure) == 1 else 'are'} {word} the target {target} "
            f"but {'its' if len(unsure) == 1 else 'their'} interval still reaches it (too few "
            "samples to tell): " + ", ".join(unsure) + flag,
            "gather more samples like them (`dlw retrain --data FOLDER`) so the slice's "
            "interval shows whether it meets the target, or improve the model on them",
        )
    judged = (
        "value"
        if on != "lower_bound"
        else "lower bound"
        if spec.higher_is_better
        else "upper bound"
    )
    meets = (
        f"every one meets the target {spec.criterion(float(target))} ({judged})"
        if target is not None
        else "no target is set"
    )
    return Judgement(
        1.0,
        f"{n} slices of {names}{how} are evaluated by every `dlw evaluate` / "
        f"`dlw test` with intervals; on {split} {meets}{flag}",
    )


@judge("inclusion_tested")
def inclusion_tested(ev: Evidence) -> Judgement:
    found = ev.metrics()
    if found is None:
        return Judgement(
            0.0,
            "no evaluation of the current model is recorded",
            NEXT_SENSITIVE if not ev.config.data.sensitive_columns else "`dlw evaluate`",
        )
    split, report = found
    groups = report.get("inclusion") or []
    if groups:
        parts, missing = [], []
        for entry in groups:
            gap = entry.get("gap")
            shown = ", ".join(
                f"{s['value']} {s['metric']:.3f}{_interval(s)} n={s['n']}"
                for s in entry["slices"]
                if s.get("metric") is not None
            )
            if gap is None or gap.get("value") is None:
                missing.append(entry["column"])
                parts.append(f"{entry['column']}: {shown} (fewer than two groups with an interval)")
                continue
            sure = (
                "; the gap is real (its interval excludes 0)"
                if gap["low"] is not None and gap["low"] > 0
                else "; the interval of the gap reaches 0"
            )
            parts.append(
                f"{entry['column']}: {shown}; largest gap {gap['value']:.3f}{_interval(gap)} "
                f"({gap['better']} vs {gap['worse']}){sure}"
            )
        text = f"on {split}, {entry['metric']} per group of the sensitive columns: " + "; ".join(
            parts
        )
        if missing:
            return Judgement(
                0.5,
                text,
                f"more samples per group of {', '.join(missing)} (or a lower "
                "evaluate.slice_min_samples), then `dlw evaluate`",
            )
        return Judgement(1.0, text)
    if report.get("slices"):
        names = ", ".join(c["column"] for c in report["slices"])
        return Judgement(
            0.5,
            f"slices of {names} are measured on {split}, but no column is marked as "
            "concerning inclusion (data.sensitive_columns is empty)",
            NEXT_SENSITIVE,
        )
    return Judgement(0.0, f"no slices or sensitive groups are measured on {split}", NEXT_SENSITIVE)


@judge("features_beneficial")
def features_beneficial(ev: Evidence) -> Judgement:
    found = ev.metrics()
    if found is None:
        return Judgement(
            0.0,
            "no evaluation of the current model is recorded",
            "`dlw evaluate` (evaluate.importance measures which inputs the model relies on)",
        )
    split, report = found
    imp = report.get("importance")
    if not imp:
        return Judgement(
            0.0,
            f"no feature importance is recorded with the evaluation on {split}",
            "evaluate.importance: true in dlworkflow.yaml, then `dlw evaluate`",
        )
    weights = imp.get("weights_sha256")
    if weights and ev.train_hash and weights != ev.train_hash:
        return Judgement(
            0.0,
            "the recorded importance is of another model than the current one",
            "`dlw evaluate`",
        )
    entries = [e for e in imp.get("features") or [] if e.get("drop") is not None]
    if not entries:
        return Judgement(
            0.0, f"importance was not measured: {imp.get('summary')}", "`dlw evaluate`"
        )
    text = f"measured automatically for the current model ({imp.get('model')}): {imp['summary']}"
    flagged = imp.get("flagged") or []
    if imp.get("modality") == "tabular" and flagged:
        return Judgement(
            0.5,
            text,
            f"drop {', '.join(flagged)} from data.feature_columns in dlworkflow.yaml (list "
            "the features that help), then `dlw ingest` and `dlw train`",
        )
    return Judgement(1.0, text)
