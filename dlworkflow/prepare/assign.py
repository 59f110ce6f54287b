"""Deterministic, stable, stratified and grouped assignment of samples to train / val / test.

Units (samples tied by a group or by duplicate content, or a single sample) are ordered by a
seeded hash of their key and, class by class, each goes to the split furthest below its target
count. A sample that already has a split (from the previous `dlw split` with the same seed and
fractions) keeps it, so adding samples never moves an existing one.

Fresh samples (`fresh`: sample id -> addition number, the data of `dlw retrain --data`) never
join the test set: where the assignment says test, they go to the sealed slice `fresh<N>` of
their addition instead, so the test set, and its seal, stay exactly as they were. For the
targets a fresh slice counts as test, so train and validation keep their usual shares.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from dlworkflow.store.splits import fresh_name, is_sealed

SPLITS = ("train", "val", "test")


@dataclass
class Unit:
    key: str
    members: list[str]  # sample ids
    label: str  # majority label: the stratum when stratifying


def units_of(sample_ids: list[str], labels: list[str], links: list[list[str]]) -> list[Unit]:
    """Samples tied by a shared link key (a group value "g:...", a content hash "h:...", a
    near-duplicate cluster "n:...") form one unit, so they always land in the same split."""
    parent = list(range(len(sample_ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for i, keys in enumerate(links):
        for key in keys:
            j = first_with.setdefault(key, i)
            parent[find(i)] = find(j)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(sample_ids)):
        members[find(i)].append(i)
    units = []
    for idx in members.values():
        keys = sorted({k for i in idx for k in links[i]})
        votes = Counter(labels[i] for i in idx)
        label = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        key = keys[0] if keys else f"s:{sample_ids[idx[0]]}"
        units.append(Unit(key, [sample_ids[i] for i in idx], label))
    return units


def _order(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def assign(
    units: list[Unit],
    *,
    fractions: dict[str, float],
    seed: int,
    stratify: bool,
    previous: dict[str, str],
    fresh: Mapping[str, int] | None = None,
) -> tuple[dict[str, str], int]:
    """sample id -> split, and how many units the previous split had already torn apart.
    Members listed in `fresh` (sample id -> addition number) go to `fresh<N>`, never test."""
    place = _Placer(fresh or {})
    strata: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        strata[unit.label if stratify else "*"].append(unit)
    result: dict[str, str] = {}
    conflicts = 0
    # Ties within a stratum go to the split furthest below its target over all strata, so
    # coarse units (groups) do not send every stratum's tie to the same split (an empty test).
    n_all = sum(len(u.members) for u in units)
    all_target = {s: fractions[s] * n_all for s in SPLITS}
    all_count = dict.fromkeys(SPLITS, 0)
    for stratum_units in strata.values():
        total = sum(len(u.members) for u in stratum_units)
        target = {s: fractions[s] * total for s in SPLITS}
        count = dict.fromkeys(SPLITS, 0)
        unplaced = []
        for unit in stratum_units:
            known = [previous[m] for m in unit.members if m in previous]
            if known:
                # never move a sample: members split earlier keep their split (a unit whose
                # members were split apart earlier is a conflict, reported as leakage); new
                # members join the unit's majority split
                chosen = Counter(known).most_common(1)[0][0]
                conflicts += len(set(known)) > 1
                for member in unit.members:
                    place(member, previous.get(member, chosen), result, count, all_count)
            else:
                unplaced.append(unit)
        for unit in sorted(unplaced, key=lambda u: _order(seed, u.key)):
            chosen = max(
                SPLITS,
                key=lambda s: (
                    target[s] - count[s],
                    all_target[s] - all_count[s],
                    -SPLITS.index(s),
                ),
            )
            for member in unit.members:
                place(member, chosen, result, count, all_count)
    return result, conflicts


class _Placer:
    """Puts one sample in a split and counts it: a fresh sample bound for test goes to its
    addition's fresh slice, which counts towards the test share."""

    def __init__(self, fresh: Mapping[str, int]) -> None:
        self.fresh = fresh

    def __call__(
        self, member: str, split: str, result: dict[str, str], *counts: dict[str, int]
    ) -> None:
        if split == "test" and member in self.fresh:
            split = fresh_name(self.fresh[member])
        result[member] = split
        bucket = "test" if is_sealed(split) else split
        for count in counts:
            count[bucket] += 1
