"""The model registry: string keys usable from dlworkflow.yaml (`model.name`), each a builder
with its metadata. Unknown names raise UnknownKeyError with the closest matches."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlworkflow.errors import ConfigError, DlwError
from dlworkflow.registry import Registry

#: Arguments every builder takes; everything else in its signature is a model parameter.
FIXED_ARGS = ("num_classes", "in_channels", "image_size")

Builder = Callable[..., Any]  # (*, num_classes, in_channels, image_size, **params) -> Classifier


class ModelParamError(ConfigError):
    """`model.params` names a parameter the model does not take, or a value it cannot use."""


class ModelFileError(DlwError):
    """A saved model folder is missing, incomplete or does not match its recorded hash."""


class BackboneUnavailableError(DlwError):
    """A pretrained backbone's package (weights or library) is not installed or is damaged."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    description: str
    input_note: str
    task: str = "image-classification"
    pretrained: bool = False

    def defaults(self) -> dict[str, Any]:
        """The model's own parameters with their default values."""
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.name not in FIXED_ARGS and p.kind is inspect.Parameter.KEYWORD_ONLY
        }


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(name: str, *, description: str, input_note: str,
                   task: str = "image-classification",
                   pretrained: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: add a builder to MODELS under `name`."""

    def decorator(builder: Builder) -> Builder:
        MODELS.add(name, ModelEntry(name, builder, description, input_note, task, pretrained))
        return builder

    return decorator
