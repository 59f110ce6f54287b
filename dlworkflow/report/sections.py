"""The sections of the report, big picture first; each is built from the evidence alone, and
a section whose step has not run says so and names the command to run."""

from __future__ import annotations

from typing import Any

from dlworkflow.plots import curves_png
from dlworkflow.report.evidence import Evidence
from dlworkflow.report.explain_section import explanations
from dlworkflow.report.findings import (
    Finding,
    builtin_note,
    class_counts,
    fmt,
    imbalance_ratio,
    label_issue_rate,
    limitations,
    metric_spec,
    next_steps,
    recommendation,
    strengths,
    verdict,
)
from dlworkflow.report.html import (
    Section,
    bullet_list,
    code,
    esc,
    figure,
    missing,
    paragraph,
    png_figure,
    table,
)
from dlworkflow.report.task_view import metric_label, metric_rows
from dlworkflow.runtime.versions import ONNX_FILE, version_folder
from dlworkflow.style import must_know


def all_sections(ev: Evidence) -> list[Section]:
    return [
        summary(ev),
        data(ev),
        approach(ev),
        results(ev),
        explanations(ev),
        strengths_limitations(ev),
        deployment(ev),
        audit(ev),
        next_steps_section(ev),
        appendix(ev),
    ]


def criterion_text(ev: Evidence) -> str | None:
    p = ev.problem
    if p.get("primary_metric") is None or p.get("target") is None:
        return None
    text = f"{metric_spec(ev).criterion(float(p['target']))} on the sealed test set"
    c = p.get("constraints") or {}
    if c.get("max_latency_ms"):
        text += f"; CPU latency <= {c['max_latency_ms']:g} ms"
    if c.get("max_model_size_mb"):
        text += f"; model size <= {c['max_model_size_mb']:g} MB"
    return text


def verdict_html(ev: Evidence) -> str:
    v = verdict(ev)
    if v is None:
        return (
            "<div class='verdict NONE' id='verdict' data-verdict='NONE'>"
            "Not tested yet</div>" + missing("not tested yet", "dlw test")
        )
    lo, hi = (v.get("interval") or [None, None])[:2]
    confidence = (ev.test_metrics or {}).get("confidence", 0.95)
    word = v.get("verdict", "?")
    text = (
        f"{word}: test {v['metric']} {fmt(v.get('value'))} "
        f"({confidence:.0%} CI {fmt(lo)} to {fmt(hi)}), target {v.get('target')}"
    )
    if v.get("gate_on") == "lower_bound":
        text += (
            " (judged on the CI's lower bound)"
            if metric_spec(ev).higher_is_better
            else " (judged on the CI's upper bound: the pessimistic end)"
        )
    return (
        f"<div class='verdict {esc(word)}' id='verdict' data-verdict='{esc(word)}'>"
        f"{esc(text)}</div><p>on {v.get('n')} sealed test samples; "
        f"{esc(_reuse_text(ev))}</p>"
    )


def _reuse_text(ev: Evidence) -> str:
    n = len(ev.test_reads)
    if ev.test_reuse:
        return (
            f"the test set has been read {n} times (reused {ev.test_reuse} time(s)): "
            "the estimate is optimistic"
        )
    return "the test set was read once"


def opening(ev: Evidence) -> str:
    """The three things a decision maker must know, first: the verdict, the recommendation,
    and the main limitation (the first one that is not the verdict itself)."""
    v = verdict(ev)
    if v is None:
        said = "Not tested yet: nothing here says how the model does on unseen data."
        tone = "warn"
    else:
        lo, hi = (v.get("interval") or [None, None])[:2]
        said = (
            f"{v.get('verdict', '?')}: test {v.get('metric')} {fmt(v.get('value'))} "
            f"(CI {fmt(lo)} to {fmt(hi)}) against the target {v.get('target')}, on "
            f"{v.get('n')} sealed test samples."
        )
        tone = "good" if v.get("verdict") == "PASS" else "bad"
    about_verdict = ("Fails the agreed criterion", "The model has not been tested")
    rest = [f for f in limitations(ev) if not f.text.startswith(about_verdict)]
    limit = (
        f"Main limitation: {rest[0].text}"
        if rest
        else "No limitation found in the records (see Strengths and limitations)."
    )
    return must_know([said, recommendation(ev), limit], tone=tone)


