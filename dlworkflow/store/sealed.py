"""The one reader of the sealed test set and of the sealed fresh slices (`fresh<N>`, the held-out
share of each `dlw retrain --data` addition). Only the evaluate step may import this module
(an import-linter contract), and `dlw explore --include-test` (explore/step.py, an exception
named in .importlinter); it reads only inside `dlw test` and `dlw retrain` (the ledger steps
"test" and "retrain") and inside an explore run that recorded the seal in its inputs, and
every read is logged in the ledger with its slice's seal and purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlworkflow.errors import SealedTestSetError
from dlworkflow.store.splits import (
    SplitInfo,
    _joined,
    fresh_number,
    read_split_info,
    seal_hash,
)

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace

READER_STEPS = ("test", "retrain")  # the verdict, and champion against challenger
# `dlw explore --include-test` may read the test set (not a fresh slice) too: its ledger run
# records the seal under this input before it starts, so the ledger shows the run read it
EXPLORE_INPUT = "test_set"


def open_test_set(project: Workspace, *, purpose: str, slice: str = "test") -> pd.DataFrame:
    """Labelled rows of the test set, or of fresh slice `slice` ("fresh1", ...), checked
    against the seal made by `dlw split`. Refused outside the `test` and `retrain` steps; the
    read goes to the ledger."""
    active = project.active_step
    if active is None or not _may_read(project, active.step, active.run_id, slice):
        where = f"step {active.step!r}" if active else "outside any step"
        raise SealedTestSetError(
            f"Refused to read the sealed {_what(slice)} from {where}.",
            expected="a read from `dlw test` (Project.test()) or `dlw retrain` "
            "(Project.retrain()), the only readers, or from `dlw explore --include-test`",
            received=where,
            fix="use the validation split for development; run `dlw test` once the model "
            "meets the target on validation",
        )
    info = read_split_info(project)
    expected = _seal_of(info, slice)
    rows = _joined(project)
    chosen = rows[rows["split"] == slice].drop(columns="split").reset_index(drop=True)
    actual = seal_hash(chosen)
    if actual != expected:
        raise SealedTestSetError(
            f"The sealed {_what(slice)} no longer matches its seal: its samples or their "
            "content changed since `dlw split`.",
            expected=f"seal {expected[:12]}",
            received=f"seal {actual[:12]}",
            fix="restore the original data, or run `dlw split` again and note in the report "
            "that the test set changed",
        )
    project.ledger.log_test_read(
        run_id=active.run_id,
        step=active.step,
        purpose=purpose if slice == "test" else f"{purpose} [{slice}]",
        n_samples=len(chosen),
        seal_hash=expected,
    )
    return chosen


def _may_read(project: Workspace, step: str, run_id: int, slice: str) -> bool:
    if step in READER_STEPS:
        return True
    if step != "explore" or slice != "test":
        return False
    record = project.ledger.latest("explore", status=None)  # the running one
    return record is not None and record.id == run_id and bool(record.inputs.get(EXPLORE_INPUT))


def _seal_of(info: SplitInfo, slice: str) -> str:
    if slice == "test":
        return info.seal_hash
    slices = info.slices or {}
    if fresh_number(slice) is None or slice not in slices:
        known = ", ".join(["test", *sorted(slices)])
        raise SealedTestSetError(
            f"There is no sealed slice {slice!r}.",
            expected=f"one of {known}",
            received=repr(slice),
            fix="`dlw split` makes a fresh<N> slice for each data.additions entry; "
            "`dlw retrain --data SOURCE` adds one",
        )
    return str(slices[slice]["seal_hash"])


def _what(slice: str) -> str:
    return "test set" if slice == "test" else f"fresh slice {slice!r}"
