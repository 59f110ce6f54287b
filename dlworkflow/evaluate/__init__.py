"""Step 7: evaluate the model on validation any time, and judge it, once, on the sealed test
set."""

from dlworkflow.evaluate.evaluate_step import EvaluationResult, evaluate
from dlworkflow.evaluate.test_step import TestResult, test

__all__ = ["EvaluationResult", "TestResult", "evaluate", "test"]
