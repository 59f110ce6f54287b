"""The tasks `dlw init --task` offers, by name."""

from __future__ import annotations

from dlworkflow.registry import Registry
from dlworkflow.tasks.base import Task
from dlworkflow.tasks.classification import Classification

TASKS: Registry[Task] = Registry("task")

for _task in (
    Classification("image", default_model="small_cnn",
                   description="one class per image (a folder of class sub-folders, or a "
                               "table of paths and labels)"),
    Classification("text", default_model="minilm_classifier",
                   description="one class per text (a table with a text and a label column)"),
    Classification("tabular", default_model="mlp",
                   description="one class per table row (feature columns and a label column)"),
):
    TASKS.add(_task.name, _task)


def task_of(name: str) -> Task:
    """The Task of a `task:` name; UnknownKeyError with the closest names."""
    return TASKS.get(name)


def task_names() -> list[str]:
    return TASKS.names()
