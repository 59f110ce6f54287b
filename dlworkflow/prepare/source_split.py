"""split.use_source_split: the source's own train/test division as the sealed test set.

The test set is exactly the manifest rows whose `source_split` is "test" (a UCR/UEA TEST
file); train and validation are drawn from the rest with the train:val fractions, stratified
and grouped as usual. Samples of data.additions (`dlw retrain --data`) are assigned as in any
split, with all three fractions: their test share becomes their sealed fresh slice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DataError, SplitError
from dlworkflow.prepare.assign import Unit, assign

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.config import Split


def source_test_ids(manifest: pd.DataFrame, fresh: dict[str, int]) -> set[str]:
    """The ids of the source's test part (additions left out); DataError when the manifest
    has no source division."""
    has = "source_split" in manifest.columns
    values = manifest["source_split"].dropna().astype(str) if has else None
    if values is None or not (values == "test").any():
        found = sorted(set(values)) if values is not None and len(values) else []
        raise DataError(
            "split.use_source_split is on, but the data has no test part of its own.",
            expected="manifest rows with source_split 'test': a UCR/UEA <Name>_TRAIN.ts with "
            "its <Name>_TEST.ts beside it (or a folder holding the pair), or builtin:gunpoint, "
            "builtin:basic-motions, builtin:japanese-vowels",
            received=f"source_split values {found}" if found else "no source_split values",
            fix="ingest the TRAIN/TEST pair, or set `split.use_source_split: false` for a "
            "split of all samples",
        )
    ids = manifest.loc[manifest["source_split"] == "test", "sample_id"].astype(str)
    return {sid for sid in ids if sid not in fresh}


def check_groups(manifest: pd.DataFrame, test: set[str], *, grouped: bool) -> None:
    """SplitError when the source's division puts one group in its train and test parts."""
    if not grouped:
        return
    rows = manifest.dropna(subset=["group"])
    in_test = rows["sample_id"].astype(str).isin(test)
    both = sorted(
        set(rows.loc[in_test, "group"].astype(str)) & set(rows.loc[~in_test, "group"].astype(str))
    )
    if both:
        raise SplitError(
            f"The source's own train/test division puts {len(both)} group(s) in both parts "
            f"(e.g. {both[:3]}): a model would be tested on groups it trained on.",
            expected="every data.group_column value in one part of the source",
            received=f"{len(both)} groups in both the source's train and test parts",
            fix="set `split.use_source_split: false` (a grouped split of all samples), or "
            "`split.group_by: false` to keep the source's division as it is",
        )


def assign_with_source(
    units: list[Unit],
    *,
    test: set[str],
    fresh: dict[str, int],
    cfg: Split,
    seed: int,
    previous: dict[str, str],
) -> dict[str, str]:
    """sample id -> split: the source's test part is test; the rest is drawn into train and
    val with the train:val fractions (previous train/val assignments kept); additions with
    all three fractions."""
    share = cfg.train + cfg.val
    rest_fractions = {"train": cfg.train / share, "val": cfg.val / share, "test": 0.0}
    kept = {sid: s for sid, s in previous.items() if s in ("train", "val") and sid not in test}
    main: list[Unit] = []
    added: list[Unit] = []
    for unit in units:
        members = [m for m in unit.members if m not in test and m not in fresh]
        if members:
            main.append(Unit(unit.key, members, unit.label))
        extra = [m for m in unit.members if m in fresh]
        if extra:
            added.append(Unit(unit.key, extra, unit.label))
    mapping = dict.fromkeys(test, "test")
    drawn, _ = assign(
        main, fractions=rest_fractions, seed=seed, stratify=cfg.stratify, previous=kept
    )
    mapping.update(drawn)
    if added:
        fractions = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
        fresh_previous = {sid: s for sid, s in previous.items() if sid in fresh}
        extra_map, _ = assign(
            added,
            fractions=fractions,
            seed=seed,
            stratify=cfg.stratify,
            previous=fresh_previous,
            fresh=fresh,
        )
        mapping.update(extra_map)
    return mapping


def describe(mapping: dict[str, str], test: set[str]) -> dict[str, Any]:
    """What the ledger records about the source's division."""
    return {"use_source_split": True, "source_test": len(test), "drawn": len(mapping) - len(test)}
