"""`dlw tune --apply`: the study's best parameters into dlworkflow.yaml, shown as a diff.

The file is changed through `Project.update_config` (comments kept, the whole result validated
before it is written); the unified diff of the YAML is returned so the person sees exactly what
changed. The next `dlw train` trains with the tuned settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlworkflow.config import yaml_diff
from dlworkflow.errors import TrainError

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace


def apply_best(project: Workspace, best_params: dict[str, Any] | None) -> str:
    """Write `best_params` (dotted keys, config values) into dlworkflow.yaml; the unified diff
    (empty when the file already has them)."""
    if not best_params:
        raise TrainError(
            "There is no best trial to apply: no trial of the study has completed.",
            expected="at least one complete trial",
            received="none",
            fix="run `dlw tune` (more --trials, or a wider tune.space) and then --apply",
        )
    before = project.paths.config.read_text(encoding="utf-8")
    project.update_config(dict(best_params))
    after = project.paths.config.read_text(encoding="utf-8")
    return yaml_diff(before, after, to="tuned")