def summary(ev: Evidence) -> Section:
    p = ev.problem
    objective = p.get("objective")
    parts = [
        "<div class='grid'><div>",
        "<h3>The problem</h3>",
        paragraph(objective)
        if objective
        else missing("no objective written yet", 'dlw define --objective "..."'),
        f"<p>Task: {esc(ev.config.get('task', '').replace('-', ' '))}"
        + (
            f"; {ev.view.counted_plural}: {esc(', '.join(class_counts(ev))[:200])}"
            if class_counts(ev)
            else ""
        )
        + "</p>",
    ]
    if p.get("constituencies"):
        parts.append(f"<p>Who is affected and decides: {esc(', '.join(p['constituencies']))}</p>")
    parts.append("<h3>Agreed success criterion</h3>")
    crit = criterion_text(ev)
    parts.append(
        paragraph(crit)
        if crit
        else missing(
            "no success criterion agreed yet", "dlw define --metric accuracy --target 0.95"
        )
    )
    parts += [
        "<h3>Verdict</h3>",
        verdict_html(ev),
        "<h3>Recommendation</h3>",
        f"<p class='recommendation' id='recommendation'>{esc(recommendation(ev))}</p>",
        "</div><div>",
        "<h3>Key figure</h3>",
        key_figure(ev),
        "</div></div>",
    ]
    return Section("summary", "Summary", "".join(parts))


def key_figure(ev: Evidence) -> str:
    m = ev.test_metrics
    for key, caption in ev.view.key_figures:
        if m and (m.get("figures") or {}).get(key):
            return figure(ev.root / m["figures"][key], caption)
    for key, caption in ev.view.key_figures:
        if ev.val_metrics and (ev.val_metrics.get("figures") or {}).get(key):
            return figure(
                ev.root / ev.val_metrics["figures"][key],
                caption.split(" on the sealed test set")[0]
                + " on validation (the test has not run).",
            )
    return missing("no evaluation figure yet", "dlw test")


def data(ev: Evidence) -> Section:
    if ev.record("ingest") is None or ev.dataset is None:
        return Section("data", "The data", missing("no data ingested yet", "dlw ingest SOURCE"))
    d = ev.dataset
    ingest = ev.summary("ingest")
    rows = [
        ("source", d.get("source")),
        *([("about the source", about)] if (about := builtin_note(d.get("source"))) else []),
        ("samples", f"{d.get('n_samples', 0):,}"),
        *(
            [(ev.view.count_total, f"{sum(class_counts(ev).values()):,}")]
            if ev.view.count_total
            else []
        ),
        ("quarantined (unusable)", f"{d.get('n_quarantined', 0):,}"),
        (ev.view.counted_plural, len(d.get("classes") or [])),
        ("dataset version (hash)", d.get("version")),
        ("sample size", "x".join(str(s) for s in d["size"]) if d.get("size") else "n/a"),
    ]
    ratio = imbalance_ratio(ev)
    if ratio is not None:
        word = "class" if ev.view.imbalance == "classes" else "label"
        rows.append((f"imbalance (largest / smallest {word})", f"{ratio:.2f}"))
    split = ev.summary("split")
    if split.get("counts"):
        rows.append(("split", ", ".join(f"{k} {v:,}" for k, v in split["counts"].items())))
        rows.append(("test seal", ev.outputs("split").get("seal")))
    else:
        rows.append(("split", "not split yet: run `dlw split`"))
    body = [table(None, rows)]
    counts = class_counts(ev)
    if counts:
        unit = ev.view.count_unit
        body.append(f"<h3>{unit[0].upper() + unit[1:]} per {ev.view.counted}</h3>")
        body.append(table([ev.view.counted, unit], [(k, f"{v:,}") for k, v in counts.items()]))
        if ev.view.count_note:
            body.append(paragraph(ev.view.count_note))
    if ev.view.data_extra is not None:
        body.append(ev.view.data_extra(ev.summary("explore").get("target") or {}))
    body.append("<h3>Exploration highlights and warnings</h3>")
    if ev.record("explore") is None:
        body.append(missing("the data has not been explored yet", "dlw explore"))
    else:
        ex = ev.summary("explore")
        li = label_issue_rate(ev)
        if li:
            body.append(
                paragraph(
                    f"Label-issue candidates: {li[0]} of {li[1]:,} checked ({li[0] / li[1]:.1%})."
                )
            )
        warnings = ex.get("warnings") or []
        body.append(bullet_list(warnings) if warnings else paragraph("No warnings were raised."))
        body.append(
            paragraph(f"The full exploration report: reports/eda.html ({ex.get('headline', '')}).")
        )
    body.append("<h3>Data tests: schema, requirements, feature cost</h3>")
    body.append(_data_tests(ev, ingest))
    body.append("<h3>De-identification</h3>")
    body.append(_privacy(ev, ingest))
    return Section("data", "The data", "".join(body))


