"""`dlw split`: make the split, check it for leakage, and seal the test set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import SplitError
from dlworkflow.prepare.assign import SPLITS, assign, units_of
from dlworkflow.results import StepResult
from dlworkflow.store import SplitInfo, read_manifest, write_split
from dlworkflow.store.manifest import dataset_version
from dlworkflow.store.splits import assignment_hash, seal_hash

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project


@dataclass
class SplitResult(StepResult):
    counts: dict[str, int]
    n_groups: dict[str, int]
    seal_hash: str
    split_hash: str
    kept: int
    new: int
    warnings: list[str] = field(default_factory=list)

    def title(self) -> str:
        return "Step 4: split made, test set sealed"

    def rows(self) -> list[tuple[str, Any]]:
        total = sum(self.counts.values())
        rows: list[tuple[str, Any]] = [
            (name, f"{n:,} ({n / total:.1%})" + (f", {self.n_groups[name]} groups"
                                                 if self.n_groups.get(name) else ""))
            for name, n in self.counts.items()
        ]
        rows += [
            ("kept from last split", f"{self.kept:,}; newly assigned {self.new:,}"),
            ("test seal", self.seal_hash[:12]),
            ("reader of the test set", "`dlw test` only; every read is logged"),
        ]
        rows += [("warning", w) for w in self.warnings]
        return rows


def split(project: Project) -> SplitResult:
    import pandas as pd

    cfg, seed = project.config.split, project.config.seed
    fractions = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    manifest = read_manifest(project)
    with project.step("split", inputs={"ingest": project.upstream_hash("ingest")}) as run:
        previous = _previous(project, fractions=fractions, seed=seed, stratify=cfg.stratify)
        grouped = cfg.group_by and manifest["group"].notna().any()
        # a sample with an empty group is its own unit (pd.NA has no truth value: isna)
        groups = [None if not grouped or pd.isna(g) else str(g)
                  for g in manifest["group"].astype(object).tolist()]
        units = units_of(manifest["sample_id"].tolist(), manifest["label"].tolist(), groups)
        mapping, moved = assign(units, fractions=fractions, seed=seed, stratify=cfg.stratify,
                                previous=previous)
        if moved:
            raise SplitError(
                f"{moved} previously assigned samples would change split, because groups now "
                "tie together samples that were in different splits.",
                expected="groups consistent with the previous split",
                received=f"{moved} samples in conflict",
                fix="this happens when data.group_column changed; delete .dlw/split to make a "
                "fresh split (the test set changes: say so in the report)",
            )
        frame = manifest.assign(split=manifest["sample_id"].map(mapping))
        info = _info(frame, fractions=fractions, seed=seed, grouped=bool(grouped))
        write_split(project, frame[["sample_id", "split"]], info)
        run.outputs = {"hash": info.hash, "seal": info.seal_hash}
        run.summary = {"headline": ", ".join(f"{k} {v:,}" for k, v in info.counts.items())
                       + f"; test sealed {info.seal_hash[:12]}", "counts": info.counts}
    kept = sum(1 for sid in mapping if sid in previous)
    return SplitResult(
        counts=info.counts, n_groups=info.n_groups if grouped else {}, seal_hash=info.seal_hash,
        split_hash=info.hash, kept=kept, new=len(mapping) - kept, warnings=_warnings(frame),
    )


def _previous(project: Project, *, fractions: dict[str, float], seed: int,
              stratify: bool) -> dict[str, str]:
    """The last split's assignment, if it was made with the same seed and fractions."""
    from dlworkflow.store import read_assignments, read_split_info

    if not (project.paths.split_dir / "split.json").is_file():
        return {}
    info = read_split_info(project)
    if info.seed != seed or info.fractions != fractions:
        return {}
    table = read_assignments(project)
    return dict(zip(table["sample_id"], table["split"]))


def _info(frame: pd.DataFrame, *, fractions: dict[str, float], seed: int,
          grouped: bool) -> SplitInfo:
    counts = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    by_class = {
        s: {str(k): int(v) for k, v in frame.loc[frame["split"] == s, "label"]
            .value_counts().sort_index().items()}
        for s in SPLITS
    }
    n_groups = {s: int(frame.loc[frame["split"] == s, "group"].nunique()) for s in SPLITS}
    return SplitInfo(
        hash=assignment_hash(frame), seal_hash=seal_hash(frame[frame["split"] == "test"]),
        dataset_version=dataset_version(frame), classes=sorted(frame["label"].unique().tolist()),
        counts=counts, class_counts=by_class, seed=seed, fractions=fractions, grouped=grouped,
        n_groups=n_groups,
    )


def _warnings(frame: pd.DataFrame) -> list[str]:
    warnings = []
    for s in ("val", "test"):
        missing = sorted(set(frame["label"]) - set(frame.loc[frame["split"] == s, "label"]))
        if missing:
            warnings.append(f"classes with no {s} sample (too few samples): {missing[:10]}")
    test_hashes = set(frame.loc[frame["split"] == "test", "content_hash"])
    dev = frame[frame["split"] != "test"]
    leaked = int(dev["content_hash"].isin(test_hashes).sum())
    if leaked:
        warnings.append(f"{leaked} train/val samples are exact copies of test samples "
                        "(leakage): remove duplicates before trusting the test verdict")
    return warnings
