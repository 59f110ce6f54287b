"""Automatic judges: Model 2 and 4, Monitoring 4: offline/online agreement and staleness."""

from __future__ import annotations

from datetime import UTC, datetime

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, checklist_only, judge


@judge("offline_online_correlate")
def offline_online_correlate(ev: Evidence) -> Judgement:
    return checklist_only(
        "the prediction log holds no labels, so online metrics cannot be computed"
    )


@judge("staleness_impact_known")
def staleness_impact_known(ev: Evidence) -> Judgement:
    return checklist_only("no comparison of models trained on older and newer data is recorded")


@judge("models_not_too_stale")
def models_not_too_stale(ev: Evidence) -> Judgement:
    release = ev.release
    if release is None or not release.get("created"):
        return checklist_only("no exported model, and no maximum model age is set")
    age = datetime.now(UTC) - datetime.fromisoformat(release["created"])
    return checklist_only(
        f"v{release['version']} was exported {age.days} day(s) ago; no "
        "maximum age or retraining schedule is recorded"
    )