def _data_tests(ev: Evidence, ingest: dict[str, Any]) -> str:
    """The feature schema and data requirements the latest ingest checked, and the feature
    cost the champion's export measured."""
    from dlworkflow.data.requirements import describe
    from dlworkflow.report.audit.judges_data import cost_text

    schema = ingest.get("schema") or {}
    if schema.get("mode") == "checked":
        diffs = ", ".join(f"{k}: {n:,}" for k, n in (schema.get("differences") or {}).items())
        schema_row = (
            f"{schema.get('summary')}; {schema.get('checked', 0):,} samples checked against it, "
            f"{schema.get('quarantined', 0):,} quarantined, {schema.get('outside', 0):,} kept "
            f"outside a soft expectation{' (' + diffs + ')' if diffs else ''}"
        )
    elif schema:
        schema_row = f"{schema.get('summary')} ({schema.get('why')})"
    else:
        schema_row = "not recorded: run `dlw ingest` again"
    checked = ingest.get("requirements")
    release = ev.champion_metadata
    cost = (release or {}).get("feature_cost")
    rows = [
        ("feature schema (.dlw/data/schema.json)", schema_row),
        (
            "data requirements",
            describe(checked) if isinstance(checked, dict) else "not checked: `dlw ingest`",
        ),
        (
            "feature cost (serving)",
            f"v{release.get('version')}: {cost_text(cost)}"
            if release and cost
            else "not measured: `dlw export`",
        ),
    ]
    violations = (checked or {}).get("violations") or [] if isinstance(checked, dict) else []
    rows += [("requirement NOT MET", text) for text in violations]
    return table(None, rows)


def _privacy(ev: Evidence, ingest: dict[str, Any]) -> str:
    sensitivity = ev.problem.get("data_sensitivity", "none")
    rec = ev.privacy
    if rec is None:
        scan = (
            "no privacy scan is recorded"
            if sensitivity == "none"
            else "no privacy scan is recorded, yet the data is marked " + sensitivity
        )
        return paragraph(
            f"Data sensitivity: {sensitivity}; {scan}; de-identification: "
            f"{'done' if ingest.get('deidentified') else 'not done'}."
        )
    rows = [
        ("data sensitivity", sensitivity),
        ("mode", rec.get("mode")),
        ("samples scanned", rec.get("n_scanned")),
        ("samples with findings", rec.get("n_samples_with_findings")),
        ("findings", rec.get("n_findings")),
        ("findings remaining", rec.get("remaining")),
        (
            "by action",
            ", ".join(f"{k}: {v}" for k, v in (rec.get("by_action") or {}).items()) or "none",
        ),
    ]
    return table(None, rows)


def _spec_words(ev: Evidence, record: Any) -> str:
    """dlworkflow.yaml in git at this training (its commit), and the linked review."""
    from dlworkflow.report.audit.judges_train import describe_spec

    spec = record.summary.get("spec")
    if not isinstance(spec, dict):
        return "not recorded (trained by a dlworkflow before the record)"
    review = ((ev.config.get("audit") or {}).get("model_specs_reviewed") or {}).get("note")
    return describe_spec(spec, record.id) + (f"; review: {review}" if review else "")


