"""The one reader of the sealed test set and of the sealed fresh slices (`fresh<N>`, the held-out
share of each `dlw retrain --data` addition). Only the evaluate step may import this module
(an import-linter contract); it reads only inside `dlw test` and `dlw retrain` (the ledger
steps "test" and "retrain"), and every read is logged in the ledger with its slice's seal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlworkflow.errors import SealedTestSetError
from dlworkflow.store.splits import SplitInfo, fresh_number, joined, read_split_info, seal_hash

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace

READER_STEPS = ("test", "retrain")  # the verdict, and champion against challenger


def open_test_set(project: Workspace, *, purpose: str, slice: str = "test") -> pd.DataFrame:
    """Labelled rows of the test set, or of fresh slice `slice` ("fresh1", ...), checked
    against the seal made by `dlw split`. Refused outside the `test` and `retrain` steps; the
    read goes to the ledger."""
    active = project.active_step
    if active is None or active.step not in READER_STEPS:
        where = f"step {active.step!r}" if active else "outside any step"
        raise SealedTestSetError(
            f"Refused to read the sealed {_what(slice)} from {where}.",
            expected="a read from `dlw test` (Project.test()) or `dlw retrain` "
            "(Project.retrain()), the only readers",
            received=where,
            fix="use the validation split for development; run `dlw test` once the model "
            "meets the target on validation",
        )
    info = read_split_info(project)
    expected = _seal_of(info, slice)
    rows = joined(project)
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
