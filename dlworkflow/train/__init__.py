"""Step 6, train: the in-memory training loop, MLflow tracking and the `train` step.

    result = train(project)              # == Project.train(), `dlw train`
    result = train(project, epochs=3, progress=False)

The loop itself (`dlworkflow.train.trainer.fit`) knows nothing of projects and is reusable.
"""

from dlworkflow.train.callbacks import Callback, FitState, LambdaCallback
from dlworkflow.train.step import BEST_POINTER, TrainResult, train
from dlworkflow.train.trainer import FitOptions, FitResult, LoopConfig, fit

__all__ = [
    "BEST_POINTER",
    "Callback",
    "FitOptions",
    "FitResult",
    "FitState",
    "LambdaCallback",
    "LoopConfig",
    "TrainResult",
    "fit",
    "train",
]
