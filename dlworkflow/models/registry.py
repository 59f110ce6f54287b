"""The model registry: string keys usable from dlworkflow.yaml (`model.name`), each a builder
with its metadata. Unknown names raise UnknownKeyError with the closest matches."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlworkflow.errors import ConfigError, DlwError
from dlworkflow.registry import Registry
from dlworkflow.tasks import task_names, task_of

#: The data's input arguments: a builder takes num_classes and those of its modalities;
#: everything else in its signature is a model parameter (`model.params`).
INPUT_ARGS = {
    "image": ("in_channels", "image_size"),
    "text": ("vocab_size",),
    "tabular": ("n_features",),
    "sequence": ("in_channels",),  # the series' channels; float (N, C, T), NaN-padded
    "audio": ("sample_rate",),  # the waveform's rate; float (N, S) mono samples
}
#: What a user's network (models/user.py, InputSpec) can be given; series and audio need a
#: registered model for now.
USER_MODALITIES = ("image", "text", "tabular")
FIXED_ARGS = (
    "num_classes",
    "in_channels",
    "image_size",
    "vocab_size",
    "n_features",
    "sample_rate",
)


#: The target kinds a network with one output per class, label or value serves (the
#: per-sample heads); dense tasks (detection, segmentation) need their own networks.
PER_SAMPLE_KINDS = ("classification", "regression", "multilabel")


def tasks_for(
    modalities: tuple[str, ...], kinds: tuple[str, ...] = PER_SAMPLE_KINDS
) -> tuple[str, ...]:
    """The tasks (dlworkflow.yaml `task:`) whose input is one of `modalities` and whose
    target kind is one of `kinds`."""
    return tuple(
        t for t in task_names() if task_of(t).modality in modalities and task_of(t).kind in kinds
    )


Builder = Callable[..., Any]  # (*, num_classes, <input args>, **params) -> Classifier


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
    modalities: tuple[str, ...] = ("image",)
    pretrained: bool = False
    kinds: tuple[str, ...] = PER_SAMPLE_KINDS  # the target kinds it serves

    @property
    def task(self) -> str:
        """The task(s) it serves, e.g. "image-classification, tabular-classification"."""
        return ", ".join(self.tasks)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tasks_for(self.modalities, self.kinds)

    def defaults(self) -> dict[str, Any]:
        """The model's own parameters with their default values."""
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.name not in FIXED_ARGS and p.kind is inspect.Parameter.KEYWORD_ONLY
        }


class FactoryEntry(ModelEntry):
    """A user's network: `model.name` "package.module:factory" or a plug-in's entry point
    (models/user.py). Takes every kind of input; pretrained when the factory has a
    `pretrained` parameter."""

    def defaults(self) -> dict[str, Any]:
        from dlworkflow.model_refs import load_factory
        from dlworkflow.models.live import is_live
        from dlworkflow.models.user import factory_defaults

        return {} if is_live(self.name) else factory_defaults(load_factory(self.name))


class ModelRegistry(Registry[ModelEntry]):
    """The built-in models, plus user factories resolved on first use: a name of the form
    "package.module:factory", or an entry point of the group `dlworkflow.models`."""

    def get(self, name: str) -> ModelEntry:
        if name not in self._entries:
            from dlworkflow.model_refs import target_of
            from dlworkflow.models import live

            if live.is_live(name):
                return FactoryEntry(
                    name,
                    lambda **kw: live.build(name, **kw),
                    "a network given to project.train(model=...)",
                    "the data's input",
                    USER_MODALITIES,
                    False,
                )
            if target_of(name) is not None:
                return self._factory_entry(name)
        return super().get(name)

    def names(self) -> list[str]:
        from dlworkflow.model_refs import entry_points

        return sorted({*self._entries, *entry_points()})

    def _factory_entry(self, name: str) -> ModelEntry:
        from dlworkflow.model_refs import load_factory, target_of
        from dlworkflow.models.user import build_user_network

        factory = load_factory(name)  # FactoryError now, not at the first build
        pretrained = "pretrained" in inspect.signature(factory).parameters
        return FactoryEntry(
            name,
            lambda **kw: build_user_network(name, **kw),
            (inspect.getdoc(factory) or f"user network {target_of(name)}").splitlines()[0],
            "the data's input, as input_spec describes it",
            USER_MODALITIES,
            pretrained,
        )


MODELS: ModelRegistry = ModelRegistry("model")


def register_model(
    name: str,
    *,
    description: str,
    input_note: str,
    modalities: tuple[str, ...] = ("image",),
    pretrained: bool = False,
    kinds: tuple[str, ...] = PER_SAMPLE_KINDS,
) -> Callable[[Builder], Builder]:
    """Decorator: add a builder to MODELS under `name`; `modalities` are the inputs it takes
    ("image", "text", "tabular", "sequence", "audio"), each with its INPUT_ARGS in the
    builder's signature; `kinds` the target kinds it serves (a detector: ("detection",))."""
    unknown = [m for m in modalities if m not in INPUT_ARGS]
    if unknown or not modalities:
        raise ValueError(f"modalities must be among {list(INPUT_ARGS)}, got {modalities}")

    def decorator(builder: Builder) -> Builder:
        MODELS.add(
            name,
            ModelEntry(
                name, builder, description, input_note, tuple(modalities), pretrained, kinds
            ),
        )
        return builder

    return decorator
