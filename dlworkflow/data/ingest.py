"""`dlw ingest SOURCE`: read every sample once, hash it, and write the manifest.

Unusable samples are quarantined with a reason; original files are only ever read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.data.sources import Candidate, open_source
from dlworkflow.errors import DataError
from dlworkflow.fileio import sha256_file
from dlworkflow.results import StepResult
from dlworkflow.store import DatasetInfo, ImageDecodeError, dataset_version, decode_image, write_dataset

if TYPE_CHECKING:
    from dlworkflow.project import Project

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


@dataclass
class IngestResult(StepResult):
    source: str
    dataset_version: str
    n_samples: int
    class_counts: dict[str, int]
    n_quarantined: int
    quarantine_reasons: dict[str, int]
    n_skipped: int
    image_format: str
    changed: bool
    manifest: str
    quarantine_examples: list[tuple[str, str]] = field(default_factory=list)

    def title(self) -> str:
        return "Step 2: data ingested"

    def rows(self) -> list[tuple[str, Any]]:
        counts = ", ".join(f"{k}: {v}" for k, v in self.class_counts.items())
        rows: list[tuple[str, Any]] = [
            ("source", self.source),
            ("samples", f"{self.n_samples:,} in {len(self.class_counts)} classes"),
            ("classes", counts),
            ("images", self.image_format),
            ("dataset version", self.dataset_version[:12]
             + ("" if self.changed else " (unchanged)")),
            ("quarantined", self.n_quarantined),
        ]
        rows += [(f"  {n} x", reason) for reason, n in self.quarantine_reasons.items()]
        rows += [("  e.g.", f"{sid}: {why}") for sid, why in self.quarantine_examples]
        if self.n_skipped:
            rows.append(("skipped (not images)", self.n_skipped))
        rows.append(("manifest", self.manifest))
        return rows


def ingest(project: Project, source: str | None = None, *, progress: bool = True) -> IngestResult:
    source = source or project.config.data.source
    if not source:
        raise DataError(
            "No data source given.", expected="a SOURCE argument or data.source in the config",
            received="none", fix="run `dlw ingest builtin:mnist5k` (or a folder / CSV path)",
        )
    if source != project.config.data.source:
        project.update_config({"data.source": source})
    previous = project.upstream_hash("ingest")
    with project.step("ingest") as run:
        scan = open_source(project, source)
        rows, quarantined = _read_all(scan.candidates, project.config.data.max_image_pixels,
                                      progress=progress)
        manifest, quarantine = _frames(rows, quarantined)
        info = _dataset_info(source, manifest, quarantine)
        write_dataset(project, manifest, quarantine, info)
        run.outputs = {"hash": info.version, "manifest": str(project.paths.manifest)}
        run.summary = {
            "headline": f"{info.n_samples:,} samples, {len(info.classes)} classes, "
            f"{info.n_quarantined} quarantined, version {info.version[:12]}",
            "n_samples": info.n_samples, "n_quarantined": info.n_quarantined,
            "source": source,
        }
    reasons = Counter(_reason_kind(q["reason"]) for q in quarantined)
    return IngestResult(
        source=source, dataset_version=info.version, n_samples=info.n_samples,
        class_counts=info.class_counts, n_quarantined=info.n_quarantined,
        quarantine_reasons=dict(reasons.most_common()), n_skipped=len(scan.skipped),
        image_format=f"{info.size[0]}x{info.size[1]}, {info.channels} channel(s) (most common)",
        changed=info.version != previous, manifest=str(project.paths.manifest),
        quarantine_examples=[(q["sample_id"], q["reason"]) for q in quarantined[:5]],
    )


def _read_all(candidates: Any, max_pixels: int, *, progress: bool) -> tuple[list, list]:
    from rich.progress import Progress

    rows: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("reading samples", total=None)
        for candidate in candidates:
            try:
                rows.append(_read_one(candidate, max_pixels))
            except ImageDecodeError as exc:
                quarantined.append({"sample_id": candidate.sample_id,
                                    "path": str(candidate.path),
                                    "label": candidate.label, "reason": exc.reason})
            bar.advance(task)
    return rows, quarantined


def _read_one(candidate: Candidate, max_pixels: int) -> dict[str, Any]:
    if candidate.problem:
        raise ImageDecodeError(candidate.problem)
    image = decode_image(candidate.path, max_pixels=max_pixels)
    return {
        "sample_id": candidate.sample_id, "path": str(candidate.path), "label": candidate.label,
        "group": candidate.group, "content_hash": sha256_file(candidate.path),
        "width": image.width, "height": image.height, "mode": image.mode,
        "bytes": candidate.path.stat().st_size,
    }


def _frames(rows: list[dict], quarantined: list[dict]) -> tuple[Any, Any]:
    import pandas as pd

    from dlworkflow.store.manifest import MANIFEST_COLUMNS, QUARANTINE_COLUMNS

    if not rows:
        raise DataError(
            "No usable samples: every candidate was quarantined or skipped.",
            expected="at least one readable, labelled image",
            received=f"{len(quarantined)} quarantined",
            fix="check the quarantine reasons above and the source's layout",
        )
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    manifest["group"] = manifest["group"].astype("string")
    quarantine = pd.DataFrame(quarantined, columns=list(QUARANTINE_COLUMNS)).astype("string")
    return manifest, quarantine


def _dataset_info(source: str, manifest: Any, quarantine: Any) -> DatasetInfo:
    counts = manifest["label"].value_counts().sort_index()
    if len(counts) < 2:
        raise DataError(
            f"Only one class found ({counts.index[0]!r}); classification needs at least two.",
            expected="two or more labels", received=f"{len(manifest)} samples of one label",
            fix="check the folder layout or the label column",
        )
    sizes = Counter(zip(manifest["height"], manifest["width"]))
    gray = manifest["mode"].isin(GRAY_MODES).mean()
    return DatasetInfo(
        version=dataset_version(manifest), source=source, n_samples=len(manifest),
        n_quarantined=len(quarantine), classes=[str(c) for c in counts.index],
        class_counts={str(k): int(v) for k, v in counts.items()},
        channels=1 if gray >= 0.5 else 3,
        size=tuple(int(v) for v in sizes.most_common(1)[0][0]),
    )


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: drop line numbers and details after a colon."""
    text = reason.split(": ", 1)[1] if reason.startswith("line ") else reason
    return text.split(":")[0].split(" (")[0]
