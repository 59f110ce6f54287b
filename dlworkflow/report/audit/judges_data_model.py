"""Automatic judges of the Data and Model sections (see rubric.py for the tests)."""

from __future__ import annotations

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge


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
            f"{f'{constants} and ' if constants else ''}{simple}: on {where} the "
            "network is better (paired bootstrap interval above 0)",
        )
    return Judgement(
        0.0,
        "the current model has not been compared with a simple baseline",
        "`dlw evaluate` (baselines on validation; evaluate.baselines: true)",
    )


def _baselines(ev: Evidence) -> tuple[str, str]:
    """(the simple baseline model, the constant predictors) as the current metrics.json names
    them; classification's when it names none; no constant predictors ("") for a task whose
    baselines have none (detection's box prior, segmentation's majority mask)."""
    found = ev.metrics()
    base = (found[1].get("baselines") or {}) if found else {}
    simple = base.get("simple") if isinstance(base.get("simple"), dict) else {}
    model = (simple or {}).get("model")
    constants = [
        k
        for k, v in base.items()
        if isinstance(v, dict) and "value" in v and k not in ("simple", "network", "difference")
    ]
    if ev.task.modality in ("sequence", "audio") and model:  # 1-NN DTW; log-mel logistic
        return str(model), "the majority class"
    if not model or ev.task.single_label:
        return "a logistic regression", "the majority class"
    if not constants and ev.task.dense:
        return str(model), ""
    return str(model), (
        "constant predictions (" + ", ".join(constants) + ")"
        if constants
        else "constant predictions"
    )
