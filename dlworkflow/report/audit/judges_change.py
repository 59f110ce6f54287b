"""Automatic judge of Data 6, "new features can be added quickly": the ledger times every
change to the data (a new source, new samples, other feature columns) from its ingest to the
first released model that learned from it."""

from __future__ import annotations

from datetime import datetime

from dlworkflow.ledger import RunRecord
from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge


@judge("new_features_quickly")
def new_features_quickly(ev: Evidence) -> Judgement:
    ingests = ev.history("ingest")
    if not ingests:
        return Judgement(0.0, "no data ingested yet", "`dlw ingest SOURCE`, then `dlw run`")
    changes = [
        now
        for before, now in zip(ingests, ingests[1:])
        if (now.output_hash, now.config_hash) != (before.output_hash, before.config_hash)
    ]
    what = "the latest change to the data" if changes else "the first version of the data"
    change = changes[-1] if changes else ingests[0]
    released = _first_release_from(ev, change)
    how = (
        "add data with `dlw retrain --data SOURCE`, or features with data.feature_columns "
        "and `dlw run`: the audit then times the change to a released model"
    )
    if released is None:
        return Judgement(
            0.0 if not changes else 0.5,
            f"{what} ({_describe(change)}) has not reached a released model yet"
            + ("" if not changes else "; earlier data did"),
            "`dlw run`, then `dlw export` (or `dlw retrain --data SOURCE`, which does it all)",
        )
    export, version = released
    took = _seconds(change.started, export.ended)
    text = (
        f"{what} ({_describe(change)}) reached released v{version} in {_duration(took)} "
        "(ingest -> split -> train -> test -> export, times from the ledger)"
    )
    if not changes:
        return Judgement(0.5, text + "; no change has gone through since", how)
    retrain = next(
        (r for r in ev.history("retrain") if str(r.inputs.get("challenger")) == str(version)),
        None,
    )
    if retrain is not None:
        text += f", by one command (`dlw retrain`: {retrain.outputs.get('outcome', 'done')})"
    return Judgement(1.0, text + "; the ledger times every change")


def _first_release_from(ev: Evidence, ingest: RunRecord) -> tuple[RunRecord, int] | None:
    """The first PASS export (not forced) whose model was trained on a split of `ingest`'s
    data version, ended after that ingest started: (its ledger record, its version)."""
    by_hash = {step: {r.output_hash: r for r in ev.history(step)} for step in ("split", "train")}
    for export in ev.history("export"):
        out = export.outputs
        if out.get("verdict") != "PASS" or out.get("forced") or export.ended is None:
            continue
        if export.ended < ingest.started:
            continue
        train = by_hash["train"].get(export.inputs.get("train"))
        split = by_hash["split"].get(train.inputs.get("split")) if train else None
        if split is not None and split.inputs.get("ingest") == ingest.output_hash:
            return export, int(out.get("version") or 0)
    return None


def _describe(ingest: RunRecord) -> str:
    s = ingest.summary
    n = s.get("n_samples")
    added = s.get("additions") or []
    where = f", {len(added)} added source(s)" if added else ""
    return (f"{n:,} samples" if isinstance(n, int) else "ingested") + where


def _seconds(start: str, end: str | None) -> float:
    if end is None:
        return float("nan")
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
