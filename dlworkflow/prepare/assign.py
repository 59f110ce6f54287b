"""Deterministic, stable, stratified and grouped assignment of samples to train / val / test.

Units (a group, or a single sample without group) are ordered by a seeded hash of their key
and, class by class, each goes to the split furthest below its target count. A sample that
already has a split (from the previous `dlw split` with the same seed and fractions) keeps it,
so adding samples never moves an existing one.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

SPLITS = ("train", "val", "test")


@dataclass
class Unit:
    key: str
    members: list[str]  # sample ids
    label: str  # majority label: the stratum when stratifying


def units_of(sample_ids: list[str], labels: list[str], groups: list[str | None]) -> list[Unit]:
    members: dict[str, list[str]] = defaultdict(list)
    unit_labels: dict[str, Counter] = defaultdict(Counter)
    for sid, label, group in zip(sample_ids, labels, groups):
        key = f"g:{group}" if group is not None else f"s:{sid}"
        members[key].append(sid)
        unit_labels[key][label] += 1
    return [
        Unit(key, members[key], sorted(unit_labels[key].items(), key=lambda kv: (-kv[1], kv[0]))[0][0])
        for key in members
    ]


def _order(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def assign(units: list[Unit], *, fractions: dict[str, float], seed: int, stratify: bool,
           previous: dict[str, str]) -> tuple[dict[str, str], int]:
    """sample id -> split, and how many samples changed split against `previous` (ideally 0)."""
    strata: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        strata[unit.label if stratify else "*"].append(unit)
    result: dict[str, str] = {}
    moved = 0
    # Ties within a stratum go to the split furthest below its target over all strata, so
    # coarse units (groups) do not send every stratum's tie to the same split (an empty test).
    n_all = sum(len(u.members) for u in units)
    all_target = {s: fractions[s] * n_all for s in SPLITS}
    all_count = dict.fromkeys(SPLITS, 0)
    for stratum_units in strata.values():
        total = sum(len(u.members) for u in stratum_units)
        target = {s: fractions[s] * total for s in SPLITS}
        count = dict.fromkeys(SPLITS, 0)
        fresh = []
        for unit in stratum_units:
            known = [previous[m] for m in unit.members if m in previous]
            if known:
                chosen = Counter(known).most_common(1)[0][0]
                moved += sum(1 for k in known if k != chosen)
                _place(unit, chosen, result, count, all_count)
            else:
                fresh.append(unit)
        for unit in sorted(fresh, key=lambda u: _order(seed, u.key)):
            chosen = max(SPLITS, key=lambda s: (target[s] - count[s],
                                                all_target[s] - all_count[s], -SPLITS.index(s)))
            _place(unit, chosen, result, count, all_count)
    return result, moved


def _place(unit: Unit, split: str, result: dict[str, str], *counts: dict[str, int]) -> None:
    for member in unit.members:
        result[member] = split
    for count in counts:
        count[split] += len(unit.members)
