"""What `dlw ingest` does with labels/review.csv (data/label_review.py): each manifest row of a
reviewed sample gets its decision as the rows stream to the manifest.

- relabel: the row's label becomes the decision's; the label the source gives stays beside it
  in the column `label_given` (present in the manifest whenever a relabel was applied);
- exclude: the sample is quarantined with the reason "excluded in label review <date>", so
  that, like every quarantined sample, no split, training or evaluation uses it; the
  quarantine keeps its id, path and given label;
- keep: nothing changes (the decision is counted).

The label and the membership of a sample are part of the dataset version, so a relabel or an
exclusion gives a new version. The original files are only read, as in every ingest. A
decision on a sample that is now in the sealed test set (or a fresh slice) is not applied: the
sealed set stays as it was sealed. The ingest records the counts in the ledger, with how many
rows of the file it read (the decisions after them are the ones the next ingest applies).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.data.label_review import Decision, read_decisions, review_path, sealed_ids
from dlworkflow.store import ImageDecodeError

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

GIVEN_COLUMN = "label_given"


@dataclass
class ReviewPlan:
    decisions: dict[str, Decision]
    file: str = ""  # labels/review.csv of the project
    sealed: set[str] = field(default_factory=set)  # reviewed ids that are sealed now
    counts: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, project: Workspace) -> ReviewPlan:
        decisions = read_decisions(project)
        sealed = sealed_ids(project, set(decisions)) if decisions else set()
        return cls(decisions, str(review_path(project)), sealed)

    @property
    def relabels(self) -> bool:
        return any(d.decision == "relabel" for d in self.decisions.values())

    def schema(self, schema: Any) -> Any:
        """The manifest's Parquet schema, with `label_given` when a relabel may apply."""
        import pyarrow as pa

        if not self.relabels or GIVEN_COLUMN in schema.names:
            return schema
        return schema.append(pa.field(GIVEN_COLUMN, pa.string()))

    def apply(self, row: dict[str, Any]) -> None:
        """Give `row` its decision (in place); ImageDecodeError (quarantined) on an exclusion."""
        decision = self.decisions.get(str(row["sample_id"]))
        if decision is None:
            return
        self.seen.add(decision.sample_id)
        if decision.sample_id in self.sealed:
            self.counts["sealed"] += 1
            return
        if decision.decision == "exclude":
            self.counts["excluded"] += 1
            # label_review.EXCLUDED_REASON and the decision's date (written out for the
            # quarantine reference of the docs)
            date = decision.decided_at[:10]
            raise ImageDecodeError(f"excluded in label review {date}")
        if decision.decision == "relabel" and decision.label != str(row["label"]):
            row[GIVEN_COLUMN] = row["label"]
            row["label"] = decision.label
            self.counts["relabelled"] += 1
        else:
            self.counts["kept"] += 1

    def record(self) -> dict[str, Any]:
        """For the ledger and the result: what the review changed in this ingest."""
        return {
            "file": self.file if self.decisions else None,
            "rows": max((d.row for d in self.decisions.values()), default=0),
            "decisions": len(self.decisions),
            "applied": self.counts["relabelled"] + self.counts["excluded"] + self.counts["kept"],
            "relabelled": self.counts["relabelled"],
            "excluded": self.counts["excluded"],
            "kept": self.counts["kept"],
            "not_applied_sealed": self.counts["sealed"],
            "not_found": len(set(self.decisions) - self.seen),
        }

    def describe(self) -> str:
        r = self.record()
        if not r["decisions"]:
            return ""
        text = (
            f"{r['applied']} of {r['decisions']} decision(s) applied: {r['relabelled']} "
            f"relabelled, {r['excluded']} excluded, {r['kept']} kept"
        )
        if r["not_applied_sealed"]:
            text += f"; {r['not_applied_sealed']} not applied (sealed test samples)"
        if r["not_found"]:
            text += f"; {r['not_found']} sample(s) not in the source"
        return text
