"""`dlw ingest SOURCE`: read every sample once, hash it, and stream the manifest to disk.

Unusable samples are quarantined with a reason; original files are only ever read. Re-ingest
is incremental: a file whose path, size and modification time are unchanged is not decoded.

After `data.source`, every `data.additions[i]` (fresh labelled data recorded by `dlw retrain
--data`) is read into the same manifest, its sample ids prefixed `add<i+1>/`: one manifest,
one dataset version. Without additions nothing differs from a plain ingest.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.data import requirements as R
from dlworkflow.data import schema as S
from dlworkflow.data.parallel_read import read_outcomes, resolve_workers
from dlworkflow.data.readers import Reader, make_reader
from dlworkflow.data.review_apply import ReviewPlan
from dlworkflow.data.sources import Candidate, SourceScan, open_source
from dlworkflow.errors import DataError
from dlworkflow.results import StepResult
from dlworkflow.store import DatasetInfo, ImageDecodeError, write_dataset
from dlworkflow.store.manifest import ManifestWriter, manifest_schema, version_of
from dlworkflow.store.splits import addition_of, addition_prefix
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

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
    # data.additions, in order: {"number", "source", "prefix", "n_samples", "n_quarantined"}
    additions: list[dict[str, Any]] = field(default_factory=list)
    schema: str = ""  # what the feature schema check did (data/schema.py)
    requirements: str = ""  # data.requirements as measured (data/requirements.py)
    requirement_violations: list[str] = field(default_factory=list)
    source_notes: list[str] = field(default_factory=list)  # e.g. boxes and tiles counted
    label_review: str = ""  # what labels/review.csv changed (data/review_apply.py)

    def title(self) -> str:
        return "Step 2: data ingested"

    def rows(self) -> list[tuple[str, Any]]:
        counts = ", ".join(f"{k}: {v}" for k, v in list(self.class_counts.items())[:20])
        rows: list[tuple[str, Any]] = [
            ("source", self.source),
            ("samples", f"{self.n_samples:,} in {len(self.class_counts)} classes"),
            ("classes", counts + (" ..." if len(self.class_counts) > 20 else "")),
            ("data", self.data_format),
            *(("  read", note) for note in self.source_notes),
            (
                "dataset version",
                self.dataset_version[:12] + ("" if self.changed else " (unchanged)"),
            ),
            ("unchanged files reused", f"{self.n_reused:,} (not decoded again)"),
            ("quarantined", self.n_quarantined),
        ]
        rows += [
            (
                f"addition {a['number']}",
                f"{a['source']}: {a['n_samples']:,} samples "
                f"(ids {a['prefix']}...), {a['n_quarantined']} quarantined",
            )
            for a in self.additions
        ]
        rows += [(f"  {n} x", reason) for reason, n in self.quarantine_reasons.items()]
        rows += [("  e.g.", f"{sid}: {why}") for sid, why in self.quarantine_examples]
        if self.label_review:
            rows.append(("label review", self.label_review))
        if self.n_skipped:
            rows.append(("skipped (not samples)", self.n_skipped))
        if self.privacy:
            rows.append(("privacy", self.privacy))
        if self.schema:
            rows.append(("schema", self.schema))
        if self.requirements:
            rows.append(("requirements", self.requirements))
        rows += [("  NOT MET", text) for text in self.requirement_violations]
        rows.append(("manifest", self.manifest))
        return rows


def ingest(
    project: Workspace,
    source: str | None = None,
    *,
    deidentify: bool = False,
    accept_findings: str | None = None,
    accept_schema: bool = False,
    progress: bool = True,
) -> IngestResult:
    """Read `source` (or data.source, then data.additions) into a new manifest.

    `deidentify` (`dlw ingest --deidentify`) is stored as privacy.deidentify: every later
    ingest, `dlw retrain --data`'s additions included, reads scrubbed copies too. The manifest
    is committed last, after every check has passed: an ingest that fails leaves the previous
    manifest as it was. `accept_findings`: a reason to train despite remaining privacy findings,
    recorded with this ingest's dataset version (privacy.accept_findings_reason and
    privacy.accept_findings_version); a later dataset version needs a new decision.
    `accept_schema` (`dlw ingest --accept-schema`): infer the feature schema anew from this
    data instead of checking the data against the stored one (a deliberate change).
    """
    source = source or project.config.data.source
    if not source:
        from dlworkflow.datasets.catalog import ingest_hint

        raise DataError(
            "No data source given.",
            expected="a SOURCE argument or data.source in the config",
            received="none",
            fix=f"run `{ingest_hint(project.config.task)}` (or a folder / table path)",
        )
    accept = (accept_findings or "").strip()
    if accept_findings is not None and not accept:
        raise DataError(
            "An empty reason cannot accept privacy findings.",
            expected="why the remaining findings are acceptable (it is recorded)",
            received=repr(accept_findings),
            fix="give the reason in words, e.g. 'GPS of public landmarks only; DPO ticket 12'",
        )
    updates: dict[str, Any] = {}
    if source != project.config.data.source:
        updates["data.source"] = source
    from dlworkflow.data.builtin import builtin_settings

    updates.update(builtin_settings(project, source))  # builtin:trees sets data.tiles
    if deidentify and not project.config.privacy.deidentify:
        updates["privacy.deidentify"] = True  # every later ingest scrubs too
    if updates:
        project.update_config(updates)
    deidentify = project.config.privacy.deidentify
    additions = list(project.config.data.additions)
    previous = project.upstream_hash("ingest")
    with project.step("ingest", overrides=None) as run:
        allowed = R.check_sources(project.config.data.requirements, [source, *additions])
        scan = open_source(project, source)
        schema = _SchemaPass.start(project, source, scan, accept=accept_schema)
        reader = make_reader(project, scan, deidentify=deidentify)
        sources = [_Source(0, source, scan)] + _open_additions(project, scan, additions, reader)
        review = ReviewPlan.load(project)  # labels/review.csv: relabel, exclude
        writer, quarantined = _stream(
            project, sources, reader, progress=progress, schema=schema, review=review
        )
        try:  # every check passes before the manifest is committed, last
            info = _dataset_info(project, source, scan, writer, quarantined)
            if additions:
                info.extra["additions"] = [s.record() for s in sources[1:]]
            privacy = reader.finish(info.version)
            write_dataset(project, None, _quarantine_frame(quarantined), info)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        schema_record = schema.finish(project, source, info)
        checked = R.check_counts(
            project.config.data.requirements, task_of(project.config.task), info.class_counts
        )
        checked["allowed_sources"] = allowed
        if accept and reader.privacy is not None:
            project.update_config(
                {
                    "privacy.accept_findings_reason": accept,
                    "privacy.accept_findings_version": info.version,
                }
            )
            privacy += f"; findings accepted for dataset version {info.version}: {accept}"
        elif accept:
            privacy = "not scanned: no findings to accept (privacy.scan, data_sensitivity)"
        run.outputs = {"hash": info.version, "manifest": str(project.paths.manifest)}
        run.summary = {
            "headline": f"{info.n_samples:,} samples, {len(info.classes)} classes, "
            f"{info.n_quarantined} quarantined, version {info.version[:12]}",
            "n_samples": info.n_samples,
            "n_quarantined": info.n_quarantined,
            "source": source,
            "reused": reader.reused,
            "deidentified": deidentify,
            "schema": schema_record,
            "requirements": checked,
        }
        if additions:
            run.summary["additions"] = info.extra["additions"]
        if review.decisions:
            run.summary["label_review"] = review.record()
    reasons = Counter(_reason_kind(q["reason"]) for q in quarantined)
    return IngestResult(
        source=source,
        dataset_version=info.version,
        n_samples=info.n_samples,
        class_counts=info.class_counts,
        n_quarantined=info.n_quarantined,
        quarantine_reasons=dict(reasons.most_common()),
        n_skipped=sum(len(s.scan.skipped) for s in sources),
        data_format=_describe_format(info, task_of(project.config.task).modality),
        changed=info.version != previous,
        manifest=str(project.paths.manifest),
        n_reused=reader.reused,
        privacy=privacy,
        quarantine_examples=[(q["sample_id"], q["reason"]) for q in quarantined[:5]],
        additions=[s.record() for s in sources[1:]],
        schema=_schema_text(schema_record),
        requirements=R.describe(checked),
        requirement_violations=list(checked["violations"]),
        source_notes=[note for s in sources for note in s.scan.notes],
        label_review=review.describe(),
    )


@dataclass
class _SchemaPass:
    """This ingest's feature schema work: a check against the stored schema (same source, not
    --accept-schema), or else the inference of this data's schema (written at the end)."""

    builder: S.SchemaBuilder
    checker: S.SchemaChecker | None
    why: str  # why the schema is inferred, or what it is checked against

    @classmethod
    def start(
        cls, project: Workspace, source: str, scan: SourceScan, *, accept: bool
    ) -> _SchemaPass:
        task = task_of(project.config.task)
        stored = S.read_schema(project)
        if accept:
            why = "inferred anew (--accept-schema)"
        elif stored is None:
            why = "inferred (no schema yet)"
        elif stored.get("source") != source or stored.get("task") != task.name:
            why = f"inferred anew (new data.source; the last schema was of {stored.get('source')})"
        else:
            _expect_columns(project, scan, stored)
            checker = S.SchemaChecker(stored, task)
            why = f"checked against the schema inferred from version {stored['inferred_from'][:12]}"
            return cls(S.SchemaBuilder(task, scan.columns), checker, why)
        return cls(S.SchemaBuilder(task, scan.columns), None, why)

    def finish(self, project: Workspace, source: str, info: DatasetInfo) -> dict[str, Any]:
        """Write the inferred schema (when not checking); the record for the ledger."""
        if self.checker is None:
            schema = self.builder.schema(
                source=source, version=info.version, n=info.n_samples, classes=info.classes
            )
            S.write_schema(project, schema)
            record: dict[str, Any] = {"mode": "inferred", "why": self.why, "checked": 0}
        else:
            schema = self.checker.schema
            record = {"mode": "checked", "why": self.why, **self.checker.record()}
        record.update(
            {
                "path": str(S.schema_path(project)),
                "sha256": S.schema_hash(schema),
                "inferred_from": schema.get("inferred_from"),
                "summary": S.summary(schema),
            }
        )
        return record


