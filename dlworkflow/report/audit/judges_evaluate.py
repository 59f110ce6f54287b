"""Automatic judges of Model 6-7 and Data 2: data slices, inclusion, and the features that
earn their place."""

from __future__ import annotations

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, checklist_only, judge


@judge("slice_quality")
def slice_quality(ev: Evidence) -> Judgement:
    columns = ev.config.evaluate.slices
    found = ev.metrics()
    if not columns or found is None or not found[1].get("slices"):
        return Judgement(
            0.0,
            "no data slices are evaluated",
            "set evaluate.slices: [COLUMN] in dlworkflow.yaml, then `dlw evaluate`",
        )
    split, report = found
    target, on = ev.config.problem.target, ev.config.evaluate.gate_on  # judged as the test is
    spec = ev.metric_spec(report.get("primary_metric"))
    pessimistic = "low" if spec.higher_is_better else "high"  # the interval's worse end
    below, n = [], 0
    for column in report["slices"]:
        for s in column["slices"]:
            if s.get("low") is None:  # too few samples for an interval: not judged
                continue
            n += 1
            value = s[pessimistic] if on == "lower_bound" else s["metric"]
            if target is not None and not spec.meets(value, target):
                below.append(f"{column['column']}={s['value']} ({value:.3f})")
    names = ", ".join(c["column"] for c in report["slices"])
    if below:
        word = "below" if spec.higher_is_better else "above"  # on the wrong side of it
        return Judgement(
            0.0,
            f"on {split}, slices {word} the target {target}: " + ", ".join(below),
            "improve the model on those slices",
            failed=True,
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
        f"{n} slices of {names} are evaluated by every `dlw evaluate` / "
        f"`dlw test` with intervals; on {split} {meets}",
    )


@judge("inclusion_tested")
def inclusion_tested(ev: Evidence) -> Judgement:
    return checklist_only(
        "which slices concern inclusion (demographic groups) is not recorded; "
        "evaluate.slices can measure them"
    )


@judge("features_beneficial")
def features_beneficial(ev: Evidence) -> Judgement:
    return checklist_only(
        "no feature ablation is recorded (images and texts: the raw input is the feature)"
    )
