"""Automatic judges: Model 1 and Monitoring 5: the model spec's review and numerical stability."""

from __future__ import annotations

import math

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge


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


@judge("numerically_stable")
def numerically_stable(ev: Evidence) -> Judgement:
    history = (ev.trained_meta or {}).get("history") or []
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
            "lower train.learning_rate or set train.grad_clip",
            failed=True,
        )
    return Judgement(
        0.5,
        f"this audit checked the {len(history)}-epoch training history "
        "(losses, metrics): all finite; training does not stop on NaN by itself",
        "check for NaN automatically",
    )
