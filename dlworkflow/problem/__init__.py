"""Step 1: define the problem and write down what success is."""

from dlworkflow.problem.define import DefineResult, define
from dlworkflow.problem.template import render as render_template

__all__ = ["DefineResult", "define", "render_template"]
