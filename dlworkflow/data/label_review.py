"""Label review: keep, relabel or exclude a label-issue candidate (`dlw review-label`, the
Labels page of `dlw ui`; both call Project.review_label).

A decision is one row appended to labels/review.csv in the project (sample_id, decision,
label, given, suggested, decided_at in ISO 8601 UTC); the file is rewritten atomically under a
lock, so earlier rows are never lost, and the last row of a sample is its decision. Each
decision is also a ledger run of the step "label_review". Nothing else changes until the
next `dlw ingest` (data/review_apply.py), which applies the decisions as a new dataset version
and never touches the original files.

The candidates are the ones `dlw explore` wrote to reports/explore/records/label_issues.csv
(sample_id, given, suggested, confidence, given_probability; the most confident first).
Samples of the sealed test set (and of retrain's fresh slices) are refused: a decision on them
would change the test set after it was sealed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DataError, SealedTestSetError
from dlworkflow.fileio import atomic_write_text
from dlworkflow.results import StepResult

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

REVIEW_FILE = Path("labels") / "review.csv"  # in the project folder
COLUMNS = ("sample_id", "decision", "label", "given", "suggested", "decided_at")
DECISIONS = ("keep", "relabel", "exclude")
#: explore's record of the candidates (dlworkflow/explore/records.py), under reports/
CANDIDATES_FILE = Path("explore") / "records" / "label_issues.csv"
CANDIDATE_COLUMNS = ("sample_id", "given", "suggested", "confidence", "given_probability")
EXCLUDED_REASON = "excluded in label review"  # + the decision's date: the quarantine reason
_LOCK = Path("locks") / "label_review.lock"  # under .dlw/


@dataclass(frozen=True)
class Decision:
    sample_id: str
    decision: str
    label: str  # the new label of a relabel, else ""
    given: str
    suggested: str
    decided_at: str
    row: int = 0  # its row of labels/review.csv (1: the first decision); not written


def review_path(project: Workspace) -> Path:
    return project.root / REVIEW_FILE


def candidates_path(project: Workspace) -> Path:
    return project.paths.reports / CANDIDATES_FILE


def read_decisions(project: Workspace) -> dict[str, Decision]:
    """The decision of every reviewed sample (its last row), in file order."""
    path = review_path(project)
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        return _parse(handle.read(), path)


def _parse(text: str, path: Path) -> dict[str, Decision]:
    """read_decisions of the text `text` of labels/review.csv (at `path`)."""
    out: dict[str, Decision] = {}
    for number, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
        if row.get("decision") not in DECISIONS or not row.get("sample_id"):
            raise DataError(
                f"{REVIEW_FILE} line {number} is not a label-review decision.",
                expected=f"columns {', '.join(COLUMNS)}; decision one of {', '.join(DECISIONS)}",
                received=repr(dict(row))[:200],
                fix=f"correct or delete that line of {path} (it is only ever appended to)",
            )
        decision = Decision(**{c: row.get(c) or "" for c in COLUMNS}, row=number - 1)
        out.pop(decision.sample_id, None)  # the last decision wins, and moves to the end
        out[decision.sample_id] = decision
    return out


def read_candidates(project: Workspace) -> list[dict[str, Any]]:
    """The label-issue candidates of the last `dlw explore`, the most confident first ([]
    when explore wrote none)."""
    path = candidates_path(project)
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(CANDIDATE_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(
                f"{path.name} does not have the columns of explore's label-issue record.",
                expected=", ".join(CANDIDATE_COLUMNS),
                received=", ".join(reader.fieldnames or ()),
                fix="run `dlw explore` again",
            )
        return [
            {
                "sample_id": row["sample_id"],
                "given": row["given"],
                "suggested": row["suggested"],
                "confidence": _number(row["confidence"]),
                "given_probability": _number(row["given_probability"]),
            }
            for row in reader
        ]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


@dataclass
class LabelReviewResult(StepResult):
    """One decision, as recorded (labels/review.csv and the ledger)."""

    sample_id: str
    decision: str
    label: str | None
    given: str
    suggested: str
    decided_at: str
    file: str
    run_id: int
    replaced: str | None = None  # the sample's earlier decision, if any

    def title(self) -> str:
        return "Label review: decision recorded"

    def rows(self) -> list[tuple[str, Any]]:
        what = {
            "keep": f"keep {self.given!r}",
            "relabel": f"relabel {self.given!r} -> {self.label!r}",
            "exclude": f"exclude (given {self.given!r})",
        }[self.decision]
        rows: list[tuple[str, Any]] = [("sample", self.sample_id), ("decision", what)]
        if self.suggested:
            rows.append(("suggested", self.suggested))
        if self.replaced:
            rows.append(("replaces", self.replaced))
        rows += [
            ("decided at", self.decided_at),
            ("recorded in", f"{self.file} and the ledger (run {self.run_id})"),
            ("applied", "at the next `dlw ingest` (a new dataset version)"),
        ]
        return rows


def review_label(
    project: Workspace, sample_id: str, decision: str, label: str | None = None
) -> LabelReviewResult:
    """Record one decision on sample `sample_id`: keep, relabel (to `label`, one of the
    project's classes) or exclude."""
    decision = str(decision).strip().lower()
    sample_id = str(sample_id)
    if decision not in DECISIONS:
        raise DataError(
            f"Unknown label-review decision {decision!r}.",
            expected=", ".join(DECISIONS),
            received=repr(decision),
            fix="keep the given label, relabel with --label CLASS, or exclude the sample",
        )
    label = (label or "").strip() or None
    given, classes = _check_sample(project, sample_id)
    if decision == "relabel":
        if label is None or label not in classes:
            raise DataError(
                f"A relabel of {sample_id!r} needs a new label that is one of the project's "
                "classes.",
                expected="one of " + ", ".join(classes[:30]) + (" ..." if classes[30:] else ""),
                received=repr(label) if label else "no label",
                fix="pass --label CLASS (`dlw review-label --list` shows the suggested one)",
            )
    elif label is not None:
        raise DataError(
            f"Only a relabel takes a label; {decision!r} does not.",
            expected="--label with relabel only",
            received=f"{decision} --label {label}",
            fix=f"drop --label, or use `relabel --label {label}`",
        )
    suggested = next(
        (c["suggested"] for c in read_candidates(project) if c["sample_id"] == sample_id), ""
    )
    with project.step("label_review", inputs={"ingest": project.upstream_hash("ingest")}) as run:
        record = Decision(
            sample_id=sample_id,
            decision=decision,
            label=label or "",
            given=given,
            suggested=suggested,
            decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        earlier = _append(project, record)
        run.outputs = {"file": str(review_path(project))}
        run.summary = {
            "headline": f"{decision} {sample_id}"
            + (f": {given} -> {label}" if decision == "relabel" else ""),
            "sample": sample_id,
            "decision": decision,
            "label": label,
            "given": given,
            "suggested": suggested or None,
            "replaces": earlier.decision if earlier else None,
        }
    return LabelReviewResult(
        sample_id=sample_id,
        decision=decision,
        label=label,
        given=given,
        suggested=suggested,
        decided_at=record.decided_at,
        file=str(review_path(project)),
        run_id=run.run_id,
        replaced=_describe(earlier) if earlier else None,
    )


def _describe(d: Decision) -> str:
    return f"{d.decision}{' ' + d.label if d.label else ''} of {d.decided_at}"


def _check_sample(project: Workspace, sample_id: str) -> tuple[str, list[str]]:
    """The sample's given label (before any review) and the project's classes; DataError for
    an id that is neither in the manifest nor excluded by an earlier review, and
    SealedTestSetError for a sample of the sealed test set or a fresh slice."""
    import pandas as pd

    from dlworkflow.store.manifest import read_dataset_info, read_quarantine
    from dlworkflow.tasks import task_of

    task = task_of(project.config.task)
    if not task.single_label or task.kind == "regression":
        raise DataError(
            f"Label review is for single-label classification; this project's task is "
            f"{project.config.task!r}.",
            expected="a classification task (one class per sample)",
            received=project.config.task,
            fix="correct the labels in the source data, then run `dlw ingest`",
        )
    info = read_dataset_info(project)  # StepOrderError before the first ingest
    found = _manifest_row(project, sample_id)
    if len(found):
        row = found.iloc[0]
        given = row.get("label_given")
        given = str(row["label"] if given is None or pd.isna(given) else given)
    else:
        quarantine = read_quarantine(project)
        q = quarantine[
            (quarantine["sample_id"].astype(str) == sample_id)
            & quarantine["reason"].astype(str).str.startswith(EXCLUDED_REASON)
        ]
        if q.empty:
            raise DataError(
                f"No sample {sample_id!r} in the dataset.",
                expected="a sample id of the manifest (the label-issue candidates are listed "
                "by `dlw review-label --list`)",
                received=repr(sample_id),
                fix="copy the id from `dlw review-label --list` or the Labels page of `dlw ui`",
            )
        given = str(q.iloc[0]["label"])
    split = sealed_splits(project, {sample_id}).get(sample_id)
    if split is not None:
        raise SealedTestSetError(
            f"{sample_id!r} is in the sealed {split} set: its label cannot be reviewed.",
            expected="a sample of the train or validation split",
            received=f"a sample of split {split!r}",
            fix="review train and validation samples only; the test set stays as it was "
            "sealed (correct a test label in the source and run `dlw split` anew, noting "
            "in the report that the test set changed)",
        )
    classes = [str(c) for c in (project.config.data.classes or info.classes)]
    return given, classes


def _manifest_row(project: Workspace, sample_id: str) -> Any:
    """The sample's manifest row (sample_id, label and label_given when present): only those
    columns of only that row are read."""
    import pandas as pd
    import pyarrow.parquet as pq

    path = project.paths.manifest
    columns = [c for c in ("sample_id", "label", "label_given") if c in pq.read_schema(path).names]
    return pd.read_parquet(path, columns=columns, filters=[("sample_id", "==", sample_id)])


def _append(project: Workspace, record: Decision) -> Decision | None:
    """Append `record` to labels/review.csv (rewritten atomically, under a lock: two
    decisions at once both stay); the sample's earlier decision, if any."""
    import fcntl

    lock = project.paths.state / _LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
        path = review_path(project)
        before = path.read_text(encoding="utf-8") if path.is_file() else ""
        earlier = _parse(before, path).get(record.sample_id)
        if before and not before.endswith("\n"):
            before += "\n"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if not before:
            writer.writerow(COLUMNS)
        writer.writerow([getattr(record, c) for c in COLUMNS])
        atomic_write_text(path, before + out.getvalue())
    return earlier


@dataclass
class CandidateView:
    sample_id: str
    given: str
    suggested: str
    confidence: float
    given_probability: float
    decision: str | None = None  # the last decision, None: unreviewed
    label: str | None = None  # a relabel's new label
    decided_at: str | None = None
    applied: bool = False  # an ingest has run since the decision


@dataclass
class LabelCandidates(StepResult):
    """The label-issue candidates of the last `dlw explore` and their review state."""

    candidates: list[CandidateView]
    n_unreviewed: int
    n_decisions: int  # every reviewed sample, candidate or not
    n_pending: int  # decisions made after the last ingest: the next ingest applies them
    classes: list[str] = field(default_factory=list)
    file: str = ""
    source: str = ""  # the candidates' file ("" when explore wrote none)
    n_sealed: int = 0  # candidates the split has since sealed (test, fresh): not listed

    def title(self) -> str:
        return "Label review: candidates"

    def rows(self) -> list[tuple[str, Any]]:
        if not self.source:
            return [("candidates", "none recorded: run `dlw explore`")]
        rows: list[tuple[str, Any]] = [
            (
                "candidates",
                f"{len(self.candidates)}, {self.n_unreviewed} unreviewed; "
                f"{self.n_pending} decision(s) wait for the next `dlw ingest`",
            )
        ]
        for c in self.candidates[:50]:
            state = c.decision or "unreviewed"
            if c.decision == "relabel":
                state += f" -> {c.label}"
            if c.decision:
                state += " (applied)" if c.applied else " (next ingest)"
            rows.append(
                (
                    c.sample_id,
                    f"given {c.given}, suggested {c.suggested} ({c.confidence:.2f}): {state}",
                )
            )
        if len(self.candidates) > 50:
            rows.append(("...", f"{len(self.candidates) - 50} more (`--json` lists all)"))
        return rows


def label_candidates(project: Workspace) -> LabelCandidates:
    """Every candidate with its decision; how many are unreviewed and how many decisions the
    next ingest applies."""
    from dlworkflow.store.manifest import read_dataset_info

    decisions = read_decisions(project)
    applied_rows = applied_until(project)
    found = read_candidates(project)
    sealed = sealed_ids(project, {c["sample_id"] for c in found}) if found else set()
    views = []
    for c in found:
        if c["sample_id"] in sealed:  # an explore from before the split: not reviewable
            continue
        d = decisions.get(c["sample_id"])
        views.append(
            CandidateView(
                **c,
                decision=d.decision if d else None,
                label=(d.label or None) if d else None,
                decided_at=d.decided_at if d else None,
                applied=bool(d and d.row <= applied_rows),
            )
        )
    pending = sum(1 for d in decisions.values() if d.row > applied_rows)
    classes: list[str] = []
    if project.paths.manifest.is_file():
        named = project.config.data.classes or read_dataset_info(project).classes
        classes = [str(c) for c in named]
    return LabelCandidates(
        candidates=views,
        n_unreviewed=sum(1 for v in views if v.decision is None),
        n_decisions=len(decisions),
        n_pending=pending,
        classes=classes,
        file=str(review_path(project)),
        source=str(candidates_path(project)) if candidates_path(project).is_file() else "",
        n_sealed=len(sealed),
    )


def sealed_ids(project: Workspace, ids: set[str]) -> set[str]:
    """Which of `ids` the current split seals (membership only)."""
    return set(sealed_splits(project, ids))


def sealed_splits(project: Workspace, ids: set[str]) -> dict[str, str]:
    """The sealed split ("test", "fresh<N>") of each of `ids` the current split seals."""
    from dlworkflow.store.splits import is_sealed, read_assignments

    if not (project.paths.split_dir / "split.json").is_file():
        return {}
    table = read_assignments(project)
    table = table[table["sample_id"].astype(str).isin(ids)]
    pairs = zip(table["sample_id"].astype(str), table["split"].astype(str))
    return {i: split for i, split in pairs if is_sealed(split)}


def applied_until(project: Workspace) -> int:
    """How many rows of labels/review.csv the last `dlw ingest` read (the file is only ever
    appended to, so the rows after them are the decisions the next ingest applies)."""
    last = project.ledger.latest("ingest")
    review = (last.summary.get("label_review") or {}) if last is not None else {}
    return int(review.get("rows") or 0)
