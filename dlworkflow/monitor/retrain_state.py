"""The state of one `dlw retrain` (`.dlw/retrain/state.json`), so that a killed retrain continues
where it stopped, and the decision that ends it.

Each finished stage (ingest, split, train, test, export) is recorded with the ledger output it
produced; a rerun with the same --data skips a stage whose output is still the project's
current one (and whose ledger step is not stale), resumes an interrupted training from its
checkpoint, and reuses an export of the same trained weights. A finished retrain keeps a short
summary of itself in the next one's state (`previous`), so that a scheduled retrain with no new
data trains nothing. The file is replaced atomically; nothing in it is needed to read the
project's other records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_write_json, read_json

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

FORMAT = 1
PROMOTED, KEPT_OUT, UNCHANGED = "promoted", "kept out", "unchanged"


class RetrainError(DlwError):
    """A retrain that cannot start or go on as asked."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def state_path(project: Workspace) -> Path:
    return project.paths.state / "retrain" / "state.json"


@dataclass
class RetrainState:
    data: str  # the fresh source, normalised (an absolute path, builtin:NAME or a URI)
    champion: int  # the champion when the retrain began
    warm_start: bool
    created: str = field(default_factory=now)
    addition: int = 0  # its place in data.additions (1-based)
    seal: str | None = None  # the test seal when the retrain began
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    decision: dict[str, Any] | None = None
    finished: str | None = None
    previous: dict[str, Any] | None = None  # summary() of the last finished retrain
    format: int = FORMAT

    def mark(self, project: Workspace, stage: str, record: dict[str, Any]) -> None:
        """Record a finished stage and save at once (a kill after this keeps it)."""
        self.stages[stage] = {**record, "at": now()}
        save_state(project, self)

    def finish(self, project: Workspace, decision: dict[str, Any]) -> None:
        self.decision = decision
        self.finished = now()
        save_state(project, self)

    def summary(self) -> dict[str, Any]:
        """What the next retrain needs to know of this one: the data, champion and settings
        its decision was made with. A retrain that found nothing new hands on the summary of
        the one that did decide."""
        decision = self.decision or {}
        if decision.get("outcome") == UNCHANGED and self.previous:
            return self.previous
        return {
            "data": self.data,
            "champion": self.champion,
            "finished": self.finished,
            "dataset_version": (self.stages.get("ingest") or {}).get("hash"),
            "train_config": (self.stages.get("train") or {}).get("config_hash"),
            "decision_config": decision.get("decision_config"),
            "outcome": decision.get("outcome"),
            "challenger": decision.get("challenger"),
        }


def load_state(project: Workspace) -> RetrainState | None:
    """The last retrain's state; None when there is none (or it cannot be read: a retrain
    then starts afresh, which costs time but never a wrong result)."""
    path = state_path(project)
    if not path.is_file():
        return None
    try:
        raw = read_json(path)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            return None
        return RetrainState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def save_state(project: Workspace, state: RetrainState) -> None:
    atomic_write_json(state_path(project), asdict(state))


@dataclass(frozen=True)
class Decision:
    outcome: str  # promoted | kept out | unchanged
    reason: str

    @property
    def promote(self) -> bool:
        return self.outcome == PROMOTED


def decide(
    *, passed: bool, verdict: str, comparison: dict[str, Any] | None, margin: float
) -> Decision:
    """Promote only a challenger that passed the gate and beats the champion by `margin` on
    the primary metric over the compared rows, in the metric's direction (for a
    lower-is-better metric such as RMSE: champion - challenger >= margin)."""
    if not passed:
        return Decision(KEPT_OUT, f"the challenger failed the gate ({verdict})")
    assert comparison is not None
    c, metric = comparison["compared"], comparison["metric"]
    where = f"{' + '.join(c['slices'])}, {c['n']:,} rows"
    diff = c["difference"]
    if diff is None:
        return Decision(KEPT_OUT, f"{metric} is undefined on the compared rows ({where})")
    lo, hi = c["interval"]
    numbers = (
        f"challenger {metric} {c['challenger']:.4f} vs champion {c['champion']:.4f} on "
        f"{where}: {diff:+.4f}"
        + (
            f" ({comparison['confidence']:.0%} paired CI {lo:+.4f} to {hi:+.4f})"
            if lo is not None and hi is not None
            else ""
        )
    )
    if comparison.get("higher_is_better", True):
        if diff >= margin - 1e-12:
            return Decision(PROMOTED, f"{numbers} >= margin {margin:g}")
        return Decision(KEPT_OUT, f"{numbers} < margin {margin:g}: not better by the margin")
    if -diff >= margin - 1e-12:  # lower is better: the challenger's metric must fall by margin
        return Decision(PROMOTED, f"{numbers} <= -margin {margin:g} (lower is better)")
    return Decision(
        KEPT_OUT, f"{numbers} > -margin {margin:g} (lower is better): not better by the margin"
    )
