"""Step 5, define the network: a registry of image classifiers with one contract.

    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=(28, 28))
    logits = model(x)                 # == model.head(model.features(x))
    model.reset_head(5)               # swap the classifier
    model.param_groups()              # {"backbone": [...], "head": [...]}

Pretrained backbones load offline from installed packages (never from the network):

    image_embedder().embed(pixels)    # EfficientNet-Lite0 ImageNet features, (N, 1280)
    text_embedder().embed(texts)      # all-MiniLM-L6-v2 sentence vectors, (N, 384)

This is a lower layer: it imports no step package and no project state.
"""

from dlworkflow.models import (  # noqa: F401  (registers the built-in models)
    cnn,
    efficientnet_lite,
    mlp,
)
from dlworkflow.models.base import Classifier
from dlworkflow.models.embed import EmbedInputError, ImageEmbedder, image_embedder
from dlworkflow.models.factory import ModelCard, create_model, list_models
from dlworkflow.models.registry import (
    MODELS,
    BackboneUnavailableError,
    ModelEntry,
    ModelFileError,
    ModelParamError,
    register_model,
)
from dlworkflow.models.saving import META_FILE, WEIGHTS_FILE, load_trained, save_trained
from dlworkflow.models.text_encoder import TextEmbedder, text_embedder

__all__ = [
    "MODELS",
    "META_FILE",
    "WEIGHTS_FILE",
    "BackboneUnavailableError",
    "Classifier",
    "EmbedInputError",
    "ImageEmbedder",
    "ModelCard",
    "ModelEntry",
    "ModelFileError",
    "ModelParamError",
    "TextEmbedder",
    "create_model",
    "list_models",
    "load_trained",
    "register_model",
    "save_trained",
    "image_embedder",
    "text_embedder",
]
