"""Automatic judges of the Infrastructure and Monitoring sections (see rubric.py)."""

from __future__ import annotations

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge
from dlworkflow.report.task_view import view

CHAIN = (("split", "ingest"), ("train", "split"), ("test", "train"), ("export", "train"))


@judge("training_reproducible")
def training_reproducible(ev: Evidence) -> Judgement:
    train = ev.train
    if train is None:
        return Judgement(0.0, "no model trained yet", "`dlw train`")
    same = [
        r
        for r in ev.history("train")
        if r.config_hash == train.config_hash and r.inputs == train.inputs and r.seed == train.seed
    ]
    hashes = {r.output_hash for r in same}
    recorded = (
        f"seed {train.seed}, config hash, data split, package versions and commit "
        f"{(train.git_commit or 'none')[:12]} are recorded in the ledger; training is "
        "seeded with deterministic kernels"
    )
    if len(same) > 1 and len(hashes) == 1:
        weights = (train.output_hash or "none")[:12]
        return Judgement(
            1.0,
            f"{len(same)} training runs with the same config, data and seed "
            f"produced identical weights ({weights}); {recorded}",
        )
    if len(same) > 1:
        return Judgement(
            0.5,
            f"{len(same)} runs with the same config, data and seed produced "
            f"{len(hashes)} different weights (non-deterministic kernels?); " + recorded,
            "train on CPU, or find the non-deterministic operation",
        )
    return Judgement(
        0.5,
        recorded + "; not yet verified by a second run",
        "`dlw train` again with the same config: the audit compares the weights",
    )


@judge("model_specs_unit_tested")
def model_specs_unit_tested(ev: Evidence) -> Judgement:
    history = (ev.trained_meta or {}).get("history") or []
    if not history:
        return Judgement(0.0, "no trained model", "`dlw train`")
    first, last = history[0].get("train_loss"), history[-1].get("train_loss")
    return Judgement(
        0.5,
        f"the model spec ({ev.config.model.name}, from the registry that "
        f"dlworkflow's test suite covers) trained: train loss {first:.3g} -> "
        f"{last:.3g} over {len(history)} epochs; no project-level unit test is "
        "recorded",
        "test custom model code in CI",
    )


@judge("pipeline_integration_tested")
def pipeline_integration_tested(ev: Evidence) -> Judgement:
    steps = ("ingest", "split", "train", "test", "export")
    latest = {s: run for s in steps if (run := ev.latest(s)) is not None}
    missing = [s for s in steps if s not in latest]
    if missing:
        return Judgement(
            0.0,
            "the pipeline has not run end to end (missing: " + ", ".join(missing) + ")",
            f"`dlw {missing[0]}`" if missing[0] != "ingest" else "`dlw ingest SOURCE`",
        )
    broken = [
        f"{step} <- {up}"
        for step, up in CHAIN
        if latest[step].inputs.get(up) != latest[up].output_hash
    ]
    if broken:
        return Judgement(
            0.0,
            "the latest runs do not form one chain: " + ", ".join(broken),
            "`dlw run` (re-runs every stale step in order)",
        )
    return Judgement(
        0.5,
        "ingest -> split -> train -> test -> export ran end to end, each "
        "step on its upstream's latest output (ledger); no automated pipeline "
        "test (CI) is recorded",
        "run `dlw run` on a data sample in CI",
    )


@judge("validated_before_serving")
def validated_before_serving(ev: Evidence) -> Judgement:
    release = ev.release
    if release is None:
        return Judgement(0.0, "no exported model", "`dlw test`, then `dlw export`")
    v, forced = release["version"], release.get("forced")
    if forced:
        return Judgement(
            0.0,
            f"v{v} was exported with --force ({release.get('verdict')}): {forced.get('reason')}",
            "export a model that passes `dlw test`",
            failed=True,
        )
    sign = ev.metric_spec(release.get("metric")).sign()
    return Judgement(
        1.0,
        f"v{v} passed the one-time test ({release.get('metric')} "
        f"{release.get('test_value', float('nan')):.4f} {sign} "
        f"{release.get('success_target', release.get('target'))}) and the parity "
        "check; `dlw export` refuses any "
        "model that did not",
    )


@judge("model_debuggable")
def model_debuggable(ev: Evidence) -> Judgement:
    found = ev.metrics()
    if found is None:
        return Judgement(0.0, "no error analysis of the current model", "`dlw evaluate`")
    split, report = found
    shown = view(ev.task)
    return Judgement(
        0.5,
        f"error analysis on {split}: {shown.debug(report, ev.task)} "
        f"(reports/evaluate/); `dlw predict` shows {shown.predicted} for any input",
        "document how a single prediction is traced",
    )


@judge("canaried_before_serving")
def canaried_before_serving(ev: Evidence) -> Judgement:
    release = ev.release or {}
    parity = release.get("parity")
    if not parity:
        return Judgement(0.0, "no exported model", "`dlw export`")
    return Judgement(
        0.5,
        f"v{release['version']} was loaded in the serving runtime (ONNX "
        f"Runtime) and run on {parity['n']} validation samples before it could "
        "be served; no live-traffic canary is recorded",
        "canary new versions on a share of live traffic",
    )


