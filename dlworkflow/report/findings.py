"""Strengths, limitations, the recommendation and the next steps, each derived from a recorded
piece of evidence (and naming it), never boilerplate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dlworkflow.report.evidence import Evidence
from dlworkflow.report.task_view import fmt, range_start, spec, worse
from dlworkflow.tasks.base import MetricSpec

WEAK_CLASSES = 3  # how many of the weakest classes are named
IMBALANCE_RATIO = 3.0  # largest / smallest class count above which imbalance is a limitation
SMALL_DATA = 1_000  # fewer samples than this is a limitation
SMALL_CLASS = 50  # fewer test... samples per class than this is a limitation
LABEL_ISSUE_RATE = 0.02


@dataclass(frozen=True)
class Finding:
    text: str
    source: str  # where the evidence comes from


def verdict(ev: Evidence) -> dict[str, Any] | None:
    """The test step's verdict record, or None when `dlw test` has not run."""
    record = ev.record("test")
    return dict(record.outputs) if record else None


def builtin_note(source: Any) -> str | None:
    """What a built-in data set says about itself (its catalogue description: e.g. that
    digit-masks' masks are derived by a threshold, or that trees is small), for a
    `builtin:NAME` source; None for any other source."""
    text = str(source or "")
    if not text.startswith("builtin:"):
        return None
    from dlworkflow.datasets import BUILTINS

    name = text.removeprefix("builtin:")
    return BUILTINS.get(name).description if name in BUILTINS.names() else None


def metric_spec(ev: Evidence) -> MetricSpec:
    """The spec (direction) of the metric the verdict and the criterion are written in."""
    metric = (
        (verdict(ev) or {}).get("metric")
        or ev.problem.get("primary_metric")
        or ev.task.default_metric
    )
    return spec(ev.task, metric)


def class_counts(ev: Evidence) -> dict[str, int]:
    counts = (ev.dataset or {}).get("class_counts") or {}
    out = {str(k): int(v) for k, v in counts.items()}
    if ev.view.by_value:  # regression: value ranges in the order of their values
        out = dict(sorted(out.items(), key=lambda kv: range_start(kv[0])))
    return out


def imbalance_ratio(ev: Evidence) -> float | None:
    """Largest / smallest class (multi-label: label); None where it does not apply
    (regression)."""
    if ev.view.imbalance is None:
        return None
    recorded = ev.summary("explore").get("imbalance_ratio")
    if recorded:
        return float(recorded)
    counts = [c for c in class_counts(ev).values() if c > 0]
    return max(counts) / min(counts) if counts else None


def label_issue_rate(ev: Evidence) -> tuple[int, int] | None:
    """(candidates, checked) from the explore record."""
    s = ev.summary("explore")
    if s.get("label_issues") is not None and s.get("label_checked"):
        return int(s["label_issues"]), int(s["label_checked"])
    for line in s.get("warnings") or []:  # records written before the counts were kept
        found = re.search(r"([\d,]+) label-issue candidates \([^)]*? of ([\d,]+) checked", line)
        if found:
            return int(found[1].replace(",", "")), int(found[2].replace(",", ""))
    return None


def weakest_classes(metrics: dict[str, Any], n: int = WEAK_CLASSES) -> list[dict[str, Any]]:
    """The classes (multi-label: labels, as "class") with the lowest F1."""
    per_class = [c for c in metrics.get("per_class") or [] if c.get("f1") is not None]
    per_class += [
        {**c, "class": c.get("label")}
        for c in metrics.get("per_label") or []
        if c.get("f1") is not None
    ]
    return sorted(per_class, key=lambda c: (c["f1"], str(c["class"])))[:n]


def weakest_slices(
    metrics: dict[str, Any], n: int = WEAK_CLASSES, *, higher_is_better: bool = True
) -> list[dict[str, Any]]:
    """The slices with the worst metric (entries of reports/evaluate/<split>/metrics.json):
    the lowest, or the highest when lower is better."""
    found = []
    for group in metrics.get("slices") or []:
        for item in group.get("slices") or []:
            if item.get("metric") is not None and not item.get("note"):
                found.append({**item, "column": group.get("column")})
    sign = 1 if higher_is_better else -1
    return sorted(found, key=lambda s: sign * s["metric"])[:n]


