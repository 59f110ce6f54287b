"""data.requirements, checked by every `dlw ingest` (ML Test Score, Data 4).

* allowed_sources: every source (data.source and each data.additions entry) must match one of
  the shell-style patterns. A source that does not is never read: the ingest stops before it
  opens anything, with a DataError naming the source and the patterns.
* min_samples_per_class and max_imbalance (classification; multi-label: positives per label;
  not applicable to regression): measured on the samples the ingest accepted. A breach does
  not stop the ingest: the data is read and kept, so that `dlw explore` can show it and more
  data can be added; the breach is printed by the ingest with its fix, recorded in the ledger
  (summary "requirements") and shown by the report, and the audit's feature_requirements
  test fails on it. (A hard stop would also refuse the small datasets of tests and first
  trials, where a dozen samples per class is a deliberate choice.)
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DataError

if TYPE_CHECKING:
    from dlworkflow.config import DataRequirements
    from dlworkflow.tasks.base import Task


def check_sources(req: DataRequirements, sources: list[str]) -> dict[str, Any]:
    """Which pattern allowed each source (DataError for a source none allows)."""
    patterns = req.allowed_sources
    if patterns is None:
        return {"patterns": None, "sources": sources, "ok": True}
    matched = {}
    for source in sources:
        hit = next((p for p in patterns if fnmatch.fnmatchcase(source, p)), None)
        if hit is None:
            raise DataError(
                f"The source {source!r} is not an approved data source "
                "(data.requirements.allowed_sources): it is not read.",
                expected="a source matching one of " + ", ".join(repr(p) for p in patterns),
                received=repr(source),
                fix="ingest an approved source, or add a pattern for this one to "
                "data.requirements.allowed_sources in dlworkflow.yaml once it is approved",
                context={"requirement": "allowed_sources", "source": source},
            )
        matched[source] = hit
    return {"patterns": list(patterns), "sources": sources, "matched": matched, "ok": True}


def check_counts(req: DataRequirements, task: Task, counts: dict[str, int]) -> dict[str, Any]:
    """min_samples_per_class and max_imbalance on the accepted samples' class (or label)
    counts: {"min_samples_per_class": {...}, "max_imbalance": {...}, "violations": [...]}."""
    if task.kind == "regression" or not counts:
        why = "not applicable to regression (the target is a number, not classes)"
        return {"min_samples_per_class": why, "max_imbalance": why, "violations": []}
    word = "label" if task.kind == "multilabel" else "class"
    smallest = min(counts, key=lambda k: (counts[k], k))
    largest = max(counts, key=lambda k: (counts[k], k))
    low, high = counts[smallest], counts[largest]
    ratio = high / low if low else float("inf")
    out: dict[str, Any] = {
        "min_samples_per_class": {
            "required": req.min_samples_per_class,
            "measured": low,
            word: smallest,
            "ok": low >= req.min_samples_per_class,
        },
        "max_imbalance": {
            "required": req.max_imbalance,
            "measured": round(ratio, 3),
            "largest": largest,
            "smallest": smallest,
            "ok": req.max_imbalance is None or ratio <= req.max_imbalance,
        },
        "violations": [],
    }
    if not out["min_samples_per_class"]["ok"]:
        short = sorted(k for k, n in counts.items() if n < req.min_samples_per_class)
        out["violations"].append(
            f"min_samples_per_class: the {word} {smallest!r} has {low} samples, fewer than "
            f"{req.min_samples_per_class} ({len(short)} {word}(es) short: "
            f"{', '.join(short[:5])}{' ...' if len(short) > 5 else ''}); fix: add samples of "
            "these, or lower data.requirements.min_samples_per_class if this is deliberate"
        )
    if not out["max_imbalance"]["ok"]:
        out["violations"].append(
            f"max_imbalance: {largest!r} has {high} samples, {ratio:.1f} times the {low} of "
            f"{smallest!r} (at most {req.max_imbalance:g}); fix: add samples of the small "
            f"{word}es, or raise data.requirements.max_imbalance if this is deliberate"
        )
    return out


def describe(record: dict[str, Any]) -> str:
    """The checked requirements in one line (ledger, report, audit)."""
    parts = []
    for key in ("min_samples_per_class", "max_imbalance"):
        value = record.get(key)
        if isinstance(value, dict):
            measured = value["measured"]
            required = value["required"]
            sign = ">=" if key == "min_samples_per_class" else "<="
            mark = "ok" if value["ok"] else "NOT MET"
            limit = "no limit" if required is None else f"{sign} {required:g}"
            parts.append(f"{key} {measured:g} ({limit}: {mark})")
        elif value:
            parts.append(f"{key}: {value}")
    sources = record.get("allowed_sources") or {}
    if sources.get("patterns") is None:
        parts.append("allowed_sources: any (data.requirements.allowed_sources is null)")
    else:
        parts.append(
            "allowed_sources: "
            + ", ".join(f"{s} matches {p!r}" for s, p in (sources.get("matched") or {}).items())
        )
    return "; ".join(parts)
