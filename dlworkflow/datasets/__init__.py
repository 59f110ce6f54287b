"""Built-in real datasets: loaders over data that arrives inside installed packages."""

from dlworkflow.datasets import digits as _digits  # noqa: F401  (registers its datasets)
from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, get_builtin, list_builtins

__all__ = ["BUILTINS", "BuiltinDataset", "get_builtin", "list_builtins"]