def _expect_columns(project: Workspace, scan: SourceScan, stored: dict[str, Any]) -> None:
    """A table checked against the schema has its feature columns, read with its types (a
    number column stays one: a row holding text there is quarantined with the reason)."""
    features = stored.get("features")
    if not features and not scan.columns:
        return
    expected = {
        n: "number" if s.get("type") == "number" else "string" for n, s in (features or {}).items()
    }
    if set(expected) != set(scan.columns):
        missing = sorted(set(expected) - set(scan.columns))
        extra = sorted(set(scan.columns) - set(expected))
        raise DataError(
            "The table's feature columns are not the schema's (.dlw/data/schema.json).",
            expected=f"columns {', '.join(sorted(expected))}",
            received=f"missing {missing or 'none'}, extra {extra or 'none'}",
            fix="restore the columns, or run `dlw ingest --accept-schema` if the change is "
            "deliberate (the schema is inferred anew)",
        )
    if scan.columns != expected:
        main = SourceScan(kind=scan.kind, candidates=iter(()), columns=expected)
        _align_columns(project, main, scan, source=scan.location)


def _schema_text(record: dict[str, Any]) -> str:
    text = f"{record['why']}: {record['summary']}"
    if record["mode"] == "checked":
        diffs = ", ".join(f"{k}: {n:,}" for k, n in list(record["differences"].items())[:3])
        text += (
            f"; {record['checked']:,} samples checked, {record['quarantined']:,} quarantined"
            + (f", {record['outside']:,} kept outside it ({diffs})" if diffs else ", all within it")
        )
    return text


