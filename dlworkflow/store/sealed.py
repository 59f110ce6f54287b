"""The one reader of the sealed test set. Only the evaluate step may import this module
(an import-linter contract), it runs only inside `dlw test`, and every read is logged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlworkflow.errors import SealedTestSetError
from dlworkflow.store.splits import joined, read_split_info, seal_hash

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project

READER_STEP = "test"


def open_test_set(project: Project, *, purpose: str) -> pd.DataFrame:
    """Test rows with labels. Refused outside the `test` step; the read goes to the ledger."""
    active = project.active_step
    if active is None or active.step != READER_STEP:
        where = f"step {active.step!r}" if active else "outside any step"
        raise SealedTestSetError(
            f"Refused to read the sealed test set from {where}.",
            expected="a read from `dlw test` (Project.test()), the only reader",
            received=where,
            fix="use the validation split for development; run `dlw test` once the model "
            "meets the target on validation",
        )
    info = read_split_info(project)
    rows = joined(project)
    test = rows[rows["split"] == "test"].drop(columns="split").reset_index(drop=True)
    actual = seal_hash(test)
    if actual != info.seal_hash:
        raise SealedTestSetError(
            "The sealed test set no longer matches its seal: its samples or their content "
            "changed since `dlw split`.",
            expected=f"seal {info.seal_hash[:12]}",
            received=f"seal {actual[:12]}",
            fix="restore the original data, or run `dlw split` again and note in the report "
            "that the test set changed",
        )
    project.ledger.log_test_read(run_id=active.run_id, step=active.step, purpose=purpose,
                                 n_samples=len(test), seal_hash=info.seal_hash)
    return test
