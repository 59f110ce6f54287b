"""Automatic judges of Data 1, 3, 4 and Monitoring 2: the feature schema, feature cost, the
data requirements and the input invariants."""

from __future__ import annotations

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, checklist_only, judge
from dlworkflow.report.task_view import view
from dlworkflow.tasks import task_of


@judge("feature_schema")
def feature_schema(ev: Evidence) -> Judgement:
    ingest, explore = ev.latest("ingest"), ev.latest("explore")
    if ingest is None:
        return Judgement(0.0, "no data ingested yet", "`dlw ingest SOURCE`, then `dlw explore`")
    data = ev.config.data
    tabular = task_of(ev.config.task).modality == "tabular"
    checked = (
        f"ingest checked every sample (readable, label, size limits) and quarantined "
        f"{ingest.summary.get('n_quarantined', 0)} of "
        f"{ingest.summary.get('n_samples', 0) + ingest.summary.get('n_quarantined', 0)}"
    )
    if view(ev.task).classes_declared:
        declared = data.classes is not None and (not tabular or data.feature_columns is not None)
        asked = "declare data.classes (tables: data.feature_columns)"
        where = "(data.classes)"
    else:  # regression: the target is a number, checked finite by every ingest
        checked += "; " + ev.not_applicable(
            "data.classes",
            "the target is a number; every ingest quarantines targets that are not finite numbers",
        )
        declared = not tabular or data.feature_columns is not None
        asked = "declare data.feature_columns"
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
    if explore is None:
        return Judgement(
            0.0,
            checked + "; the distributions are not documented (no EDA)",
            f"`dlw explore`, and {asked} in dlworkflow.yaml",
        )
    return Judgement(
        0.5,
        f"{checked}; reports/eda.html documents the distributions "
        f"({len(explore.summary.get('warnings', []))} warnings); the expectations "
        "are not declared in the config",
        f"{asked} in dlworkflow.yaml and `dlw ingest` again: every ingest then enforces them",
    )


@judge("feature_cost")
def feature_cost(ev: Evidence) -> Judgement:
    return checklist_only(
        "the cost of each feature (latency, memory, upstream data) is not recorded"
    )


@judge("feature_requirements")
def feature_requirements(ev: Evidence) -> Judgement:
    return checklist_only(
        "meta-level requirements on features (approved sources, licences) are not recorded"
    )


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
