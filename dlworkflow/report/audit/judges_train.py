"""Automatic judges: Model 1 and Monitoring 5: the model spec's review and numerical stability."""

from __future__ import annotations

import math
from typing import Any

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge

REVIEW_KEY = "audit.model_specs_reviewed"
LINK_REVIEW = (
    f"link the review of that commit in dlworkflow.yaml: {REVIEW_KEY}: "
    "{done: manual, note: <the merge request URL>}"
)
COMMIT = "git add dlworkflow.yaml && git commit -m 'model spec' dlworkflow.yaml"


def spec_committed(spec: dict[str, Any]) -> bool:
    """dlworkflow.yaml at training was the committed file, or differed from it only outside
    the model spec (train/step.py spec_record: e.g. data.additions added by `dlw retrain`)."""
    state = spec.get("state")
    if spec.get("overrides"):  # train(model=<a network object>): not the file's network
        return False
    if isinstance(spec.get("source"), dict) and not spec["source"].get("clean"):
        return False  # the factory's code (model.name "module:function") was not committed
    if state == "committed":
        return bool(spec.get("commit"))
    return state == "modified" and "changed" in spec and not spec.get("model_spec_changed")


def describe_spec(spec: dict[str, Any], run_id: int) -> str:
    """One sentence on dlworkflow.yaml in git at the training of ledger run `run_id` (the
    report's approach section says the same)."""
    commit = str(spec.get("commit") or "")[:12]
    if spec_committed(spec):
        text = (
            f"dlworkflow.yaml was committed at {commit} when the model trained "
            f"(ledger run {run_id})"
        )
        if spec.get("state") == "modified":
            text += (
                "; its uncommitted changes lay outside the model spec "
                f"({', '.join(spec.get('changed') or [])})"
            )
        return text
    state = spec.get("state")
    if spec.get("overrides"):
        return (
            f"the model trained (ledger run {run_id}) was a network object passed to "
            "train(model=...), not the network dlworkflow.yaml names"
        )
    source = spec.get("source")
    if isinstance(source, dict) and not source.get("clean"):
        return (
            f"the network's code {source.get('file')} was {source.get('state')} when the "
            f"model trained (ledger run {run_id})"
        )
    if state == "modified":
        keys = spec.get("model_spec_changed") or spec.get("changed") or []
        return (
            f"dlworkflow.yaml had uncommitted changes to the model spec when the model trained "
            f"(ledger run {run_id}; HEAD {commit}; changed: {', '.join(keys[:8])})"
        )
    return (
        f"dlworkflow.yaml was not committed when the model trained (ledger run {run_id}: {state})"
    )


def _review_note(ev: Evidence) -> str | None:
    answer = getattr(ev.config.audit, "model_specs_reviewed", None)
    note = getattr(answer, "note", None)
    return note.strip() if isinstance(note, str) and note.strip() else None


def _commands(spec: dict[str, Any]) -> str:
    state = spec.get("state")
    if spec.get("overrides"):
        return (
            'write the network as a factory (model.name: "module:function"), commit it and '
            f"dlworkflow.yaml (`{COMMIT}`), then `dlw train`"
        )
    source = spec.get("source")
    if (
        isinstance(source, dict)
        and not source.get("clean")
        and spec_committed({**spec, "source": None})
    ):
        return f"`git add {source.get('file')} && git commit`, then `dlw train`"
    if state == "git not installed":
        return f"install git, then `git init && {COMMIT}`, then `dlw train`"
    if state == "not a git repository":
        return f"`git init && {COMMIT}` in the project folder, then `dlw train`"
    if state == "ignored by git":
        return f"take dlworkflow.yaml out of .gitignore, `{COMMIT}`, then `dlw train`"
    if state == "modified":
        return f"review and commit the change: `{COMMIT}`, then `dlw train`"
    if str(state).startswith("git failed"):
        return f"make `git status` work in the project folder ({state}), then `dlw train`"
    return f"`{COMMIT}`, then `dlw train`"  # untracked, added not committed