def strengths(ev: Evidence) -> list[Finding]:
    out: list[Finding] = []
    v = verdict(ev)
    if v and v.get("verdict") == "PASS":
        spec_ = metric_spec(ev)
        interval = v.get("interval") or [None, None]
        end, word = (interval[0], "lower") if spec_.higher_is_better else (interval[-1], "upper")
        margin = (
            f"; even the CI's {word} bound {fmt(end)} clears it"
            if (end is not None and spec_.meets(end, v["target"]))
            else ""
        )
        out.append(
            Finding(
                f"Meets the agreed criterion: test {v['metric']} {fmt(v['value'])} "
                f"{spec_.sign()} {v['target']}{margin}.",
                "ledger: test",
            )
        )
    m = ev.test_metrics or {}
    base = m.get("baselines") or {}
    if base.get("simple") and base.get("simple_as_good") is False:
        out.append(
            Finding(
                f"Beats a simple baseline ({base['simple'].get('model')}: "
                f"{fmt(base['simple'].get('value'))}) by a margin whose CI excludes zero.",
                "reports/evaluate/test/metrics.json: baselines",
            )
        )
    if m.get("per_class"):
        strong = [c for c in m["per_class"] if c.get("f1") == 1.0]
        if strong:
            out.append(
                Finding(
                    f"{len(strong)} of {len(m['per_class'])} classes are classified "
                    "without error on the test set.",
                    "reports/evaluate/test/metrics.json: per_class",
                )
            )
    meta = ev.champion_metadata
    if meta and meta.get("parity"):
        p = meta["parity"]
        out.append(
            Finding(
                f"The exported ONNX model reproduces PyTorch: agreement "
                f"{p['agreement']:.1%}, max |dp| {p['max_abs_diff']:.1e} on "
                f"{p['n']} validation samples.",
                f"export v{meta['version']} metadata",
            )
        )
    if ev.test_reuse == 0 and ev.test_reads:
        out.append(
            Finding(
                "The test set was read exactly once: the estimate is unbiased.",
                "ledger: test_reads",
            )
        )
    cal = m.get("calibration") or {}
    if cal.get("ece") is not None and cal["ece"] < 0.05:
        out.append(
            Finding(
                f"Well calibrated: expected calibration error {cal['ece']:.3f}.",
                "reports/evaluate/test/metrics.json: calibration",
            )
        )
    return out


