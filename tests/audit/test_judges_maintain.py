"""The maintenance judges (offline_online_correlate, staleness_impact_known,
models_not_too_stale) and prediction_quality_not_regressed read the monitor and retrain
records of the ledger: they give points from what the records show, fail where the records
show the property does not hold for the champion now serving, and treat records of a replaced
champion as history. The records here have the shapes `dlw monitor` and `dlw retrain` write
(tests/monitor/test_online_offline.py and test_staleness.py write them for real)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from dlworkflow.config import Monitor
from dlworkflow.report.audit.judges_maintain import (
    models_not_too_stale,
    offline_online_correlate,
    staleness_impact_known,
)
from dlworkflow.report.audit.judges_ops import prediction_quality_not_regressed


class Ev:
    """The part of audit.evidence.Evidence these judges read."""

    def __init__(
        self,
        champion: int,
        runs: dict[str, list[dict]],
        *,
        age_days: float = 1.0,
        limit: float | None = 90.0,
    ) -> None:
        created = (datetime.now(UTC) - timedelta(days=age_days)).isoformat(timespec="seconds")
        self.champion = {"version": champion, "created": created}
        self.versions = [
            {
                "version": v,
                "verdict": "PASS",
                "metric": "accuracy",
                "test_value": 0.96,
                "test_interval": [0.94, 0.97],
            }
            for v in range(1, champion + 1)
        ]
        self.config = SimpleNamespace(monitor=Monitor(max_model_age_days=limit))
        self._runs = {
            step: [
                SimpleNamespace(id=i + 1, outputs=o, summary={"headline": "h"})
                for i, o in enumerate(rows)
            ]
            for step, rows in runs.items()
        }

    def history(self, step: str):
        return self._runs.get(step, [])

    def metric_spec(self, metric=None):
        return SimpleNamespace(higher_is_better=True, better=lambda a, b: a > b)

    @property
    def predictions(self):
        return {"n": 0, "mean_confidence": None}


def online(version: int, live: float, interval: list[float], agree: bool) -> dict:
    return {
        "version": version,
        "online": {
            "version": version,
            "tested": True,
            "metric": "accuracy",
            "n": 600,
            "live": live,
            "live_interval": interval,
            "test_value": 0.96,
            "test_interval": [0.94, 0.97],
            "allowed_change": 0.05,
            "agree": agree,
            "alert": not agree,
        },
        "checks": [{"name": "live accuracy", "group": "performance", "alert": not agree}],
    }


def test_offline_online_agreement_on_the_champion_earns_the_point():
    ev = Ev(
        2, {"monitor": [online(1, 0.12, [0.09, 0.15], False), online(2, 0.92, [0.89, 0.94], True)]}
    )
    j = offline_online_correlate(ev)
    assert j.points == 1.0 and not j.failed
    assert "0.92 [0.89, 0.94]" in j.evidence and "vs test 0.96 [0.94, 0.97]" in j.evidence
    assert "since replaced" in j.evidence  # the earlier disagreement is told as history


def test_disagreement_on_the_current_champion_fails():
    ev = Ev(1, {"monitor": [online(1, 0.12, [0.09, 0.15], False)]})
    j = offline_online_correlate(ev)
    assert j.points == 0 and j.failed and "disagree" in j.evidence and j.next_step


def test_a_replaced_champions_disagreement_is_history_not_a_failure():
    ev = Ev(2, {"monitor": [online(1, 0.12, [0.09, 0.15], False)]})
    j = offline_online_correlate(ev)
    assert j.points == 0 and not j.failed and "--labels" in j.next_step and "v2" in j.next_step
    q = prediction_quality_not_regressed(ev)
    assert not q.failed and "since replaced by v2" in q.evidence


def test_no_labelled_run_names_the_command():
    j = offline_online_correlate(Ev(1, {"monitor": [{"version": 1, "checks": []}]}))
    assert j.points == 0 and not j.failed and "dlw monitor --labels" in j.next_step


def test_prediction_quality_judges_the_current_champions_runs():
    ev = Ev(
        2, {"monitor": [online(2, 0.92, [0.89, 0.94], True), online(1, 0.12, [0.09, 0.15], False)]}
    )
    # the newest labelled run is of v1 (say, replayed traffic): v2's own run decides
    assert prediction_quality_not_regressed(ev).points == 1.0
    ev = Ev(2, {"monitor": [online(2, 0.5, [0.45, 0.55], False)]})
    assert prediction_quality_not_regressed(ev).failed


def staleness(addition: int, fresh: float, decay: float) -> dict:
    return {
        "outcome": "promoted",
        "staleness": {
            "addition": addition,
            "slice": f"fresh{addition}",
            "champion": addition,
            "n": 180,
            "metric": "accuracy",
            "fresh_value": fresh,
            "fresh_interval": [fresh - 0.05, fresh + 0.04],
            "test_value": 0.96,
            "test_interval": [0.94, 0.97],
            "decay": decay,
            "decay_interval": [decay - 0.05, decay + 0.05],
            "age_days": 0.01,
        },
    }


def test_staleness_known_from_the_decay_per_addition():
    assert staleness_impact_known(Ev(1, {})).points == 0
    assert "dlw retrain --data" in staleness_impact_known(Ev(1, {})).next_step
    ev = Ev(
        3,
        {"retrain": [staleness(1, 0.12, 0.84), {"outcome": "unchanged"}, staleness(2, 0.9, 0.06)]},
    )
    j = staleness_impact_known(ev)
    assert j.points == 1.0
    assert "addition 1" in j.evidence and "decay +0.84" in j.evidence and "addition 2" in j.evidence


def age_run(version: int, age: float, limit: float, alert: bool) -> dict:
    return {
        "version": version,
        "checks": [],
        "age": {
            "version": version,
            "created": "2026-01-01T00:00:00+00:00",
            "age_days": age,
            "limit_days": limit,
            "alert": alert,
        },
    }


def test_model_age_checked_by_monitor():
    j = models_not_too_stale(Ev(1, {"monitor": [age_run(1, 1.0, 90, False)]}))
    assert j.points == 1.0 and "1.00 day(s) old" in j.evidence and "limit 90 days" in j.evidence
    j = models_not_too_stale(Ev(1, {"monitor": [age_run(1, 100.0, 90, True)]}))
    assert j.points == 0 and j.failed
    # the alert was of v1, which a retrain replaced: not a failure, but v2 needs its check
    j = models_not_too_stale(Ev(2, {"monitor": [age_run(1, 100.0, 90, True)]}))
    assert j.points == 0 and not j.failed and "dlw monitor" in j.next_step
    j = models_not_too_stale(Ev(1, {}))
    assert j.points == 0 and "dlw monitor" in j.next_step
    j = models_not_too_stale(Ev(1, {"monitor": [age_run(1, 1.0, 90, False)]}, limit=None))
    assert j.points == 0 and "max_model_age_days" in j.next_step
    # the champion is older than the limit now, whatever the last check said
    j = models_not_too_stale(Ev(1, {"monitor": [age_run(1, 1.0, 90, False)]}, age_days=120))
    assert j.failed