def _numerics_words(numerics: dict[str, Any] | None) -> str:
    if not numerics or not numerics.get("every_step"):
        return "not recorded (trained by a dlworkflow before the per-step check)"
    return (
        f"loss and gradient norm finite at each of {numerics.get('steps_checked')} optimizer "
        f"steps (largest gradient norm {fmt(numerics.get('max_grad_norm'))})"
    )


def approach(ev: Evidence) -> Section:
    model_cfg = ev.config.get("model") or {}
    train_cfg = ev.config.get("train") or {}
    record = ev.record("train")
    if record is None:
        return Section(
            "approach",
            "The approach",
            paragraph(f"Configured model: {model_cfg.get('name')}.")
            + missing("no model trained yet", "dlw train")
            + "<h3>Tuning</h3>"
            + tuning(ev),
        )
    s = record.summary
    t = ev.trained or {}
    transfer = s.get("transfer") or t.get("transfer") or {}
    rows = [
        ("model", s.get("model")),
        ("why this model", _why_model(ev, s)),
        (
            "transfer learning",
            f"{transfer.get('strategy', 'n/a')}: {transfer.get('reason', '')}".strip(": "),
        ),
        (
            "epochs run",
            f"{s.get('epochs_run')} (best {s.get('best_epoch')}"
            f"{', stopped early' if s.get('stopped_early') else ''})",
        ),
        (f"best validation {s.get('metric')}", fmt(s.get("val_metric"))),
        ("training time", f"{s.get('seconds')} s on {s.get('devices', 1)} device(s)"),
        ("MLflow run", s.get("mlflow_run_id")),
        ("model spec in git", _spec_words(ev, record)),
        ("numerical check", _numerics_words(s.get("numerics") or t.get("numerics"))),
    ]
    settings = ", ".join(f"{k}={v}" for k, v in train_cfg.items() if not isinstance(v, dict))
    body = [table(None, rows), "<h3>Training settings</h3>", paragraph(settings or "defaults")]
    history = t.get("history") or []
    png = curves_png(history, str(s.get("metric")))
    body.append("<h3>Training curves</h3>")
    body.append(
        png_figure(png, "Loss and validation metric per epoch (from the trained model's history).")
        if png
        else paragraph("No training history was recorded.")
    )
    body.append("<h3>Tuning</h3>")
    runs = ev.train_runs
    tuned = ev.record("tune") is not None
    body.append(tuning(ev) if tuned else "")
    if len(runs) > 1:
        body.append("<h4>Training runs</h4>" if tuned else "")
        body.append(
            table(
                ["ledger run", "model", f"validation {s.get('metric')}", "epochs"],
                [
                    (
                        r.id,
                        r.summary.get("model"),
                        fmt(r.summary.get("val_metric")),
                        r.summary.get("epochs_run"),
                    )
                    for r in runs
                ],
            )
        )
    elif not tuned:
        body.append(
            paragraph(
                "One training run is recorded and no study: no tuning was done "
                "(`dlw tune` searches the `tune.space` of dlworkflow.yaml)."
            )
        )
    return Section("approach", "The approach", "".join(body))


def tuning(ev: Evidence) -> str:
    """The last `dlw tune` study as the ledger step "tune" recorded it (reports/tune.html has
    the figures and every trial)."""
    record = ev.record("tune")
    if record is None:  # optional: not a missing step
        return paragraph(
            "No hyperparameter search is recorded (`dlw tune` searches the "
            "`tune.space` of dlworkflow.yaml on the validation split, or, when it is empty, "
            "the default space of the model and strategy that `dlw config show` lists)."
        )
    s, out = record.summary, record.outputs
    counts = {k: s.get(f"n_{k}") for k in ("complete", "pruned", "failed")}
    total = s.get("n_trials")
    if total is None and any(v is not None for v in counts.values()):
        total = sum(v or 0 for v in counts.values())
    metric = s.get("metric") or ev.problem.get("primary_metric") or "metric"
    rows = [
        ("study", s.get("study") or s.get("study_name")),
        ("status", record.status + (f" ({record.ended})" if record.ended else "")),
        ("trials", f"{fmt(total)} (" + ", ".join(f"{k} {fmt(v)}" for k, v in counts.items()) + ")"),
        (
            "search",
            ", ".join(f"{k} {s[k]}" for k in ("sampler", "pruner", "backend") if s.get(k)) or "n/a",
        ),
        (f"best validation {metric}", fmt(s.get("best_value"))),
        ("best trial", fmt(s.get("best_trial"))),
    ]
    if s.get("space_source") == "default":  # tune.space was empty: the default was searched
        rows.insert(2, ("search space", f"{s.get('space_basis')} (tune.space is empty)"))
    elif s.get("space"):
        rows.insert(2, ("search space", f"tune.space of dlworkflow.yaml: {', '.join(s['space'])}"))
    if s.get("epochs"):
        rows.insert(4, ("epochs per trial", fmt(s.get("epochs"))))
    body = [table(None, rows)]
    params = s.get("best_params") or {}
    if params:
        body.append(
            table(
                ["parameter", "best value"],
                [(k, f"{v:.4g}" if isinstance(v, float) else v) for k, v in sorted(params.items())],
            )
        )
    link = _tune_link(ev, out.get("report"))
    body.append(
        f"<p>Optimisation history, parameter importances, parallel coordinates and "
        f"every trial: {link}. Trials read the train and validation splits only; "
        f"`dlw tune --apply` writes the best parameters into dlworkflow.yaml.</p>"
    )
    return "".join(body)


