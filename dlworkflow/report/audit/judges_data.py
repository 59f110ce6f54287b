"""Automatic judges of Data 1, 3, 4 and Monitoring 2: the feature schema, feature cost, the
data requirements and the input invariants."""

from __future__ import annotations

from typing import Any

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge
from dlworkflow.report.task_view import view
from dlworkflow.tasks import task_of


@judge("feature_schema")
def feature_schema(ev: Evidence) -> Judgement:
    ingest, explore = ev.latest("ingest"), ev.latest("explore")
    if ingest is None:
        return Judgement(0.0, "no data ingested yet", "`dlw ingest SOURCE`, then `dlw explore`")
    record = ingest.summary.get("schema")
    if isinstance(record, dict):
        return Judgement(1.0, schema_text(record, ingest.output_hash))
    data = ev.config.data
    tabular = task_of(ev.config.task).modality == "tabular"
    checked = (
        f"ingest checked every sample (readable, label, size limits) and quarantined "
        f"{ingest.summary.get('n_quarantined', 0)} of "
        f"{ingest.summary.get('n_samples', 0) + ingest.summary.get('n_quarantined', 0)}"
    )
    if view(ev.task).classes_declared:
        declared = data.classes is not None and (not tabular or data.feature_columns is not None)
        where = "(data.classes)"
    else:  # regression: the target is a number, checked finite by every ingest
        checked += "; " + ev.not_applicable(
            "data.classes",
            "the target is a number; every ingest quarantines targets that are not finite numbers",
        )
        declared = not tabular or data.feature_columns is not None
        where = "(data.feature_columns)" if tabular else "(the target's type)"
    applied = ingest.config_hash == ev.config.section_hash("data")
    if declared and applied:
        what = (
            "labels and feature columns"
            if data.feature_columns and data.classes
            else "feature columns"
            if data.feature_columns
            else "labels"
        )
        return Judgement(
            1.0,
            f"the expected {what} are declared in dlworkflow.yaml "
            f"{where} and enforced by every ingest; {checked}",
        )
    again = "`dlw ingest` again (it infers the feature schema and checks later data against it)"
    if explore is None:
        return Judgement(
            0.0,
            checked + "; no feature schema is recorded (an ingest from before schemas) and the "
            "distributions are not documented (no EDA)",
            again,
        )
    return Judgement(
        0.5,
        f"{checked}; reports/eda.html documents the distributions "
        f"({len(explore.summary.get('warnings', []))} warnings); no feature schema is "
        "recorded (an ingest from before schemas)",
        again,
    )


def schema_text(record: dict[str, Any], version: str | None) -> str:
    """What the latest ingest did with the feature schema, with its counts."""
    where = f" (dataset version {str(version)[:12]})" if version else ""
    schema = f"the feature schema ({record.get('summary')}; .dlw/data/schema.json)"
    if record.get("mode") == "checked":
        diffs = record.get("differences") or {}
        kept = int(record.get("outside", 0))
        shown = ", ".join(f"{k}: {n:,}" for k, n in list(diffs.items())[:3])
        reasons = ", ".join(
            f"{k}: {n:,}" for k, n in list((record.get("quarantine_reasons") or {}).items())[:3]
        )
        return (
            f"the latest ingest{where} checked {record.get('checked', 0):,} samples against "
            f"{schema}, inferred from version {str(record.get('inferred_from'))[:12]}: "
            f"{record.get('quarantined', 0):,} quarantined for a hard breach"
            + (f" ({reasons})" if reasons else "")
            + f", {kept:,} kept outside a soft expectation"
            + (f" ({shown})" if shown else "")
            + "; `dlw ingest --accept-schema` re-infers it after a deliberate change"
        )
    return (
        f"the latest ingest{where} inferred {schema} from the samples it accepted "
        f"({record.get('why')}); every later ingest of this source checks its samples against "
        "it (hard breaches quarantined, soft ones counted) and `dlw serve` checks requests"
    )


