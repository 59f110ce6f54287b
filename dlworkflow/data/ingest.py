"""`dlw ingest SOURCE`: read every sample once, hash it, and stream the manifest to disk.

Unusable samples are quarantined with a reason; original files are only ever read. Re-ingest
is incremental: a file whose path, size and modification time are unchanged is not decoded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.data.readers import Reader, make_reader
from dlworkflow.data.sources import SourceScan, open_source
from dlworkflow.errors import DataError
from dlworkflow.results import StepResult
from dlworkflow.store import DatasetInfo, ImageDecodeError, write_dataset
from dlworkflow.store.manifest import ManifestWriter, manifest_schema, version_of

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
    data_format: str
    changed: bool
    manifest: str
    n_reused: int = 0
    privacy: str = ""
    quarantine_examples: list[tuple[str, str]] = field(default_factory=list)

    def title(self) -> str:
        return "Step 2: data ingested"

    def rows(self) -> list[tuple[str, Any]]:
        counts = ", ".join(f"{k}: {v}" for k, v in list(self.class_counts.items())[:20])
        rows: list[tuple[str, Any]] = [
            ("source", self.source),
            ("samples", f"{self.n_samples:,} in {len(self.class_counts)} classes"),
            ("classes", counts + (" ..." if len(self.class_counts) > 20 else "")),
            ("data", self.data_format),
            ("dataset version", self.dataset_version[:12]
             + ("" if self.changed else " (unchanged)")),
            ("unchanged files reused", f"{self.n_reused:,} (not decoded again)"),
            ("quarantined", self.n_quarantined),
        ]
        rows += [(f"  {n} x", reason) for reason, n in self.quarantine_reasons.items()]
        rows += [("  e.g.", f"{sid}: {why}") for sid, why in self.quarantine_examples]
        if self.n_skipped:
            rows.append(("skipped (not samples)", self.n_skipped))
        if self.privacy:
            rows.append(("privacy", self.privacy))
        rows.append(("manifest", self.manifest))
        return rows


def ingest(project: Project, source: str | None = None, *, deidentify: bool = False,
           progress: bool = True) -> IngestResult:
    source = source or project.config.data.source
    if not source:
        raise DataError(
            "No data source given.", expected="a SOURCE argument or data.source in the config",
            received="none", fix="run `dlw ingest builtin:mnist5k` (or a folder / table path)",
        )
    if source != project.config.data.source:
        project.update_config({"data.source": source})
    previous = project.upstream_hash("ingest")
    with project.step("ingest", overrides=None) as run:
        scan = open_source(project, source)
        reader = make_reader(project, scan, deidentify=deidentify)
        writer, quarantined = _stream(project, scan, reader, progress=progress)
        info = _dataset_info(project, source, scan, writer, quarantined)
        write_dataset(project, None, _quarantine_frame(quarantined), info)
        privacy = reader.finish(info.version)
        run.outputs = {"hash": info.version, "manifest": str(project.paths.manifest)}
        run.summary = {
            "headline": f"{info.n_samples:,} samples, {len(info.classes)} classes, "
            f"{info.n_quarantined} quarantined, version {info.version[:12]}",
            "n_samples": info.n_samples, "n_quarantined": info.n_quarantined,
            "source": source, "reused": reader.reused, "deidentified": deidentify,
        }
    reasons = Counter(_reason_kind(q["reason"]) for q in quarantined)
    return IngestResult(
        source=source, dataset_version=info.version, n_samples=info.n_samples,
        class_counts=info.class_counts, n_quarantined=info.n_quarantined,
        quarantine_reasons=dict(reasons.most_common()), n_skipped=len(scan.skipped),
        data_format=_describe_format(info), changed=info.version != previous,
        manifest=str(project.paths.manifest), n_reused=reader.reused, privacy=privacy,
        quarantine_examples=[(q["sample_id"], q["reason"]) for q in quarantined[:5]],
    )


def _stream(project: Project, scan: SourceScan, reader: Reader, *,
            progress: bool) -> tuple[ManifestWriter, list[dict[str, Any]]]:
    """Read every candidate into the manifest writer (which also counts what the dataset
    summary needs); return it and the quarantined candidates."""
    from rich.progress import Progress

    allowed = set(project.config.data.classes or [])
    writer = ManifestWriter(project, manifest_schema(project.config.task, scan.columns))
    quarantined: list[dict[str, Any]] = []
    try:
        with Progress(transient=True, disable=not progress) as bar:
            task = bar.add_task("reading samples", total=None)
            for candidate in scan.candidates:
                try:
                    if allowed and candidate.problem is None and candidate.label not in allowed:
                        raise ImageDecodeError(f"unknown label value {candidate.label!r} "
                                               f"(data.classes allows {sorted(allowed)})")
                    writer.add(reader.read(candidate))
                except ImageDecodeError as exc:
                    quarantined.append({"sample_id": candidate.sample_id,
                                        "path": str(candidate.path or ""),
                                        "label": candidate.label, "reason": exc.reason})
                bar.advance(task)
    except BaseException:
        writer.abort()
        raise
    if writer.count == 0:
        writer.abort()
        raise DataError(
            "No usable samples: every candidate was quarantined or skipped.",
            expected="at least one readable, labelled sample",
            received=f"{len(quarantined)} quarantined, {len(scan.skipped)} skipped",
            fix="check the quarantine reasons and the source's layout",
        )
    writer.commit()
    return writer, quarantined


def _quarantine_frame(quarantined: list[dict[str, Any]]) -> Any:
    import pandas as pd

    from dlworkflow.store.manifest import QUARANTINE_COLUMNS

    return pd.DataFrame(quarantined, columns=list(QUARANTINE_COLUMNS)).astype("string")


def _dataset_info(project: Project, source: str, scan: SourceScan, writer: ManifestWriter,
                  quarantined: list[dict[str, Any]]) -> DatasetInfo:
    counts = dict(sorted(writer.labels.items()))
    if len(counts) < 2:
        raise DataError(
            f"Only one class found ({next(iter(counts))!r}); classification needs at least two.",
            expected="two or more labels", received=f"{writer.count} samples of one label",
            fix="check the folder layout or the label column",
        )
    channels = size = None
    if writer.sizes:
        gray = sum(n for mode, n in writer.modes.items() if mode in GRAY_MODES)
        channels = 1 if gray >= writer.count / 2 else 3
        size = writer.sizes.most_common(1)[0][0]
    return DatasetInfo(
        version=version_of(writer.version_total), source=source, n_samples=writer.count,
        n_quarantined=len(quarantined), classes=list(counts), class_counts=counts,
        channels=channels, size=size, task=project.config.task, features=dict(scan.columns),
    )


def _describe_format(info: DatasetInfo) -> str:
    if info.size:
        return f"images, {info.size[0]}x{info.size[1]}, {info.channels} channel(s) (most common)"
    if info.features:
        return f"{len(info.features)} feature columns"
    return "text"


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: drop row numbers and details after a colon."""
    text = reason.split(": ", 1)[1] if reason.startswith(("line ", "row ")) else reason
    return text.split(":")[0].split(" (")[0]
