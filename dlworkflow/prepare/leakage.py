"""Cross-split leakage: test samples that duplicate train/validation samples (same content, or
a near-duplicate image), and groups present in two splits. The policy in `split.duplicates`
decides what happens to duplicated test samples: refuse the split, remove them, or accept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import SplitError

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.config import Split

EXCLUDED = "excluded"  # the split of a test sample removed for duplicating training data


@dataclass
class Leaks:
    test_duplicates: dict[str, str] = field(default_factory=dict)  # test sample id -> why
    groups_in_two_splits: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"{len(self.test_duplicates)} test samples duplicate train/val samples; "
                f"{len(self.groups_in_two_splits)} groups span two splits")


def find_leaks(frame: pd.DataFrame, near: list[tuple[str, str]]) -> Leaks:
    """frame: sample_id, content_hash, group, split; near: pairs of near-duplicate sample ids."""
    leaks = Leaks()
    split_of = dict(zip(frame["sample_id"], frame["split"]))
    dev_hashes = set(frame.loc[frame["split"] != "test", "content_hash"])
    test = frame[frame["split"] == "test"]
    for sid, digest in zip(test["sample_id"], test["content_hash"]):
        if digest in dev_hashes:
            leaks.test_duplicates[sid] = "same content as a train/val sample"
    for a, b in near:
        for one, other in ((a, b), (b, a)):
            if split_of.get(one) == "test" and split_of.get(other) in ("train", "val"):
                leaks.test_duplicates.setdefault(one, f"near duplicate of {other}")
    grouped = frame.dropna(subset=["group"])
    spans = grouped.groupby("group")["split"].nunique()
    leaks.groups_in_two_splits = sorted(str(g) for g in spans[spans > 1].index)
    return leaks


def apply_policy(frame: pd.DataFrame, leaks: Leaks, cfg: Split) -> tuple[Any, dict[str, Any]]:
    """The frame with the policy applied, and the decision to record."""
    n = len(leaks.test_duplicates)
    decision: dict[str, Any] = {"policy": cfg.duplicates, "test_duplicates": n,
                                "groups_in_two_splits": leaks.groups_in_two_splits[:50]}
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
                "duplicated test samples.", expected="split.duplicates_reason: <why>",
                received="none", fix="write the reason in split.duplicates_reason")
        decision["reason"] = cfg.duplicates_reason
        decision["accepted"] = dict(list(leaks.test_duplicates.items())[:200])
        return frame, decision
    removed = frame["sample_id"].isin(leaks.test_duplicates)
    decision["removed"] = dict(list(leaks.test_duplicates.items())[:200])
    return frame.assign(split=frame["split"].where(~removed, EXCLUDED)), decision
