"""dlworkflow: a deep learning project from problem definition to a monitored model."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["Project", "__version__"]


@lru_cache(maxsize=1)
def _version() -> str:
    """The installed distribution's version (pyproject.toml), read from package metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dlworkflow")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str):
    # Lazy: `import dlworkflow` (and so `dlw --help`) stays fast.
    if name == "Project":
        from dlworkflow.project import Project

        return Project
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'dlworkflow' has no attribute {name!r}")
