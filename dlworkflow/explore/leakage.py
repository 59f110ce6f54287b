"""Cross-split leakage, when a split exists: exact and near duplicates between train, val and
test, and groups (patients, sessions) present in more than one split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dlworkflow.explore.duplicates import Duplicates
from dlworkflow.store.splits import is_sealed

if TYPE_CHECKING:
    import pandas as pd

SHOWN_LEAKS = 20
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


@dataclass
class SplitLeak:
    kind: str  # "exact" | "near"
    sample_ids: list[str]
    splits: list[str]
    labels: list[str]


@dataclass
class Leakage:
    split_counts: dict[str, int]
    exact: dict[str, int] = field(default_factory=dict)  # "train / test" -> groups
    near: dict[str, int] = field(default_factory=dict)
    examples: list[SplitLeak] = field(default_factory=list)
    leaked_groups: int = 0
    group_examples: list[tuple[str, list[str]]] = field(default_factory=list)
    unassigned: int = 0  # manifest samples without a split (ingested after the split)

    def touching_test(self, kind: str) -> int:
        """Duplicate groups that reach a sealed split (the test set or a fresh slice)."""
        table = self.exact if kind == "exact" else self.near
        return sum(
            n for combo, n in table.items() if any(is_sealed(part) for part in combo.split(" / "))
        )


def leakage(
    manifest: pd.DataFrame, assignments: pd.DataFrame, *, exact: Duplicates, near: Duplicates
) -> Leakage:
    split_of = dict(zip(assignments["sample_id"].astype(str), assignments["split"].astype(str)))
    ids = manifest["sample_id"].astype(str)
    result = Leakage(
        split_counts=dict(Counter(split_of.values())), unassigned=int((~ids.isin(split_of)).sum())
    )
    for dups, table in ((exact, result.exact), (near, result.near)):
        for group in dups.groups:
            splits = [split_of.get(s, "none") for s in group.sample_ids]
            distinct = sorted(set(splits) - {"none"}, key=lambda s: SPLIT_ORDER.get(s, 9))
            if len(distinct) < 2:
                continue
            combo = " / ".join(distinct)
            table[combo] = table.get(combo, 0) + 1
            if len(result.examples) < 10 * SHOWN_LEAKS:
                result.examples.append(SplitLeak(dups.kind, group.sample_ids, splits, group.labels))
    result.examples.sort(key=lambda e: (not any(map(is_sealed, e.splits)), e.kind != "exact"))
    result.examples = result.examples[:SHOWN_LEAKS]
    _group_leaks(result, manifest, split_of)
    return result


def _group_leaks(result: Leakage, manifest: pd.DataFrame, split_of: dict[str, str]) -> None:
    if "group" not in manifest.columns:
        return
    frame = manifest[["sample_id", "group"]].dropna()
    frame = frame.assign(split=frame["sample_id"].astype(str).map(split_of)).dropna()
    if frame.empty:
        return
    spread = frame.groupby("group")["split"].agg(lambda s: sorted(set(s)))
    leaked = spread[spread.map(len) > 1]
    result.leaked_groups = len(leaked)
    result.group_examples = [(str(g), list(s)) for g, s in leaked.head(SHOWN_LEAKS).items()]