@dataclass
class _Source:
    """One source of this ingest: the main one (number 0) or data.additions[number - 1]."""

    number: int
    source: str
    scan: SourceScan
    n_samples: int = 0
    n_quarantined: int = 0

    @property
    def prefix(self) -> str:
        return addition_prefix(self.number) if self.number else ""

    def record(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "prefix": self.prefix,
            "n_samples": self.n_samples,
            "n_quarantined": self.n_quarantined,
        }


def _open_additions(
    project: Workspace, main: SourceScan, additions: list[str], reader: Reader
) -> list[_Source]:
    """Scans of data.additions, their table columns checked against the main source's."""
    out = []
    for number, source in enumerate(additions, start=1):
        scan = open_source(project, source)
        if reader.privacy is not None and scan.kind.endswith("table"):
            reader.privacy.table(scan)
        _align_columns(project, main, scan, source=source)
        out.append(_Source(number, source, scan))
    return out


def _align_columns(project: Workspace, main: SourceScan, scan: SourceScan, *, source: str) -> None:
    """A tabular addition has the main source's feature columns, read with the main source's
    kinds (number / string): one manifest schema."""
    if not main.columns and not scan.columns:
        return
    if set(scan.columns) != set(main.columns):
        missing = sorted(set(main.columns) - set(scan.columns))
        extra = sorted(set(scan.columns) - set(main.columns))
        raise DataError(
            f"The addition {source!r} does not have the feature columns of data.source.",
            expected=f"columns {', '.join(sorted(main.columns))}",
            received=f"missing {missing or 'none'}, extra {extra or 'none'}",
            fix="give the fresh table the same feature columns (or list them in "
            "data.feature_columns), then run `dlw retrain --data` again",
        )
    if scan.columns != main.columns:  # same names, a kind inferred differently: use main's
        from dlworkflow.data.tables import _table_candidates

        scan.candidates = _table_candidates(
            Path(scan.location),
            project.config,
            None,
            dict(main.columns),
            task_of(project.config.task).target_columns(project.config.data),
            root=Path(scan.root) if scan.root else None,
        )
        scan.columns = dict(main.columns)


