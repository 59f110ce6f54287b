"""Built-in real datasets: loaders over data that arrives inside installed packages."""

from dlworkflow.datasets import breast_cancer as _breast_cancer  # noqa: F401  (registers)
from dlworkflow.datasets import diabetes as _diabetes  # noqa: F401  (registers)
from dlworkflow.datasets import digit_masks as _digit_masks  # noqa: F401  (registers)
from dlworkflow.datasets import digits as _digits  # noqa: F401  (registers its datasets)
from dlworkflow.datasets import elpv as _elpv  # noqa: F401  (registers)
from dlworkflow.datasets import fashion_mnist as _fashion_mnist  # noqa: F401  (registers)
from dlworkflow.datasets import randhie as _randhie  # noqa: F401  (registers)
from dlworkflow.datasets import rotten_tomatoes as _rotten_tomatoes  # noqa: F401  (registers)
from dlworkflow.datasets import sonic_pi as _sonic_pi  # noqa: F401  (registers)
from dlworkflow.datasets import trees as _trees  # noqa: F401  (registers)
from dlworkflow.datasets import ucr as _ucr  # noqa: F401  (registers its datasets)
from dlworkflow.datasets import yeast as _yeast  # noqa: F401  (registers)
from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, get_builtin, list_builtins

__all__ = ["BUILTINS", "BuiltinDataset", "get_builtin", "list_builtins"]
