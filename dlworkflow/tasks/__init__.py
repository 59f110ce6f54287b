"""The task interface: what is specific to one kind of prediction, behind one protocol.

    task = task_of(project.config.task)     # "image-classification" -> a Task
    task.modality                           # "image" | "text" | "tabular": how samples are read
    task.parse_target(raw, column="label")  # a target value, or TargetError (quarantined)
    task.strata(targets)                    # what the split stratifies on
    task.metric("accuracy").higher_is_better

A task is a modality (the kind of input, which decides how samples are read, explored and fed
to the network) and a target kind (what is predicted, which decides how targets are parsed,
stratified and judged). Steps ask the task; no step compares task names (a test checks that).
One module per target kind; `registry.py` names the tasks `dlw init --task` offers.

This is a core layer: it imports no step, no model and no torch.
"""

from dlworkflow.tasks.base import MODALITIES, MetricSpec, TargetError, Task
from dlworkflow.tasks.registry import TASKS, task_names, task_of

__all__ = ["MODALITIES", "TASKS", "MetricSpec", "TargetError", "Task", "task_names", "task_of"]
