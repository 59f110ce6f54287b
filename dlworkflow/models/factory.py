"""Build a registered model from its name and parameters, and describe the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlworkflow.models.base import Classifier
from dlworkflow.models.registry import MODELS, ModelEntry, ModelParamError
from dlworkflow.registry import closest


@dataclass(frozen=True)
class ModelCard:
    """One line of `dlw models`."""

    name: str
    task: str
    description: str
    parameters: int  # trainable parameters of a 1x28x28, 10-class instance
    input: str
    pretrained: bool
    defaults: dict[str, Any]


def create_model(name: str, *, num_classes: int, in_channels: int,
                 image_size: tuple[int, int] | int, **params: Any) -> Classifier:
    """A fresh (randomly initialised) model; `params` are the model's own keyword arguments.

    Seed torch (`torch.manual_seed`) first for a reproducible initialisation.
    """
    entry = MODELS.get(name)
    size = _size(image_size)
    _check_params(entry, params)
    _check_shape(name, num_classes=num_classes, in_channels=in_channels, size=size)
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        model = entry.builder(num_classes=num_classes, in_channels=in_channels,
                              image_size=size, **clean)
    except (TypeError, ValueError) as exc:
        raise ModelParamError(
            f"Cannot build model {name!r}: {exc}",
            expected=f"model.params within {entry.defaults()} (defaults shown)",
            received=repr(params),
            fix="correct `model.params` (or data.image.size) in dlworkflow.yaml",
        ) from None
    model.preprocessing = {
        "channels": in_channels,
        "size": list(size),
        "mean": [0.0] * in_channels,  # identity until the trainer sets the data's statistics
        "std": [1.0] * in_channels,
        **model.preprocessing,  # a pretrained backbone brings the normalisation it needs
    }
    model.dlw_spec = {"name": name, "params": _jsonable(clean), "num_classes": num_classes,
                      "in_channels": in_channels, "image_size": list(size)}
    return model


def list_models() -> list[ModelCard]:
    cards = []
    for name in MODELS.names():
        entry = MODELS.get(name)
        # pretrained=False: the same parameters without loading (or needing) the weights
        skip_weights = {"pretrained": False} if "pretrained" in entry.defaults() else {}
        probe = entry.builder(num_classes=10, in_channels=1, image_size=(28, 28),
                              **skip_weights)
        cards.append(ModelCard(
            name=name, task=entry.task, description=entry.description,
            parameters=sum(p.numel() for p in probe.parameters() if p.requires_grad),
            input=entry.input_note, pretrained=entry.pretrained,
            defaults=_jsonable(entry.defaults()),
        ))
    return cards


def _check_params(entry: ModelEntry, params: dict[str, Any]) -> None:
    valid = entry.defaults()
    unknown = [k for k in params if k not in valid]
    if not unknown:
        return
    near = [m for k in unknown for m in closest(k, list(valid))]
    hint = f"did you mean {', '.join(repr(m) for m in near)}? " if near else ""
    raise ModelParamError(
        f"Model {entry.name!r} has no parameter {', '.join(repr(k) for k in unknown)}.",
        expected=f"parameters of {entry.name}: "
        + (", ".join(f"{k} (default {v!r})" for k, v in valid.items()) or "none"),
        received=", ".join(unknown),
        fix=hint + "remove or rename it under `model.params` in dlworkflow.yaml",
    )


def _check_shape(name: str, *, num_classes: int, in_channels: int,
                 size: tuple[int, int]) -> None:
    if num_classes < 2 or in_channels not in (1, 3) or min(size) < 1:
        raise ModelParamError(
            f"Cannot build model {name!r} for this data.",
            expected="at least 2 classes, 1 or 3 channels, a positive image size",
            received=f"num_classes={num_classes}, in_channels={in_channels}, image_size={size}",
            fix="check the dataset's labels and data.image in dlworkflow.yaml",
        )


def _size(image_size: tuple[int, int] | int | list[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return (image_size, image_size)
    h, w = image_size
    return (int(h), int(w))


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