@judge("model_specs_reviewed")
def model_specs_reviewed(ev: Evidence) -> Judgement:
    train = ev.train
    if train is None:
        return Judgement(
            0.0, "no model trained yet", "`dlw train` (with dlworkflow.yaml committed)"
        )
    spec = train.summary.get("spec")
    if not isinstance(spec, dict):
        return Judgement(
            0.0,
            f"the current model's training (ledger run {train.id}) recorded no git state of "
            "dlworkflow.yaml (trained by a dlworkflow before that record)",
            f"`{COMMIT}`, then `dlw train`: it records the commit",
        )
    text = describe_spec(spec, train.id)
    if not spec_committed(spec):
        return Judgement(0.0, f"the model spec was not submitted: {text}", _commands(spec))
    note = _review_note(ev)
    if note is None:
        return Judgement(0.5, f"{text}; no review of it is linked", LINK_REVIEW)
    return Judgement(1.0, f"{text}; its review: {note}")


def _monitor_numerics(ev: Evidence) -> tuple[Any, dict[str, Any]] | None:
    """(the latest monitor record of the champion with a non_finite_outputs check, that
    check), or None when monitor has not checked the champion's outputs."""
    version = (ev.champion or {}).get("version")
    if version is None:
        return None
    for record in reversed(ev.history("monitor")):
        if str(record.inputs.get("champion")) != str(version):
            continue
        for check in record.outputs.get("checks") or []:
            if check.get("name") == "non_finite_outputs":
                return record, check
    return None


def _stopped_runs(ev: Evidence) -> list[str]:
    """Train runs the check stopped ("ledger run 7: gradient norm nan at epoch 1, step 3")."""
    out = []
    for record in ev.project.ledger.history("train"):
        numerics = record.summary.get("numerics") or {}
        if record.status == "failed" and numerics.get("failed"):
            where = f"epoch {numerics.get('epoch')}"
            if numerics.get("step") is not None:
                where += f", step {numerics['step']}"
            out.append(
                f"ledger run {record.id}: {numerics.get('quantity')} "
                f"{numerics.get('value')} at {where}"
            )
    return out


def _epochs(numerics: dict[str, Any]) -> str:
    n = numerics.get("epochs_checked")
    return f"{n} epoch" + ("" if n == 1 else "s")


@judge("numerically_stable")
def numerically_stable(ev: Evidence) -> Judgement:
    meta = ev.trained_meta or {}
    history = meta.get("history") or []
    if not history:
        return Judgement(0.0, "no training history", "`dlw train`")
    bad = [
        row.get("epoch")
        for row in history
        if any(isinstance(v, float) and not math.isfinite(v) for v in row.values())
    ]
    if bad:
        return Judgement(
            0.0,
            f"NaN or infinite values in the training history at epoch(s) {bad}",
            "lower train.learning_rate or set train.grad_clip, then `dlw train`",
            failed=True,
        )
    monitored = _monitor_numerics(ev)
    if monitored is not None and monitored[1].get("alert"):
        record, check = monitored
        return Judgement(
            0.0,
            f"`dlw monitor` (ledger run {record.id}) found non-finite outputs of the champion "
            f"v{record.inputs.get('champion')} (effect {check.get('effect')}, "
            f"{record.summary.get('n')} predictions)",
            "find the inputs that give NaN/inf outputs in the monitor report "
            "(reports/monitor.html), fix the input checks or the model, then `dlw retrain`",
            failed=True,
        )
    numerics = meta.get("numerics") or {}
    if not numerics.get("every_step"):
        return Judgement(
            0.5,
            f"this audit checked the {len(history)}-epoch training history (losses, metrics): "
            "all finite; the model's training did not check each step (trained by a "
            "dlworkflow before that check)",
            "`dlw train`: it checks the loss and gradient norm of every step",
        )
    largest = numerics.get("max_grad_norm")
    text = (
        "training checked the loss and the gradient norm for NaN/inf on each of its "
        f"{numerics.get('steps_checked')} optimizer steps ({_epochs(numerics)}, largest "
        f"gradient norm {largest:.3g}); the history is finite"
        if isinstance(largest, (int, float))
        else "training checked every step; the history is finite"
    )
    stopped = _stopped_runs(ev)
    if stopped:
        text += f"; the check stopped {len(stopped)} run(s) ({stopped[-1]})"
    if monitored is None:
        text += "; `dlw monitor` has not checked the champion's outputs yet"
    else:
        record, _ = monitored
        text += (
            f"; `dlw monitor` found no non-finite outputs of v{record.inputs.get('champion')} "
            f"({record.summary.get('n')} predictions, ledger run {record.id})"
        )
    return Judgement(1.0, text)
