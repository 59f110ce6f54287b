"""Automatic judges of the Data and Model sections (see rubric.py for the tests)."""

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


@judge("features_beneficial")
def features_beneficial(ev: Evidence) -> Judgement:
    return checklist_only(
        "no feature ablation is recorded (images and texts: the raw input is the feature)"
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


@judge("privacy_controls")
def privacy_controls(ev: Evidence) -> Judgement:
    sensitivity = ev.config.problem.data_sensitivity
    record, version = ev.privacy, ev.dataset_version
    scanned = bool(
        record and record.get("scanned") and version and record.get("dataset_version") == version
    )
    if scanned and record is not None:
        what = (
            f"the privacy scan ran on the current data ({record.get('mode')}, "
            f"{record.get('n_scanned')} scanned, {record.get('n_findings')} findings, "
            f"{record.get('remaining')} remaining)"
        )
        if not record.get("remaining"):
            gate = "; `dlw train` refuses unscanned pii/phi data" if sensitivity != "none" else ""
            return Judgement(1.0, what + gate)
        reason = (ev.config.privacy.accept_findings_reason or "").strip()
        if reason:
            return Judgement(
                0.5,
                f"{what}; the remaining findings are accepted: {reason}",
                "`dlw ingest --deidentify` to train on scrubbed copies",
            )
        return Judgement(
            0.0,
            what + "; identifying findings remain unaccepted",
            "`dlw ingest --deidentify`",
            failed=True,
        )
    if sensitivity != "none":
        return Judgement(
            0.0,
            f"data_sensitivity is {sensitivity} and the current data has not been scanned",
            "`dlw ingest SOURCE` (the scan is mandatory for pii/phi)",
        )
    define = ev.latest("define")
    if define is None:
        return Judgement(
            0.0,
            "the data's sensitivity has not been assessed",
            "`dlw define --sensitivity none|pii|phi`",
        )
    return Judgement(
        0.5,
        "problem.data_sensitivity is declared 'none' (recorded by `dlw "
        "define`); no scan verified it",
        "set privacy.scan: always in "
        "dlworkflow.yaml and `dlw ingest` again: every ingest then scans",
    )


@judge("new_features_quickly")
def new_features_quickly(ev: Evidence) -> Judgement:
    return checklist_only("the time from a feature idea to production is not recorded")


@judge("feature_code_tested")
def feature_code_tested(ev: Evidence) -> Judgement:
    release = ev.release or {}
    parity = release.get("parity")
    if not parity:
        return Judgement(
            0.0,
            "no exported model: the input code has not been checked end to end",
            "`dlw test`, then `dlw export` (parity check)",
        )
    return Judgement(
        1.0,
        f"every export runs the input preprocessing twice, training's path "
        f"and the runtime's from the raw files, over the validation split: for "
        f"v{release['version']} they agreed on {parity['agreement']:.2%} of "
        f"{parity['n']} samples (max prob. diff {parity['max_abs_diff']:.1e}); "
        "the built-in preprocessing is covered by dlworkflow's test suite",
    )


@judge("model_specs_reviewed")
def model_specs_reviewed(ev: Evidence) -> Judgement:
    train = ev.train
    if train is None:
        return Judgement(0.0, "no model trained yet", "`dlw train`")
    commit = train.git_commit
    if commit and not commit.endswith("-dirty") and ev.git_tracked("dlworkflow.yaml"):
        return Judgement(
            0.5,
            f"the model spec (dlworkflow.yaml) was committed to git "
            f"({commit[:12]}) when the model was trained; a review is not recorded",
        )
    why = (
        "the project is not in a git repository"
        if not commit
        else "the training ran on uncommitted changes"
        if commit.endswith("-dirty")
        else "dlworkflow.yaml is not tracked by git"
    )
    return Judgement(
        0.0,
        f"the model spec was not submitted: {why}",
        "commit dlworkflow.yaml to git, then `dlw train`",
    )


@judge("offline_online_correlate")
def offline_online_correlate(ev: Evidence) -> Judgement:
    return checklist_only(
        "the prediction log holds no labels, so online metrics cannot be computed"
    )


@judge("hyperparameters_tuned")
def hyperparameters_tuned(ev: Evidence) -> Judgement:
    study = ev.latest("tune")
    if study is not None:
        s = study.summary
        return Judgement(
            1.0,
            f"`dlw tune` searched tune.space on validation: study "
            f"{s.get('study')}, {s.get('n_trials')} trials "
            f"({s.get('n_pruned')} pruned), best {s.get('metric')} "
            f"{s.get('best_value')} (reports/tune.html)",
        )
    configs = {r.config_hash for r in ev.history("train")}
    found = []
    if ev.lr_find_plot is not None:
        found.append("a learning-rate range test (reports/lr_find.png)")
    if len(configs) > 1:
        found.append(f"{len(configs)} training configurations compared (ledger, MLflow)")
    if found:
        return Judgement(
            0.5,
            " and ".join(found) + "; no automated search is recorded",
            "`dlw tune` (a search over tune.space in dlworkflow.yaml)",
        )
    return Judgement(
        0.0,
        "no learning-rate range test and a single training configuration",
        "`dlw lr-find`, and train more than one configuration",
    )


@judge("staleness_impact_known")
def staleness_impact_known(ev: Evidence) -> Judgement:
    return checklist_only("no comparison of models trained on older and newer data is recorded")


@judge("simpler_model_not_better")
def simpler_model_not_better(ev: Evidence) -> Judgement:
    for step in ("test", "evaluate"):
        record = ev.for_current_model(step)
        flag = record.summary.get("simple_as_good") if record else None
        if record is None or flag is None:
            continue
        where = "test" if step == "test" else str(record.summary.get("split", "val"))
        simple, constants = _baselines(ev)
        if flag:
            return Judgement(
                0.0,
                f"on {where}, {simple} (the simple baseline) "
                "is as good as the network: its advantage's interval reaches 0",
                "improve the network until it beats the baseline, or ship the simpler model",
                failed=True,
            )
        return Judgement(
            1.0,
            f"every `dlw evaluate` / `dlw test` compares the network with "
            f"{constants} and {simple}: on {where} the "
            "network is better (paired bootstrap interval above 0)",
        )
    return Judgement(
        0.0,
        "the current model has not been compared with a simple baseline",
        "`dlw evaluate` (baselines on validation; evaluate.baselines: true)",
    )


def _baselines(ev: Evidence) -> tuple[str, str]:
    """(the simple baseline model, the constant predictors) as the current metrics.json names
    them; classification's when it names none."""
    found = ev.metrics()
    base = (found[1].get("baselines") or {}) if found else {}
    simple = base.get("simple") if isinstance(base.get("simple"), dict) else {}
    model = (simple or {}).get("model")
    constants = [
        k
        for k, v in base.items()
        if isinstance(v, dict) and "value" in v and k not in ("simple", "network", "difference")
    ]
    if not model or ev.task.single_label:
        return "a logistic regression", "the majority class"
    return str(model), (
        "constant predictions (" + ", ".join(constants) + ")"
        if constants
        else "constant predictions"
    )


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
