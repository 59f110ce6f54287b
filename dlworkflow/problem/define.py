"""`dlw define`: set and validate the problem spec, and record it before any data is touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import sha256_json
from dlworkflow.results import StepResult
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

# flag name -> dotted key in dlworkflow.yaml
FIELDS = {
    "objective": "problem.objective",
    "metric": "problem.primary_metric",
    "target": "problem.target",
    "max_latency_ms": "problem.constraints.max_latency_ms",
    "max_model_size_mb": "problem.constraints.max_model_size_mb",
    "constituencies": "problem.constituencies",
    "assumptions": "problem.assumptions",
    "data_sensitivity": "problem.data_sensitivity",
}


@dataclass
class DefineResult(StepResult):
    criterion: str
    objective: str | None
    constraints: dict[str, Any]
    data_sensitivity: str
    warnings: list[str] = field(default_factory=list)

    def title(self) -> str:
        return "Step 1: problem and success criterion"

    def rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("success", self.criterion),
            ("objective", self.objective or "(not written)"),
            ("constraints", ", ".join(f"{k}={v}" for k, v in self.constraints.items()) or "none"),
            ("data sensitivity", self.data_sensitivity),
        ]
        rows += [("warning", w) for w in self.warnings]
        return rows


def define(project: Workspace, **flags: Any) -> DefineResult:
    """Apply the given fields (None means unchanged), validate, and record the problem spec."""
    unknown = set(flags) - set(FIELDS)
    if unknown:
        raise TypeError(f"define() got unknown fields {sorted(unknown)}; valid: {sorted(FIELDS)}")
    updates = {FIELDS[k]: v for k, v in flags.items() if v is not None}
    if updates:
        project.update_config(updates)
    problem = project.config.problem
    metric, target = problem.require_success_criterion(needed_by="`dlw define`")
    spec = task_of(project.config.task).check_criterion(metric, target)
    criterion = spec.criterion(target)
    with project.step("define") as run:
        dumped = problem.model_dump(mode="json")
        run.outputs = {"hash": sha256_json(dumped)}
        run.summary = {"headline": criterion, "problem": dumped}
    constraints = {k: v for k, v in problem.constraints.model_dump().items() if v is not None}
    return DefineResult(
        criterion=f"{criterion} on the sealed test set",
        objective=problem.objective,
        constraints=constraints,
        data_sensitivity=problem.data_sensitivity,
        warnings=_warnings(problem, perfect=spec.bounds[1] if spec.higher_is_better else None),
    )


def _warnings(problem: Any, *, perfect: float | None) -> list[str]:
    """perfect: the metric's best possible value, when higher is better (1 for accuracy)."""
    warnings = []
    if not problem.objective:
        warnings.append("no objective in plain words: set problem.objective (or --objective)")
    if not problem.constituencies:
        warnings.append("no constituencies: who decides on and is affected by the result?")
    if problem.target is not None and perfect is not None and problem.target >= perfect - 1e-3:
        warnings.append(f"target {problem.target} leaves no room for label noise; is it real?")
    return warnings