@judge("feature_cost")
def feature_cost(ev: Evidence) -> Judgement:
    release = ev.release
    if release is None:
        return Judgement(
            0.0,
            "no exported model: the serving cost of the features is not measured",
            "`dlw export` (it measures the runtime path's preprocessing cost per sample)",
        )
    cost = release.get("feature_cost")
    if not isinstance(cost, dict) or "per_sample_ms" not in cost:
        return Judgement(
            0.0,
            f"v{release.get('version')} was exported before the feature cost was measured",
            "`dlw export` again (it measures the preprocessing cost per sample, per feature "
            "for tables)",
        )
    return Judgement(
        1.0,
        f"`dlw export` of v{release.get('version')} measured the serving cost of the "
        f"features on the runtime path: {cost_text(cost)} (metadata.json feature_cost)",
    )


def cost_text(cost: dict[str, Any] | None) -> str:
    """A feature_cost record (dlworkflow/deploy/export/cost.py) in one line."""
    if not cost or "per_sample_ms" not in cost:
        return "not measured"
    text = f"{cost['what']}: {cost['per_sample_ms']:.3f} ms per sample"
    if "decode_resize_ms" in cost:
        text += (
            f" (decode + resize {cost['decode_resize_ms']:.3f} ms, normalise "
            f"{cost['normalise_ms']:.3f} ms)"
        )
    features = cost.get("features") or {}
    if features:
        top = list(features.items())[:3]
        text += f"; {len(features)} features, the costliest " + ", ".join(
            f"{name} {f['per_sample_ms']:.4f} ms ({f['share']:.0%})" for name, f in top
        )
    return text + f", on {cost['n']} {cost.get('measured_on', 'samples')}"


@judge("feature_requirements")
def feature_requirements(ev: Evidence) -> Judgement:
    from dlworkflow.data.requirements import describe

    ingest = ev.latest("ingest")
    if ingest is None:
        return Judgement(0.0, "no data ingested yet", "`dlw ingest SOURCE`")
    checked = ingest.summary.get("requirements")
    if not isinstance(checked, dict):
        return Judgement(
            0.0,
            "the latest ingest predates the data requirements check",
            "`dlw ingest` again (it checks data.requirements: min_samples_per_class, "
            "max_imbalance, allowed_sources)",
        )
    text = f"the latest ingest checked data.requirements: {describe(checked)}"
    violations = checked.get("violations") or []
    if violations:
        return Judgement(
            0.0,
            f"{text}; not met: {violations[0]}",
            "add samples (or change data.requirements deliberately in dlworkflow.yaml), then "
            "`dlw ingest`",
            failed=True,
        )
    return Judgement(1.0, text)


@judge("input_invariants_hold")
def input_invariants_hold(ev: Evidence) -> Judgement:
    release, log = ev.release, ev.predictions
    if release is None:
        return Judgement(0.0, "no exported model: no input spec", "`dlw export`")
    spec = release.get("input") or {}
    declared = (
        f"v{release['version']} declares its input ({spec.get('dtype')} "
        f"{spec.get('shape')}); `dlw serve` refuses requests outside it and its limits "
        f"(body {ev.config.serve.max_body_mb:g} MB, batch {ev.config.serve.max_batch})"
    )
    if release.get("schema"):
        declared += (
            "; it carries the feature schema of its data, which `dlw serve` checks every "
            "request against (a category never seen: 422; sizes and numbers outside the "
            "ranges seen: served and logged"
            + (
                f", {log['invariant_violations']:,} of {log['n']:,} logged predictions so far"
                if log["n"]
                else ""
            )
            + ")"
        )
    monitored = ev.latest("monitor")
    if monitored is not None:
        return Judgement(
            1.0,
            f"{declared}; `dlw monitor` tests live inputs against the "
            f"validation reference (last run: {monitored.summary.get('headline')})",
        )
    if log["n"]:
        return Judgement(
            1.0,
            f"{declared}; {log['n']} served predictions logged with input "
            "summaries (.dlw/serve/predictions.jsonl)",
        )
    return Judgement(
        0.5,
        declared + "; no served traffic is logged yet",
        "`dlw serve` (serve.log_predictions: true) and send traffic",
    )
