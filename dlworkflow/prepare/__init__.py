"""Step 4: prepare the data: a deterministic, stratified, grouped split with a sealed test set."""

from dlworkflow.prepare.split import SplitResult, split

__all__ = ["SplitResult", "split"]