def _tune_link(ev: Evidence, recorded: str | None) -> str:
    """A link to tune.html relative to reports/ (where report.html is written)."""
    import os
    from pathlib import Path

    path = Path(recorded or "reports/tune.html")
    path = path if path.is_absolute() else ev.root / path
    shown = os.path.relpath(path, ev.root) if path.is_relative_to(ev.root) else str(path)
    if not path.is_file():
        return f"{esc(shown)} (not found)"
    href = os.path.relpath(path, ev.root / "reports").replace(os.sep, "/")
    return f"<a href='{esc(href)}'>{esc(shown)}</a>"


def _why_model(ev: Evidence, s: dict[str, Any]) -> str:
    base = (ev.test_metrics or ev.val_metrics or {}).get("baselines") or {}
    simple = base.get("simple") or {}
    if simple:
        verdict_word = "does as well" if base.get("simple_as_good") else "does worse"
        return (
            f"compared with a simple model ({simple.get('model')}), which {verdict_word} "
            f"({fmt(simple.get('value'))})"
        )
    return f"the task's configured model ({s.get('model')}); no simpler model was compared"


def results(ev: Evidence) -> Section:
    m = ev.test_metrics
    if m is None or ev.record("test") is None:
        text = missing("not tested yet", "dlw test")
        if ev.val_metrics:
            text += paragraph("Validation results exist (`dlw evaluate`); they are not a test.")
        return Section("results", "The results", text)
    v = verdict(ev) or {}
    conf = m.get("confidence", 0.95)
    task, view = ev.task, ev.view
    rows = []
    for name, spec_, item in metric_rows(task, m.get("metrics") or {}):
        agreed = name == v.get("metric")
        rows.append(
            (
                metric_label(name, spec_) + (" (agreed)" if agreed else ""),
                fmt(item.get("value")),
                f"{fmt(item.get('low'))} to {fmt(item.get('high'))}",
                f"{spec_.sign()} {v.get('target')}" if agreed else "",
            )
        )
    body = [
        paragraph(
            f"Task: {task.name}. On {m.get('n')} sealed test samples; {conf:.0%} "
            f"bootstrap intervals ({m.get('n_resamples')} resamples)."
        ),
        table(["metric", "value", f"{conf:.0%} CI", "target"], rows),
    ]
    body.append(view.before(ev.root, m, task))
    body.append("<h3>Slices</h3>")
    if m.get("slices_auto"):
        body.append(
            paragraph(
                "Sliced by what the data has (evaluate.auto_slices; evaluate.slices chooses "
                "columns instead)."
            )
        )
    if m.get("slices"):
        for group in m["slices"]:
            body.append(
                table(
                    [group["column"], "n", group.get("metric", ""), "CI", "note"],
                    [
                        (
                            sl["value"],
                            sl["n"],
                            fmt(sl.get("metric"), 3),
                            f"{fmt(sl.get('low'), 3)} to {fmt(sl.get('high'), 3)}",
                            sl.get("note") or "",
                        )
                        for sl in group.get("slices") or []
                    ],
                )
            )
    else:
        body.append(paragraph("No slices configured (evaluate.slices in dlworkflow.yaml)."))
    body.append(_slice_findings(ev, m))
    body.append(view.calibration(ev.root, m, task))
    base = m.get("baselines")
    if base:
        body.append("<h3>Against baselines</h3>")
        body.append(
            table(
                ["model", base.get("metric", ""), "CI"],
                [
                    (
                        _baseline_name(name, b),
                        fmt(b.get("value")),
                        f"{fmt(b.get('low'))} to {fmt(b.get('high'))}",
                    )
                    for name, b in base.items()
                    if isinstance(b, dict) and "value" in b
                ],
            )
        )
    body.append(view.after(ev.root, m, task))
    return Section("results", "The results", "".join(body))


