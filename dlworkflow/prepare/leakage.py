"""Cross-split leakage: held-out samples (the test set and the fresh slices of `dlw retrain`)
that duplicate train/validation samples (same content, or a near-duplicate image), and groups
present in two splits. The policy in `split.duplicates` decides what happens to duplicated
held-out samples: refuse the split, remove them, or accept. A group that spans the test set and
a fresh slice is no leak: both are held out, neither is trained on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import SplitError
from dlworkflow.store.splits import OPEN_SPLITS, is_sealed

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.config import Split

EXCLUDED = "excluded"  # the split of a held-out sample removed for duplicating training data
HELD_OUT = "held out"  # test and fresh slices, as one family for the group check


@dataclass
class Leaks:
    # held-out (test or fresh<N>) sample id -> why
    test_duplicates: dict[str, str] = field(default_factory=dict)
    groups_in_two_splits: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{len(self.test_duplicates)} test samples duplicate train/val samples; "
            f"{len(self.groups_in_two_splits)} groups span two splits"
        )


def find_leaks(frame: pd.DataFrame, near: list[tuple[str, str]]) -> Leaks:
    """frame: sample_id, content_hash, group, split; near: pairs of near-duplicate sample ids."""
    leaks = Leaks()
    split_of = dict(zip(frame["sample_id"], frame["split"]))
    held_out = frame["split"].map(is_sealed).astype(bool)
    dev_hashes = set(frame.loc[~held_out, "content_hash"])
    for sid, digest, split in zip(
        frame.loc[held_out, "sample_id"],
        frame.loc[held_out, "content_hash"],
        frame.loc[held_out, "split"],
    ):
        if digest in dev_hashes:
            leaks.test_duplicates[sid] = _where("same content as a train/val sample", split)
    for a, b in near:
        for one, other in ((a, b), (b, a)):
            split = split_of.get(one)
            if split is not None and is_sealed(split) and split_of.get(other) in OPEN_SPLITS:
                leaks.test_duplicates.setdefault(one, _where(f"near duplicate of {other}", split))
    grouped = frame.dropna(subset=["group"])
    family = grouped["split"].map(lambda s: HELD_OUT if is_sealed(s) else s)
    spans = family.groupby(grouped["group"]).nunique()
    leaks.groups_in_two_splits = sorted(str(g) for g in spans[spans > 1].index)
    return leaks


def _where(reason: str, split: str) -> str:
    return reason if split == "test" else f"{reason} (in {split})"


def apply_policy(frame: pd.DataFrame, leaks: Leaks, cfg: Split) -> tuple[Any, dict[str, Any]]:
    """The frame with the policy applied, and the decision to record."""
    n = len(leaks.test_duplicates)
    decision: dict[str, Any] = {
        "policy": cfg.duplicates,
        "test_duplicates": n,
        "groups_in_two_splits": leaks.groups_in_two_splits[:50],
    }
    if leaks.groups_in_two_splits:
        raise SplitError(
            f"{len(leaks.groups_in_two_splits)} groups span two splits (e.g. "
            f"{leaks.groups_in_two_splits[:3]}): their samples were split apart earlier.",
            expected="every group in exactly one split",
            received=leaks.describe(),
            fix="delete .dlw/split to make a fresh split (the test set changes: say so in the "
            "report), or fix data.group_column",
        )
    if n == 0:
        return frame, decision
    examples = list(leaks.test_duplicates.items())[:3]
    if cfg.duplicates == "refuse":
        raise SplitError(
            f"The test set would hold {n} samples that duplicate training or validation "
            f"samples (e.g. {examples}); the test verdict would be optimistic.",
            expected="a test set with no copies of train/val samples",
            received=leaks.describe(),
            fix="set `split.duplicates: remove` (drop them from the test set; logged) or "
            "`split.duplicates: accept` with `split.duplicates_reason: ...` (recorded)",
        )
    if cfg.duplicates == "accept":
        if not (cfg.duplicates_reason or "").strip():
            raise SplitError(
                f"split.duplicates is accept, but no reason is given for keeping {n} "
                "duplicated test samples.",
                expected="split.duplicates_reason: <why>",
                received="none",
                fix="write the reason in split.duplicates_reason",
            )
        decision["reason"] = cfg.duplicates_reason
        decision["accepted"] = dict(list(leaks.test_duplicates.items())[:200])
        return frame, decision
    removed = frame["sample_id"].isin(leaks.test_duplicates)
    decision["removed"] = dict(list(leaks.test_duplicates.items())[:200])
    return frame.assign(split=frame["split"].where(~removed, EXCLUDED)), decision
