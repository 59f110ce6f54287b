"""Step 7: evaluate the model and judge it, once, on the sealed test set."""

from dlworkflow.evaluate.test_step import TestResult, test

__all__ = ["TestResult", "test"]