def _baseline_name(name: str, b: dict[str, Any]) -> str:
    """The row's name: the simple model and any other fitted baseline (sequences' 1-NN
    Euclidean) by their model, with how they were capped (their note)."""
    if name != "simple" and not b.get("model"):
        return name
    text = f"simple: {b.get('model')}" if name == "simple" else str(b.get("model"))
    return f"{text} ({b['note']})" if b.get("note") else text


def _slice_findings(ev: Evidence, m: dict[str, Any]) -> str:
    """The worst slice, the groups of the sensitive columns with their largest gap, and
    which inputs the model relies on (importance, on validation)."""
    body = []
    worst = m.get("worst_slice")
    if worst:
        body.append(
            paragraph(
                f"Worst slice: {worst['column']} = {worst['value']}, {fmt(worst['metric'], 3)} "
                f"({fmt(worst['low'], 3)} to {fmt(worst['high'], 3)}, n={worst['n']}): its "
                f"whole interval is on the worse side of the overall {fmt(worst['overall'], 3)}."
            )
        )
    elif m.get("slices"):
        body.append(paragraph("No slice's interval lies wholly below the overall metric."))
    for entry in m.get("inclusion") or []:
        body.append(f"<h3>Inclusion: {esc(entry['column'])}</h3>")
        body.append(
            table(
                [entry["column"], "n", entry.get("metric", ""), "CI", "note"],
                [
                    (
                        sl["value"],
                        sl["n"],
                        fmt(sl.get("metric"), 3),
                        f"{fmt(sl.get('low'), 3)} to {fmt(sl.get('high'), 3)}",
                        sl.get("note") or "",
                    )
                    for sl in entry.get("slices") or []
                ],
            )
        )
        gap = entry.get("gap")
        body.append(
            paragraph(
                f"Largest gap: {fmt(gap['value'], 3)} ({fmt(gap['low'], 3)} to "
                f"{fmt(gap['high'], 3)}), {gap['better']} against {gap['worse']}."
                if gap
                else "Fewer than two groups have enough samples for a gap."
            )
        )
    imp = m.get("importance")
    if imp and imp.get("features"):
        body.append("<h3>What the model relies on (validation)</h3>")
        body.append(paragraph(str(imp.get("summary"))))
        p_true = "p_true_fall" in imp["features"][0]  # series and audio
        body.append(
            table(
                ["input", f"fall of {imp.get('metric')} without it", "CI"]
                + (["fall of the mean probability of the true class"] if p_true else []),
                [
                    (
                        e["name"],
                        fmt(e.get("drop"), 3),
                        f"{fmt(e.get('low'), 3)} to {fmt(e.get('high'), 3)}",
                    )
                    + ((fmt(e.get("p_true_fall"), 3),) if p_true else ())
                    for e in imp["features"][: 12 if not p_true else 24]
                ],
            )
        )
        shown = (m.get("figures") or {}).get("importance")
        if shown:
            what = (  # series and audio: channels, time segments, mel bands; images: cells
                "each part (" + ", ".join(imp["groups"]) + ")" if imp.get("groups") else "each cell"
            )
            body.append(figure(ev.root / shown, f"the fall of the metric with {what} occluded"))
    return "".join(body)


