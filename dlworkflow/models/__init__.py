"""Step 5, define the network: a registry of image classifiers with one contract.

    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=(28, 28))
    logits = model(x)                 # == model.head(model.features(x))
    model.reset_head(5)               # swap the classifier
    model.param_groups()              # {"backbone": [...], "head": [...]}

This is a lower layer: it imports no step package and no project state.
"""

from dlworkflow.models import cnn, mlp  # noqa: F401  (registers the built-in models)
from dlworkflow.models.base import Classifier
from dlworkflow.models.factory import ModelCard, create_model, list_models
from dlworkflow.models.registry import (
    MODELS,
    ModelEntry,
    ModelFileError,
    ModelParamError,
    register_model,
)
from dlworkflow.models.saving import META_FILE, WEIGHTS_FILE, load_trained, save_trained

__all__ = [
    "MODELS",
    "META_FILE",
    "WEIGHTS_FILE",
    "Classifier",
    "ModelCard",
    "ModelEntry",
    "ModelFileError",
    "ModelParamError",
    "create_model",
    "list_models",
    "load_trained",
    "register_model",
    "save_trained",
]