def _candidates(sources: list[_Source]) -> Iterator[tuple[_Source, Candidate]]:
    """Every candidate of every source in order, addition ids prefixed add<N>/."""
    n_additions = len(sources) - 1
    for src in sources:
        for candidate in src.scan.candidates:
            if src.number:
                candidate.sample_id = src.prefix + candidate.sample_id
            elif n_additions and addition_of(candidate.sample_id, n_additions) is not None:
                raise DataError(
                    f"The sample id {candidate.sample_id!r} of data.source looks like the id of "
                    "an addition (add<N>/...): the two could not be told apart.",
                    expected="main-source ids that do not start with add<N>/",
                    received=candidate.sample_id,
                    fix="rename the class folder (or id) that starts with add<N>/ in data.source",
                )
            yield src, candidate


def _stream(
    project: Workspace,
    sources: list[_Source],
    reader: Reader,
    *,
    progress: bool,
    schema: _SchemaPass | None = None,
    review: ReviewPlan | None = None,
) -> tuple[ManifestWriter, list[dict[str, Any]]]:
    """Read every candidate into the manifest writer (which also counts what the dataset
    summary needs); return it, not yet committed, and the quarantined candidates."""
    from dlworkflow.progress import progress_bar

    allowed = set(project.config.data.classes or [])
    target_kind = task_of(project.config.task)
    # one class per distinct label: an id column is caught as soon as it shows
    capped = target_kind.single_label
    columns = manifest_schema(project.config.task, sources[0].scan.columns)
    writer = ManifestWriter(project, review.schema(columns) if review is not None else columns)
    quarantined: list[dict[str, Any]] = []
    check = _label_check(allowed, target_kind)
    workers = resolve_workers(project.config.data.workers)
    try:
        with progress_bar(transient=True, disable=not progress) as bar:
            task = bar.add_task("reading samples", total=None)
            outcomes = read_outcomes(
                _candidates(sources), reader, check=check, workers=workers, known=_known(sources)
            )
            with closing(outcomes):  # closed on an error too: the worker pool stops
                for src, candidate, outcome in outcomes:
                    try:
                        if isinstance(outcome, ImageDecodeError):
                            raise outcome
                        row = outcome
                        if review is not None:  # a relabel, or an exclusion (quarantined)
                            review.apply(row)
                        if schema is not None and schema.checker is not None:
                            breach = schema.checker.hard(row)
                            if breach is not None:
                                raise ImageDecodeError(breach)
                        elif schema is not None:
                            schema.builder.observe(row)
                        writer.add(row)
                        src.n_samples += 1
                        if capped and len(writer.labels) > project.config.data.max_classes:
                            raise _too_many_classes(project, sources[0].scan, len(writer.labels))
                    except ImageDecodeError as exc:
                        quarantined.append(
                            {
                                "sample_id": candidate.sample_id,
                                "path": str(candidate.path or ""),
                                "label": candidate.label,
                                "reason": exc.reason,
                            }
                        )
                        src.n_quarantined += 1
                    bar.advance(task)
    except BaseException:
        writer.abort()
        raise
    if writer.count == 0:
        writer.abort()
        raise DataError(
            "No usable samples: every candidate was quarantined or skipped.",
            expected="at least one readable, labelled sample",
            received=f"{len(quarantined)} quarantined, "
            f"{sum(len(s.scan.skipped) for s in sources)} skipped",
            fix="check the quarantine reasons and the source's layout",
        )
    return writer, quarantined


