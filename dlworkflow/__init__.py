"""dlworkflow: a deep learning project from problem definition to a monitored model."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Project", "__version__"]


def __getattr__(name: str):
    # Lazy: `import dlworkflow` (and so `dlw --help`) stays fast.
    if name == "Project":
        from dlworkflow.project import Project

        return Project
    raise AttributeError(f"module 'dlworkflow' has no attribute {name!r}")
