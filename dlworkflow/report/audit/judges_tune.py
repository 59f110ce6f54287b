"""Automatic judges: Model 3: hyperparameters tuned.

A finished `dlw tune` study earns the point: the ledger's "tune" record says which space it
searched (tune.space, or the default space of the model and strategy when tune.space is
empty), how many trials ran and how, and the best validation value, set beside the trained
configuration's. Without one, a learning-rate range test or several trained configurations
earn half. `dlw tune` needs no configuration, so it is what every missing point names.
"""

from __future__ import annotations

from typing import Any

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge

TUNE_STEP = (
    "`dlw tune` (no configuration needed: with tune.space empty it searches the default "
    "space of the model and strategy, which `dlw config show` lists)"
)


@judge("hyperparameters_tuned")
def hyperparameters_tuned(ev: Evidence) -> Judgement:
    studies = ev.history("tune")  # finished runs of `dlw tune`
    if studies:
        study = studies[-1]
        before = [r for r in ev.history("train") if r.id < study.id]  # what the study started from
        return Judgement(1.0, _study_evidence(study.summary, before[-1] if before else None))
    configs = {r.config_hash for r in ev.history("train")}
    found = []
    if ev.lr_find_plot is not None:
        found.append("a learning-rate range test (reports/lr_find.png)")
    if len(configs) > 1:
        found.append(f"{len(configs)} training configurations compared (ledger, MLflow)")
    unfinished = ev.latest("tune")
    if unfinished is not None:  # the latest is not done (else `studies` had it)
        found.append(f"a `dlw tune` run that did not finish ({unfinished.status})")
    if found:
        return Judgement(0.5, " and ".join(found) + "; no finished search is recorded", TUNE_STEP)
    return Judgement(
        0.0,
        "no hyperparameter search, no learning-rate range test and a single training configuration",
        TUNE_STEP,
    )


def _study_evidence(s: dict[str, Any], trained: Any) -> str:
    """The study's record in words; `trained`: the train run before it (or None)."""
    metric = s.get("metric") or "metric"
    if s.get("space_source") == "default":
        space = f"the {s.get('space_basis') or 'default search space'} (tune.space is empty)"
    else:
        n = len(s.get("space") or {})
        space = (
            f"tune.space of dlworkflow.yaml ({n} parameter{'s' * (n != 1)})" if n else "tune.space"
        )
    epochs = s.get("epochs")
    trials = (
        f"{_count(s.get('n_trials'), 'trial')} ({s.get('n_complete')} complete, "
        f"{s.get('n_pruned')} "
        f"pruned, {s.get('n_failed')} failed)"
        + (f" of up to {_count(epochs, 'epoch')}" if epochs else "")
    )
    best = s.get("best_value")
    text = (
        f"`dlw tune` searched {space} on the validation split: study {s.get('study')}, "
        f"{trials}; best validation {metric} {_num(best)} (trial {s.get('best_trial')})"
    )
    train = trained.summary if trained is not None else {}
    if train.get("val_metric") is not None and train.get("metric") in (None, metric):
        text += (
            f", against {_num(train['val_metric'])} for the configuration trained before it "
            f"(ledger run {trained.id}, best of {_count(train.get('epochs_run'), 'epoch')})"
        )
    applied = (
        "its best parameters were written into dlworkflow.yaml (--apply)"
        if s.get("applied")
        else "nothing applied (`dlw tune --apply` writes the best parameters)"
    )
    return f"{text}; {applied}; reports/tune.html"


def _count(n: Any, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)