def strengths_limitations(ev: Evidence) -> Section:
    def items(findings: list[Finding]) -> str:
        if not findings:
            return "<p>None found in the records.</p>"
        lis = "".join(
            f"<li>{esc(f.text)} <span class='src'>({esc(f.source)})</span></li>" for f in findings
        )
        return f"<ul class='findings'>{lis}</ul>"

    body = (
        "<div class='two'><div><h3>Strengths</h3>"
        + items(strengths(ev))
        + "</div><div><h3>Limitations</h3>"
        + items(limitations(ev))
        + "</div></div>"
    )
    return Section("strengths", "Strengths and limitations", body)


def deployment(ev: Evidence) -> Section:
    body = []
    v = verdict(ev)
    constraints = (v or {}).get("constraints") or []
    if constraints:
        body.append(
            table(
                ["constraint", "limit", "measured", "passed"],
                [
                    (
                        c["name"],
                        c.get("limit"),
                        fmt(c.get("measured"), 3),
                        "yes" if c.get("passed") else "NO",
                    )
                    for c in constraints
                ],
            )
        )
    elif v is not None:
        body.append(
            paragraph(
                "No latency or size constraint was agreed "
                "(problem.constraints in dlworkflow.yaml), so none was measured "
                "by `dlw test`."
            )
        )
    if not ev.versions:
        body.append(missing("no model exported yet", "dlw export"))
        return Section("deployment", "Deployment", "".join(body))
    rows = []
    for meta in ev.versions:
        onnx = version_folder(ev.root, meta["version"]) / ONNX_FILE
        size = f"{onnx.stat().st_size / 1e6:.3f} MB" if onnx.is_file() else "missing"
        p = meta.get("parity") or {}
        rows.append(
            (
                f"v{meta['version']}" + (" (champion)" if meta["version"] == ev.champion else ""),
                meta.get("model"),
                meta.get("verdict"),
                size,
                f"{p.get('agreement', 0):.1%} / {p.get('max_abs_diff', 0):.1e}" if p else "n/a",
                "FORCED: " + str(meta["forced"].get("reason")) if meta.get("forced") else "no",
                meta.get("created"),
            )
        )
    body.append(
        table(
            [
                "version",
                "model",
                "test verdict",
                "ONNX size",
                "parity (agreement / max |dp|)",
                "forced",
                "created",
            ],
            rows,
        )
    )
    if ev.forced_serving:
        body.append("<h3>Served with --force</h3>")
        body.append(
            table(
                ["at", "by", "version", "verdict", "reason"],
                [
                    (f.get("at"), f.get("by"), f.get("version"), f.get("verdict"), f.get("reason"))
                    for f in ev.forced_serving
                ],
            )
        )
    body.append(
        paragraph(
            f"Served predictions logged: {ev.n_predictions_logged:,} "
            "(.dlw/serve/predictions.jsonl). Serve the champion with `dlw serve`; "
            "`dlw rollback` restores the previous champion."
        )
    )
    body.append(maintenance(ev))
    return Section("deployment", "Deployment", "".join(body))


def maintenance(ev: Evidence) -> str:
    """Step 9 as recorded: the last drift check and the last champion/challenger decision."""
    parts = ["<h3>Monitoring and retraining</h3>"]
    monitored = ev.record("monitor")
    if monitored is None:
        parts.append(
            paragraph(
                "Not monitored yet: once the champion takes traffic, "
                "`dlw monitor` compares it with the validation reference "
                "(drift, confidence, out-of-distribution rate) and "
                "`dlw retrain --data SOURCE` trains and compares a challenger."
            )
        )
    else:
        parts.append(
            paragraph(
                f"Last drift check ({monitored.ended}, v{monitored.outputs.get('version')}, "
                f"{monitored.outputs.get('n', 0):,} live predictions): "
                f"{monitored.summary.get('headline')}. Details: reports/monitor.html."
            )
        )
    retrained = ev.record("retrain")
    if retrained is not None:
        parts.append(
            paragraph(f"Last retraining ({retrained.ended}): {retrained.summary.get('headline')}.")
        )
    parts.append(_maintenance_evidence(ev))
    return "".join(parts)