def limitations(ev: Evidence) -> list[Finding]:
    out: list[Finding] = []
    v = verdict(ev)
    if v is None:
        out.append(
            Finding(
                "The model has not been tested on the sealed test set: nothing here "
                "says how it performs on unseen data (run `dlw test`).",
                "ledger: no test run",
            )
        )
    elif v.get("verdict") != "PASS":
        out.append(
            Finding(
                f"Fails the agreed criterion: {v.get('metric')} {fmt(v.get('value'))}"
                f" against target {v.get('target')}.",
                "ledger: test",
            )
        )
    m = ev.test_metrics or ev.val_metrics or {}
    where = "test" if ev.test_metrics else "val"
    weak = weakest_classes(m)
    if weak:
        listed = ", ".join(f"{c['class']} (F1 {c['f1']:.3f}, n={c.get('support')})" for c in weak)
        key = "per_class" if m.get("per_class") else "per_label"
        out.append(
            Finding(
                f"Weakest {ev.view.counted_plural}: {listed}.",
                f"reports/evaluate/{where}/metrics.json: {key}",
            )
        )
    residuals = m.get("residuals") or {}
    if residuals.get("max_abs") is not None:
        out.append(
            Finding(
                f"Errors in the target's units: median |residual| "
                f"{fmt(residuals.get('median_abs'), 3)}, largest "
                f"{fmt(residuals['max_abs'], 3)}, bias (mean residual) "
                f"{fmt(residuals.get('mean'), 3)}.",
                f"reports/evaluate/{where}/metrics.json: residuals",
            )
        )
    slices = weakest_slices(m, higher_is_better=metric_spec(ev).higher_is_better)
    if slices:
        listed = ", ".join(
            f"{s['column']}={s['value']} ({fmt(s['metric'], 3)}, n={s['n']})" for s in slices
        )
        out.append(
            Finding(f"Weakest slices: {listed}.", f"reports/evaluate/{where}/metrics.json: slices")
        )
    elif m and not m.get("slices"):
        out.append(
            Finding(
                "No slices were evaluated (evaluate.slices is empty): performance "
                "on subgroups is unknown.",
                "dlworkflow.yaml: evaluate.slices",
            )
        )
    n = (ev.dataset or {}).get("n_samples")
    if n is not None and n < SMALL_DATA:
        out.append(Finding(f"Small dataset: {n:,} samples.", ".dlw/dataset.json"))
    counts = ev.summary("split").get("counts") or {}
    classes = len(class_counts(ev)) or 1
    if ev.task.dense and counts.get("test") and counts["test"] < SMALL_CLASS:
        n_test = int(counts["test"])
        out.append(
            Finding(
                f"Only {n_test} test image{'s' if n_test != 1 else ''}: the intervals "
                "resample these images, so they understate the uncertainty of a result on "
                "so few.",
                "ledger: split counts",
            )
        )
    if ev.task.single_label and counts.get("test") and counts["test"] / classes < SMALL_CLASS:
        out.append(
            Finding(
                f"About {counts['test'] // classes} test samples per class: "
                "per-class results have wide intervals.",
                "ledger: split counts",
            )
        )
    ratio = imbalance_ratio(ev)
    if ratio is not None and ratio > IMBALANCE_RATIO:
        word = ev.view.imbalance or "classes"
        out.append(
            Finding(
                f"Imbalanced {word}: the largest is {ratio:.1f}x the smallest.",
                "explore / .dlw/dataset.json",
            )
        )
    li = label_issue_rate(ev)
    if li and li[0]:
        rate = li[0] / li[1]
        severity = "high" if rate > LABEL_ISSUE_RATE else "low"
        out.append(
            Finding(
                f"Label-issue candidates: {li[0]} of {li[1]:,} checked samples "
                f"({rate:.1%}, {severity}); labels were not all verified.",
                "ledger: explore",
            )
        )
    if ev.test_reuse:
        out.append(
            Finding(
                f"The sealed test set was reused {ev.test_reuse} time(s) after its "
                "first read: the test estimate is optimistic.",
                "ledger: test_reads",
            )
        )
    for meta in ev.forced_exports:
        f = meta["forced"]
        out.append(
            Finding(
                f"v{meta['version']} was exported with --force ({f.get('verdict')}) "
                f"by {f.get('by')}: {f.get('reason')}",
                f"models/v{meta['version']}/metadata.json",
            )
        )
    for item in ev.forced_serving:
        out.append(
            Finding(
                f"v{item.get('version')} ({item.get('verdict')}) was served with "
                f"--force by {item.get('by')} at {item.get('at')}: "
                f"{item.get('reason')}",
                ".dlw/serve/forced.jsonl",
            )
        )
    base = m.get("baselines") or {}
    if base.get("simple_as_good"):
        out.append(
            Finding(
                f"A simple model ({base['simple'].get('model')}) does as well: "
                f"{fmt(base['simple'].get('value'))} vs "
                f"{fmt((base.get('network') or {}).get('value'))}.",
                f"reports/evaluate/{where}/metrics.json: baselines",
            )
        )
    cal = m.get("calibration") or {}
    if cal.get("ece") is not None and cal["ece"] >= 0.05:
        out.append(
            Finding(
                f"Confidences are miscalibrated (ECE {cal['ece']:.3f}): do not read "
                "them as probabilities without temperature scaling.",
                f"reports/evaluate/{where}/metrics.json: calibration",
            )
        )
    if ev.audit is not None:
        final = ev.audit.final
        weakest = ", ".join(f"{k} {final:g}" for k in ev.audit.weakest)
        out.append(
            Finding(
                f"ML Test Score {final:g} out of 7 (the minimum of its four "
                f"sections; lowest: {weakest or 'n/a'}): {ev.audit.level}.",
                "dlw audit",
            )
        )
    out.append(drift_risk(ev))
    return out