@judge("rollback_possible")
def rollback_possible(ev: Evidence) -> Judgement:
    if not ev.versions:
        return Judgement(0.0, "no exported model", "`dlw export`")
    known = {m.get("version") for m in ev.versions}
    pointer = ev.pointer or {}
    previous = [v for v in pointer.get("previous", []) if v in known]
    if previous:
        return Judgement(
            1.0,
            f"champion v{pointer['version']} has earlier champion(s) "
            f"{', '.join(f'v{v}' for v in previous)}: `dlw rollback` restores "
            "one and a running `dlw serve` reloads it",
        )
    if len(known) > 1:
        return Judgement(
            1.0,
            f"{len(known)} exported versions: `dlw promote VERSION` switches "
            "the served model (hot reload)",
        )
    return Judgement(
        0.0,
        "a single exported version: there is nothing to roll back to",
        "export a second model (`dlw train`, `dlw test`, `dlw export`)",
    )


@judge("dependency_changes_notified")
def dependency_changes_notified(ev: Evidence) -> Judgement:
    train = ev.train
    if train is None:
        return Judgement(0.0, "no training run recorded", "`dlw train`")
    then = (train.env or {}).get("packages") or {}
    now = ev.environment_now.get("packages") or {}
    changed = [
        f"{k} {then.get(k)} -> {now.get(k)}"
        for k in sorted(set(then) | set(now))
        if then.get(k) != now.get(k)
    ]
    found = ("changed since training: " + ", ".join(changed)) if changed else "none changed"
    return Judgement(
        0.5,
        f"package versions are recorded with every step run; this audit "
        f"compares them with the installed ones: {found}",
        "watch dependencies automatically (e.g. CI on the lock file)",
    )


@judge("no_training_serving_skew")
def no_training_serving_skew(ev: Evidence) -> Judgement:
    release = ev.release or {}
    parity = release.get("parity")
    if not parity:
        return Judgement(0.0, "no exported model", "`dlw export`")
    return Judgement(
        1.0,
        f"every export compares training's prediction path with the serving "
        f"runtime's (raw files, runtime preprocessing): v{release['version']} "
        f"agreed on {parity['agreement']:.2%} of {parity['n']} validation samples, "
        f"max prob. diff {parity['max_abs_diff']:.1e}",
    )


@judge("compute_performance_not_regressed")
def compute_performance_not_regressed(ev: Evidence) -> Judgement:
    test = ev.for_current_model("test")
    checks = [
        c
        for c in ((test.outputs.get("constraints") or []) if test else [])
        if c.get("name") == "max_latency_ms"
    ]
    log = ev.predictions
    if checks:
        c = checks[0]
        if not c.get("passed"):
            return Judgement(
                0.0,
                f"latency {c.get('measured'):.3g} ms exceeds the limit {c.get('limit')} ms",
                "make the model faster",
                failed=True,
            )
        return Judgement(
            1.0,
            f"every `dlw test` measures CPU latency on the exported model "
            f"against max_latency_ms: {c.get('measured'):.3g} <= {c.get('limit')} ms",
        )
    if log["latency_p50"] is not None:
        return Judgement(
            0.5,
            f"served latency is logged (median {log['latency_p50']:.3g} ms over "
            f"{log['n']} predictions); no limit is set",
            "`dlw define --max-latency-ms N` (checked by each `dlw test`)",
        )
    return Judgement(
        0.0,
        "no latency limit measured and no served latency logged",
        "`dlw define --max-latency-ms N` before `dlw test`",
    )


@judge("prediction_quality_not_regressed")
def prediction_quality_not_regressed(ev: Evidence) -> Judgement:
    passed = [m for m in ev.versions if m.get("verdict") == "PASS" and not m.get("forced")]
    if not passed:
        return Judgement(
            0.0, "no model released through the test gate", "`dlw test`, then `dlw export`"
        )
    now = passed[-1]
    text = (
        f"every release is tested against the fixed target: v{now['version']} "
        f"{now.get('metric')} {now.get('test_value', float('nan')):.4f}"
    )
    if len(passed) > 1:
        before = passed[-2]
        spec = ev.metric_spec(now.get("metric"))
        best = (now.get("test_interval") or [None, None])[1 if spec.higher_is_better else 0]
        if (
            best is not None
            and before.get("test_value") is not None
            and spec.better(before["test_value"], best)
        ):
            return Judgement(
                0.0,
                f"{text}, below v{before['version']}'s {before['test_value']:.4f}",
                "find why the new model is worse",
                failed=True,
            )
        text += f" (v{before['version']}: {before.get('test_value', float('nan')):.4f})"
    champion = (ev.champion or {}).get("version")
    labelled = [
        r
        for r in ev.history("monitor")
        if any(c.get("group") == "performance" for c in r.outputs.get("checks") or [])
    ]
    # the monitor runs of the champion now serving: a run on a replaced model is history
    live = [r for r in labelled if r.outputs.get("version") == champion]
    if labelled and not live:
        text += (
            f"; the labelled monitor runs judged v{labelled[-1].outputs.get('version')}, "
            f"since replaced by v{champion}"
        )
    if live:
        last = live[-1]
        failed = any(
            c.get("group") == "performance" and c.get("alert")
            for c in last.outputs.get("checks") or []
        )
        if failed:
            return Judgement(
                0.0,
                f"{text}; `dlw monitor --labels` found the live metric "
                f"below the test estimate ({last.summary.get('headline')})",
                "retrain on fresh labelled data: `dlw retrain --data SOURCE`",
                failed=True,
            )
        return Judgement(
            1.0,
            f"{text}; `dlw monitor --labels` compares the live metric with "
            f"the test estimate ({len(live)} run(s), the last without a "
            "performance alert)",
        )
    log = ev.predictions
    if log["n"]:
        text += f"; {log['n']} served predictions logged" + (
            f", mean confidence {log['mean_confidence']:.3f}"
            if log["mean_confidence"] is not None
            else ""
        )
    return Judgement(
        0.5,
        text + "; live quality needs labelled traffic",
        "`dlw monitor --labels FILE` (id,label of served predictions)",
    )