def _maintenance_evidence(ev: Evidence) -> str:
    """Offline vs online (labelled monitor runs), the champion's age against the limit, and
    its decay on each addition's fresh data (retrain's staleness records)."""
    from dlworkflow.evaluate.staleness import online_words, trend_words

    done = [r for r in ev.all_runs if r.status == "done"]
    rows: list[tuple[str, Any]] = []
    for r in done:
        online = r.outputs.get("online") if r.step == "monitor" else None
        if isinstance(online, dict) and online.get("tested"):
            rows.append((f"live vs test (monitor run {r.id})", online_words(online)))
    limit = (ev.config.get("monitor") or {}).get("max_model_age_days", 90.0)
    ages = [r.outputs["age"] for r in done if r.step == "monitor" and r.outputs.get("age")]
    if ages:
        a = ages[-1]
        rows.append(
            (
                "model age",
                f"v{a['version']}: {a['age_days']:.2f} days at the last `dlw monitor` vs the "
                f"limit {a['limit_days']:g} days (monitor.max_model_age_days)"
                + (": ALERT, retrain it" if a.get("alert") else ": within the limit"),
            )
        )
    elif limit is None:
        rows.append(("model age", "no limit (monitor.max_model_age_days: null)"))
    latest: dict[Any, dict[str, Any]] = {}
    for r in done:
        record = r.outputs.get("staleness") if r.step == "retrain" else None
        if isinstance(record, dict):
            latest[record.get("addition")] = record
    rows += [
        ("decay on fresh data", line)
        for line in trend_words([latest[k] for k in sorted(latest, key=lambda a: int(a or 0))])
    ]
    if not rows:
        return ""
    return "<h3>Offline vs online, age and staleness</h3>" + table(None, rows)


def audit(ev: Evidence) -> Section:
    if ev.audit is None:
        why = f" ({ev.audit_error})" if ev.audit_error else ""
        return Section(
            "audit", "ML Test Score audit", missing(f"no audit available{why}", "dlw audit")
        )
    result = ev.audit
    try:
        rendered = result._repr_html_()
    except Exception:
        rows: list[Any] = getattr(result, "rows", lambda: [])()
        rendered = table(None, rows)
    return Section("audit", "ML Test Score audit", rendered)


def next_steps_section(ev: Evidence) -> Section:
    return Section("next", "Next steps", bullet_list(next_steps(ev)))


def appendix(ev: Evidence) -> Section:
    import yaml

    body = ["<h3>Ledger: every step run</h3>"]
    runs = ev.all_runs
    body.append(
        table(
            ["run", "step", "status", "started", "seed", "commit", "config hash"],
            [
                (
                    r.id,
                    r.step,
                    r.status,
                    r.started,
                    r.seed,
                    r.git_commit or "not a git repository",
                    r.config_hash[:12],
                )
                for r in runs
            ],
        )
    )
    last = runs[-1] if runs else None
    if last is not None:
        env = last.env
        body.append("<h3>Environment</h3>")
        body.append(
            table(
                None,
                [
                    ("python", env.get("python")),
                    ("platform", env.get("platform")),
                    *[(k, v or "not installed") for k, v in (env.get("packages") or {}).items()],
                ],
            )
        )
    body.append("<h3>Identity of the data and the model</h3>")
    meta = ev.champion_metadata or {}
    body.append(
        table(
            None,
            [
                ("dataset version", (ev.dataset or {}).get("version")),
                ("split hash", ev.outputs("split").get("hash")),
                ("test seal", ev.outputs("split").get("seal")),
                ("trained weights sha256", (ev.trained or {}).get("weights_sha256")),
                ("ONNX sha256 (champion)", (meta.get("files") or {}).get("model.onnx")),
                ("seed", ev.config.get("seed")),
                ("test-set reads", len(ev.test_reads)),
            ],
        )
    )
    body.append("<h3>Configuration (dlworkflow.yaml, effective values)</h3>")
    body.append(f"<pre>{esc(yaml.safe_dump(ev.config, sort_keys=False))}</pre>")
    body.append(
        paragraph(
            "Reproduce: run the same commands with this configuration on the "
            "dataset version above; each step's seed is in the ledger."
        )
    )
    body.append(f"<p>Ledger file: {code('.dlw/ledger.sqlite')}</p>")
    return Section("appendix", "Appendix: reproducibility", "".join(body))