def drift_risk(ev: Evidence) -> Finding:
    source = str((ev.dataset or {}).get("source") or "unknown")
    if ev.n_predictions_logged:
        return Finding(
            f"Drift risk: {ev.n_predictions_logged:,} served predictions are logged "
            "but no monitoring step compares them with the training data yet; "
            f"data came from one source ({source}).",
            ".dlw/serve/predictions.jsonl",
        )
    return Finding(
        f"Drift risk: all data came from one source ({source}) and no served "
        "predictions are logged, so nothing yet shows how production inputs "
        "differ from it.",
        ".dlw/dataset.json, .dlw/serve/",
    )


def recommendation(ev: Evidence) -> str:
    v = verdict(ev)
    if v is None:
        return (
            "No decision yet: the model has not been tested against the agreed criterion. "
            "Run `dlw test` once, then `dlw report` again."
        )
    m = ev.test_metrics or {}
    base = m.get("baselines") or {}
    caveats = []
    if ev.test_reuse:
        caveats.append(
            f"the test set was reused {ev.test_reuse} time(s), so the estimate is "
            "optimistic: confirm on fresh data"
        )
    if ev.forced_exports or ev.forced_serving:
        caveats.append("a model was deployed with --force; review those decisions")
    failed = [c for c in v.get("constraints") or [] if not c.get("passed")]
    if failed:
        caveats.append(
            "it breaks the deployment constraint(s) " + ", ".join(c["name"] for c in failed)
        )
    if v.get("verdict") == "PASS" and not failed:
        if base.get("simple_as_good"):
            text = (
                f"Deploy the simpler model instead: {base['simple'].get('model')} does as "
                "well as the network on the test set at a fraction of the cost."
            )
        else:
            text = (
                f"Deploy: the model meets the agreed criterion ({v['metric']} "
                f"{fmt(v['value'])} {metric_spec(ev).sign()} {v['target']})."
            )
    elif v.get("verdict") == "PASS":
        text = "Do not deploy as is: the metric passes but a deployment constraint fails."
    else:
        text = (
            f"Do not deploy: the model misses the agreed criterion ({v.get('metric')} "
            f"{fmt(v.get('value'))} {worse(metric_spec(ev))} {v.get('target')}); improve "
            "the data or the model and test on a fresh test set."
        )
    if caveats:
        text += " Caveats: " + "; ".join(caveats) + "."
    return text


def next_steps(ev: Evidence) -> list[str]:
    steps = []
    commands = [
        ("define", "dlw define --metric ... --target ..."),
        ("ingest", "dlw ingest SOURCE"),
        ("explore", "dlw explore"),
        ("split", "dlw split"),
        ("train", "dlw train"),
        ("test", "dlw test"),
    ]
    for step, command in commands:
        if ev.record(step) is None:
            steps.append(f"Run `{command}` (step {step} has not run).")
    v = verdict(ev)
    if v and v.get("verdict") == "PASS" and not ev.versions:
        steps.append("Export the tested model: `dlw export`.")
    if ev.versions and ev.champion is not None:
        steps.append("Serve the champion and watch its predictions: `dlw serve`.")
    li = label_issue_rate(ev)
    if li and li[0]:
        steps.append(f"Review the {li[0]} label-issue candidates in reports/eda.html.")
    m = ev.test_metrics or {}
    if m and not m.get("slices"):
        steps.append("Name subgroup columns in evaluate.slices and evaluate on them.")
    if ev.audit is None:
        steps.append("Score the project on the ML Test Score: `dlw audit`.")
    steps.append("Collect fresh labelled data to re-test the model before the next decision.")
    return steps
