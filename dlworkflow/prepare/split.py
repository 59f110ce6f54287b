"""`dlw split`: make the split, check it for leakage, and seal the test set.

Samples of `data.additions` (the fresh data of `dlw retrain`) never join the test set: their
test share forms a sealed slice `fresh<N>` per addition, with its own seal, so the test set
and its seal stay as they were (store/splits.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.prepare.assign import SPLITS, assign, units_of
from dlworkflow.prepare.leakage import EXCLUDED, apply_policy, find_leaks
from dlworkflow.results import StepResult
from dlworkflow.store import SplitInfo, read_manifest, write_split
from dlworkflow.store.manifest import check_manifest_version, dataset_version, read_dataset_info
from dlworkflow.store.splits import addition_of, assignment_hash, fresh_number, seal_hash
from dlworkflow.tasks import Task, task_of

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.store import DatasetInfo
    from dlworkflow.workspace import Workspace


@dataclass
class SplitResult(StepResult):
    counts: dict[str, int]
    n_groups: dict[str, int]
    seal_hash: str
    split_hash: str
    kept: int
    new: int
    warnings: list[str] = field(default_factory=list)
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)  # SplitInfo.slices
    source_split: bool = False  # split.use_source_split: test is the source's own test part

    def title(self) -> str:
        return "Step 4: split made, test set sealed"

    def rows(self) -> list[tuple[str, Any]]:
        total = sum(self.counts.values())
        rows: list[tuple[str, Any]] = [
            (
                name,
                f"{n:,} ({n / total:.1%})"
                + (
                    f", {self.n_groups[name]} group{'s' if self.n_groups[name] > 1 else ''}"
                    if self.n_groups.get(name)
                    else ""
                ),
            )
            for name, n in self.counts.items()
        ]
        rows += [
            (
                name,
                f"{s['n']:,} fresh samples of addition {s['addition']}, sealed "
                f"{s['seal_hash'][:12]}",
            )
            for name, s in self.slices.items()
        ]
        if self.source_split:
            rows.append(("test set", "the source's own test part (split.use_source_split)"))
        rows += [
            ("kept from last split", f"{self.kept:,}; newly assigned {self.new:,}"),
            ("test seal", self.seal_hash[:12]),
            (
                "reader of the test set",
                "`dlw test` only; every read is logged"
                + ("" if not self.slices else " (fresh slices: `dlw retrain` only)"),
            ),
        ]
        rows += [("warning", w) for w in self.warnings]
        return rows


def split(project: Workspace) -> SplitResult:
    cfg, seed = project.config.split, project.config.seed
    fractions = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    manifest = read_manifest(project)
    ingested = project.upstream_hash("ingest")
    check_manifest_version(project, manifest, ingested, step="split")
    with project.step("split", inputs={"ingest": ingested}) as run:
        previous = _previous(project, fractions=fractions, seed=seed, stratify=cfg.stratify)
        grouped = bool(cfg.group_by and manifest["group"].notna().any())
        dataset = read_dataset_info(project)
        near = _near_pairs(project, manifest, dataset)
        # the strata the split keeps in proportion come from the task (classification: the
        # class itself)
        strata = task_of(project.config.task).strata(manifest["label"].tolist())
        units = units_of(
            manifest["sample_id"].tolist(), strata, _links(manifest, grouped=grouped, near=near)
        )
        fresh = _fresh_samples(manifest, dataset)
        if cfg.use_source_split:  # the source's own test part is the sealed test set
            from dlworkflow.prepare import source_split as S

            source_test = S.source_test_ids(manifest, fresh)
            S.check_groups(manifest, source_test, grouped=grouped)
            mapping = S.assign_with_source(
                units, test=source_test, fresh=fresh, cfg=cfg, seed=seed, previous=previous
            )
        else:
            mapping, _ = assign(
                units,
                fractions=fractions,
                seed=seed,
                stratify=cfg.stratify,
                previous=previous,
                fresh=fresh,
            )
        frame = manifest.assign(split=manifest["sample_id"].map(mapping))
        frame, decision = apply_policy(frame, find_leaks(frame, near), cfg)
        info = _info(
            frame,
            fractions=fractions,
            seed=seed,
            grouped=grouped,
            task=task_of(project.config.task),
        )
        write_split(project, frame[["sample_id", "split"]], info)
        run.outputs = {"hash": info.hash, "seal": info.seal_hash}
        run.summary = {
            "headline": ", ".join(f"{k} {v:,}" for k, v in info.counts.items())
            + "".join(f", {k} {v['n']:,}" for k, v in info.slices.items())
            + f"; test sealed {info.seal_hash[:12]}",
            "counts": info.counts,
            "duplicates": decision,
        }
        if cfg.use_source_split:
            run.summary["source_split"] = S.describe(mapping, source_test)
        if info.slices:
            run.outputs["slices"] = {k: v["seal_hash"] for k, v in info.slices.items()}
            run.summary["slices"] = {k: v["n"] for k, v in info.slices.items()}
    kept = sum(1 for sid in mapping if sid in previous)
    return SplitResult(
        counts=info.counts,
        n_groups=info.n_groups if grouped else {},
        seal_hash=info.seal_hash,
        split_hash=info.hash,
        kept=kept,
        new=len(mapping) - kept,
        warnings=_warnings(frame, decision, task_of(project.config.task)),
        slices=info.slices,
        source_split=cfg.use_source_split,
    )


def _fresh_samples(manifest: pd.DataFrame, dataset: DatasetInfo) -> dict[str, int]:
    """sample id -> addition number, for the samples of data.additions (ids "add<N>/...")."""
    additions = dataset.extra.get("additions") or []
    if not additions:
        return {}
    out = {}
    for sid in manifest["sample_id"].astype(str):
        number = addition_of(sid, len(additions))
        if number is not None:
            out[sid] = number
    return out


def _links(
    manifest: pd.DataFrame, *, grouped: bool, near: list[tuple[str, str]]
) -> list[list[str]]:
    """What ties samples into one unit: their group, identical content, near-duplicate images.
    Duplicates kept together cannot leak from training into the test set."""
    import pandas as pd

    links = [[f"h:{h}"] for h in manifest["content_hash"]]
    if grouped:
        for keys, group in zip(links, manifest["group"].astype(object)):
            if not pd.isna(group):
                keys.append(f"g:{group}")
    index = {sid: i for i, sid in enumerate(manifest["sample_id"])}
    for a, b in near:
        key = f"n:{min(a, b)}"
        links[index[a]].append(key)
        links[index[b]].append(key)
    return links


def _near_pairs(
    project: Workspace, manifest: pd.DataFrame, dataset: DatasetInfo
) -> list[tuple[str, str]]:
    """Near-duplicate images (perceptual hashes within explore.near_duplicate_distance,
    confirmed on pixels), by sample id."""
    import numpy as np

    from dlworkflow.similarity import confirm_pairs, confirm_side, near_pairs
    from dlworkflow.store.images import ImageDecodeError, gray_pixels, image_tensor

    if "phash" not in manifest.columns or manifest["phash"].isna().all():
        return []
    valid = np.flatnonzero(manifest["phash"].notna().to_numpy())
    codes = manifest["content_hash"].astype("category").cat.codes.to_numpy()[valid]
    pairs, _, _ = near_pairs(
        manifest["phash"].to_numpy()[valid].astype(np.int64),
        distance=project.config.explore.near_duplicate_distance,
        exclude=codes,
    )
    if not len(pairs):
        return []
    pairs = valid[pairs]
    paths = manifest["path"].astype(str).to_numpy()
    side = confirm_side(project.config.data.image.size or dataset.size or (32, 32))
    max_pixels = project.config.data.max_image_pixels

    def pixels(rows: np.ndarray) -> np.ndarray:
        """Through the tensor cache: `dlw explore` confirmed the same candidates on the same
        gray images, so these rows are usually not decoded again."""
        try:
            return image_tensor(
                project, manifest.iloc[rows], channels=1, size=(side, side), max_pixels=max_pixels
            )[:, 0].astype(np.float32)
        except ImageDecodeError:  # one unreadable file: NaN for it, the rest as usual
            return gray_pixels(list(paths[rows]), side=side, max_pixels=max_pixels)

    keep = confirm_pairs(pairs, pixels)
    ids = manifest["sample_id"].to_numpy()
    return [(ids[i], ids[j]) for i, j in pairs[keep]]


def _previous(
    project: Workspace, *, fractions: dict[str, float], seed: int, stratify: bool
) -> dict[str, str]:
    """The last split's assignment, if it was made with the same seed and fractions (and
    split.use_source_split as it is now)."""
    from dlworkflow.store import read_assignments, read_split_info

    if not (project.paths.split_dir / "split.json").is_file():
        return {}
    info = read_split_info(project)
    if info.seed != seed or info.fractions != fractions:
        return {}
    last = project.ledger.latest("split")  # split.use_source_split switched: a fresh draw
    if bool(last and last.summary.get("source_split")) != project.config.split.use_source_split:
        return {}
    table = read_assignments(project)
    table = table[table["split"] != EXCLUDED]  # removed duplicates are assigned afresh
    return dict(zip(table["sample_id"], table["split"]))


def _info(
    frame: pd.DataFrame, *, fractions: dict[str, float], seed: int, grouped: bool, task: Task
) -> SplitInfo:
    counts = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    by_class = {s: _target_counts(task, frame.loc[frame["split"] == s, "label"]) for s in SPLITS}
    n_groups = {s: int(frame.loc[frame["split"] == s, "group"].nunique()) for s in SPLITS}
    return SplitInfo(
        hash=assignment_hash(frame),
        seal_hash=seal_hash(frame[frame["split"] == "test"]),
        dataset_version=dataset_version(frame),
        classes=task.output_names(frame["label"].astype(str).tolist()),
        counts=counts,
        class_counts=by_class,
        seed=seed,
        fractions=fractions,
        grouped=grouped,
        n_groups=n_groups,
        slices=_slices(frame, task),
    )


def _target_counts(task: Task, labels: pd.Series) -> dict[str, int]:
    return task.target_counts({str(k): int(v) for k, v in labels.value_counts().items()})


def _slices(frame: pd.DataFrame, task: Task) -> dict[str, dict[str, Any]]:
    """One entry per fresh slice present, by addition number: its seal and class counts."""
    names = sorted(
        {s for s in frame["split"].dropna().unique() if fresh_number(s)},
        key=lambda s: fresh_number(s) or 0,
    )
    out = {}
    for name in names:
        rows = frame[frame["split"] == name]
        out[name] = {
            "addition": fresh_number(name),
            "seal_hash": seal_hash(rows),
            "n": int(len(rows)),
            # counted as the task counts (classes; boxes per class; images per class)
            "class_counts": _target_counts(task, rows["label"]),
        }
    return out


def _warnings(frame: pd.DataFrame, decision: dict[str, Any], task: Task) -> list[str]:
    warnings = []
    every = task.output_names(frame["label"].astype(str).tolist())
    for s in ("val", "test"):
        present = task.output_names(frame.loc[frame["split"] == s, "label"].astype(str).tolist())
        missing = sorted(set(every) - set(present))
        if missing:
            warnings.append(f"classes with no {s} sample (too few samples): {missing[:10]}")
    n = decision["test_duplicates"]
    if n and decision["policy"] == "remove":
        warnings.append(
            f"{n} test samples duplicated train/val samples and were removed from "
            f"the test set (split '{EXCLUDED}'; listed in the ledger)"
        )
    elif n:
        warnings.append(
            f"{n} test samples duplicate train/val samples, accepted: {decision.get('reason')}"
        )
    return warnings