def _label_check(allowed: set[str], target_kind: Any) -> Callable[[Candidate], None]:
    """The check before a sample is read: a label outside data.classes quarantines it."""

    def check(candidate: Candidate) -> None:
        unknown = (
            target_kind.unknown_labels(candidate.label, allowed)
            if allowed and candidate.problem is None and candidate.label
            else []
        )
        if unknown:
            raise ImageDecodeError(
                f"unknown label value {unknown[0]!r} (data.classes allows {sorted(allowed)})"
            )

    return check


def _known(sources: list[_Source]) -> int | None:
    """How many candidates there are at most, when every source says (a remote listing)."""
    hints = [operator.length_hint(s.scan.candidates, -1) for s in sources]
    return None if min(hints) < 0 else sum(hints)


def _too_many_classes(project: Workspace, scan: SourceScan, n: int, *, read: int = 0) -> DataError:
    """More distinct labels than data.max_classes: most likely an id, not a class."""
    data = project.config.data
    if not scan.kind.endswith("table"):
        where = "the class sub-folder names"
    elif data.label_columns and task_of(project.config.task).kind == "multilabel":
        where = f"the label columns {', '.join(repr(c) for c in data.label_columns)}"
    else:
        where = f"the label column {data.label_column!r}"
    found = f"{n:,} distinct labels" + (f" in {read:,} samples" if read else " (and counting)")
    return DataError(
        f"{where[0].upper() + where[1:]} holds more than {data.max_classes:,} classes "
        f"(data.max_classes): this looks like an id column, not a label.",
        expected=f"at most {data.max_classes:,} classes",
        received=found,
        fix="point data.label_column at the column that holds the class (an id belongs in "
        "data.id_column), or raise data.max_classes in dlworkflow.yaml if there really are "
        "that many classes",
        context={"column": where, "n_classes": n, "max_classes": data.max_classes},
    )


def _quarantine_frame(quarantined: list[dict[str, Any]]) -> Any:
    import pandas as pd

    from dlworkflow.store.manifest import QUARANTINE_COLUMNS

    return pd.DataFrame(quarantined, columns=list(QUARANTINE_COLUMNS)).astype("string")


def _dataset_info(
    project: Workspace,
    source: str,
    scan: SourceScan,
    writer: ManifestWriter,
    quarantined: list[dict[str, Any]],
) -> DatasetInfo:
    if len(writer.labels) < 2:
        raise DataError(
            f"Only one target value found ({next(iter(writer.labels))!r}); a model needs at "
            "least two to learn from.",
            expected="two or more labels (or target values)",
            received=f"{writer.count} samples of one target",
            fix="check the folder layout or the label column",
        )
    task = task_of(project.config.task)
    counts = task.target_counts(dict(writer.labels))
    if task.kind != "regression" and len(counts) > project.config.data.max_classes:
        raise _too_many_classes(project, scan, len(counts), read=writer.count)
    channels = size = None
    if writer.sizes:
        gray = sum(n for mode, n in writer.modes.items() if mode in GRAY_MODES)
        channels = 1 if gray >= writer.count / 2 else 3
        size = writer.sizes.most_common(1)[0][0]
    return DatasetInfo(
        version=version_of(writer.version_total),
        source=source,
        n_samples=writer.count,
        n_quarantined=len(quarantined),
        classes=list(counts),
        class_counts=counts,
        channels=channels,
        size=size,
        task=project.config.task,
        features=dict(scan.columns),
    )


def _describe_format(info: DatasetInfo, modality: str) -> str:
    if modality in ("audio", "sequence"):
        return {"audio": "audio clips (read in place)", "sequence": "series"}[modality]
    if info.size:
        return f"images, {info.size[0]}x{info.size[1]}, {info.channels} channel(s) (most common)"
    if info.features:
        return f"{len(info.features)} feature columns"
    return "text"


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: drop row numbers and details after a colon."""
    text = reason.split(": ", 1)[1] if reason.startswith(("line ", "row ")) else reason
    return text.split(":")[0].split(" (")[0]
