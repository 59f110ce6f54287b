"""Step 5, define the network: a registry of image, text and tabular classifiers with one
contract.

    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=(28, 28))
    model = create_model("bilstm", num_classes=2)            # text: token ids in
    model = create_model("mlp", num_classes=2, n_features=30)  # tabular: encoded features in
    logits = model(x)                 # == model.head(model.features(x))
    model.reset_head(5)               # swap the classifier
    model.param_groups()              # {"backbone": [...], "head": [...]}
    models_for("text-classification") # the names that take a project's kind of data

Inputs: images float (N, C, H, W) normalised with `preprocessing` mean/std; text int64 token
ids (N, L) from `tokenize(texts, max_len)` (one WordPiece tokenizer for every text model, pad
id 0); tables float32 (N, F) from `encode_table(rows, preprocessing)`.

Pretrained backbones load offline from installed packages (never from the network):

    image_embedder().embed(pixels)    # EfficientNet-Lite0 ImageNet features, (N, 1280)
    text_embedder().embed(texts)      # all-MiniLM-L6-v2 sentence vectors, (N, 384)

This is a lower layer: it imports no step package and no project state.
"""

from dlworkflow.models import (  # noqa: F401  (registers the built-in models)
    cnn,
    detector,
    efficientnet_lite,
    minilm,
    mlp,
    resnet,
    signal_models,
    text,
    unet,
)
from dlworkflow.models.base import Classifier
from dlworkflow.models.embed import EmbedInputError, ImageEmbedder, image_embedder
from dlworkflow.models.factory import (
    ModelCard,
    ModelTaskError,
    check_task,
    create_model,
    list_models,
    models_for,
)
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
from dlworkflow.preprocess.tabular import (
    TableInputError,
    encode_table,
    feature_names,
    fit_table_encoding,
    n_features,
)
from dlworkflow.preprocess.text import TOKENIZER, VOCAB_SIZE, tokenize

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
    "ModelTaskError",
    "TOKENIZER",
    "TableInputError",
    "TextEmbedder",
    "VOCAB_SIZE",
    "check_task",
    "create_model",
    "encode_table",
    "feature_names",
    "fit_table_encoding",
    "list_models",
    "load_trained",
    "models_for",
    "n_features",
    "register_model",
    "save_trained",
    "tokenize",
    "image_embedder",
    "text_embedder",
]
