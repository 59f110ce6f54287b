"""Automatic judges: Model 2 and 4, Monitoring 4: offline/online agreement and staleness.

Their records: each `dlw monitor` run's ledger outputs ("online": the live metric with its
interval against the monitored champion's test estimate with its interval, from --labels;
"age": the champion's age against monitor.max_model_age_days) and each `dlw retrain` run's
"staleness" (the champion's decay on the addition's sealed fresh slice)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge

LABELS_STEP = "`dlw monitor --labels FILE` (id,label of live predictions)"


def _champion_version(ev: Evidence) -> int | None:
    champion = ev.champion
    return int(champion["version"]) if champion and champion.get("version") is not None else None


def _online_words(o: dict[str, Any]) -> str:
    lo, hi = o["live_interval"]
    tlo, thi = o["test_interval"]
    return (
        f"v{o['version']} live {o['metric']} {o['live']:.4g} [{lo:.4g}, {hi:.4g}] on "
        f"{o.get('n') or 0:,} labelled predictions vs test {o['test_value']:.4g} "
        f"[{tlo:.4g}, {thi:.4g}] (± {o['allowed_change']:.3g} allowed)"
    )


@judge("offline_online_correlate")
def offline_online_correlate(ev: Evidence) -> Judgement:
    runs = [
        (r, r.outputs["online"])
        for r in ev.history("monitor")
        if isinstance(r.outputs.get("online"), dict)
    ]
    tested = [(r, o) for r, o in runs if o.get("tested")]
    current = _champion_version(ev)
    if not tested:
        why = (
            f"labelled runs could not test the live metric ({runs[-1][1].get('why')})"
            if runs
            else "no `dlw monitor` run had labelled live predictions"
        )
        return Judgement(0.0, why, LABELS_STEP)
    mine = [(r, o) for r, o in tested if o.get("version") == current]
    earlier = [(r, o) for r, o in tested if o.get("version") != current]
    history = ""
    if earlier:
        r, o = earlier[-1]
        history = (
            f"; before, monitor run {r.id} on v{o['version']} (since replaced): "
            f"{'agreed' if o['agree'] else 'disagreed'}, {_online_words(o)}"
        )
    if not mine:
        return Judgement(
            0.0,
            f"no labelled monitor run on the current champion v{current}{history}",
            f"{LABELS_STEP} on traffic served by v{current}",
        )
    r, o = mine[-1]
    if not o["agree"]:
        return Judgement(
            0.0,
            f"offline and online disagree for the champion: monitor run {r.id}, "
            f"{_online_words(o)}: the test estimate does not predict live quality{history}",
            "find why live traffic differs from the test set (`dlw explore` on fresh data), "
            "then `dlw retrain --data SOURCE` with labelled fresh data",
            failed=True,
        )
    return Judgement(
        1.0,
        f"every labelled `dlw monitor` sets the live metric beside the test estimate; "
        f"monitor run {r.id}: {_online_words(o)}: they agree ({len(mine)} labelled run(s) "
        f"on v{current}){history}",
    )


@judge("staleness_impact_known")
def staleness_impact_known(ev: Evidence) -> Judgement:
    from dlworkflow.evaluate.staleness import trend_words

    by_addition: dict[Any, dict[str, Any]] = {}
    for r in ev.history("retrain"):
        record = r.outputs.get("staleness")
        if isinstance(record, dict) and record.get("decay") is not None:
            by_addition[record.get("addition")] = record  # the latest per addition
    if not by_addition:
        return Judgement(
            0.0,
            "no measurement of the champion on newer data is recorded",
            "`dlw retrain --data SOURCE` with fresh labelled data (it measures the "
            "champion's decay on the addition's sealed fresh slice)",
        )
    records = [by_addition[k] for k in sorted(by_addition, key=lambda a: int(a or 0))]
    lines = trend_words(records)
    return Judgement(
        1.0,
        "every `dlw retrain` measures how much the champion falls short of its test "
        f"estimate on the new data ({len(records)} addition(s)): " + "; ".join(lines),
    )


@judge("models_not_too_stale")
def models_not_too_stale(ev: Evidence) -> Judgement:
    limit = ev.config.monitor.max_model_age_days
    current = _champion_version(ev)
    if limit is None:
        return Judgement(
            0.0,
            "no maximum model age is set (monitor.max_model_age_days: null)",
            "set monitor.max_model_age_days (e.g. 90); every `dlw monitor` then checks it",
        )
    if current is None:
        return Judgement(0.0, "no champion model", "`dlw test`, then `dlw export`")
    created = (ev.champion or {}).get("created")
    if created:
        age = (datetime.now(UTC) - datetime.fromisoformat(str(created))).total_seconds() / 86400
        if age > limit:
            return Judgement(
                0.0,
                f"the champion v{current} was exported {age:.1f} days ago, over "
                f"monitor.max_model_age_days ({limit:g})",
                "retrain on recent data: `dlw retrain --data SOURCE`",
                failed=True,
            )
    checks = [
        (r, r.outputs["age"])
        for r in ev.history("monitor")
        if isinstance(r.outputs.get("age"), dict)
    ]
    if not checks:
        return Judgement(
            0.0,
            f"no `dlw monitor` run has checked the champion's age (limit {limit:g} days)",
            "`dlw monitor` (it checks the champion's age against monitor.max_model_age_days)",
        )
    r, age_record = checks[-1]
    words = (
        f"monitor run {r.id}: v{age_record['version']} was {age_record['age_days']:.2f} "
        f"day(s) old (exported {age_record.get('created')}), limit "
        f"{age_record['limit_days']:g} days"
    )
    if age_record.get("alert") and age_record.get("version") == current:
        return Judgement(
            0.0,
            f"{words}: the monitor alerted and v{current} still serves",
            "retrain on recent data: `dlw retrain --data SOURCE`",
            failed=True,
        )
    if age_record.get("version") != current:
        return Judgement(
            0.0,
            f"the last age check was of v{age_record['version']} ({words}); the champion "
            f"is now v{current}",
            "`dlw monitor` (checks the current champion's age)",
        )
    return Judgement(
        1.0,
        f"every `dlw monitor` checks the champion's age against "
        f"monitor.max_model_age_days: {words}: within the limit",
    )
