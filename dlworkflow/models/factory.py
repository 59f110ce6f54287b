"""Build a registered model from its name and parameters, and describe the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dlworkflow.models.base import Classifier
from dlworkflow.models.registry import (
    INPUT_ARGS,
    MODELS,
    ModelEntry,
    ModelParamError,
)
from dlworkflow.preprocess.text import VOCAB_SIZE
from dlworkflow.registry import closest
from dlworkflow.tasks import MODALITIES, task_names, task_of


@dataclass(frozen=True)
class ModelCard:
    """One line of `dlw models`."""

    name: str
    task: str  # the task(s) it serves, comma-separated
    description: str
    parameters: int  # trainable parameters of a 10-class instance (images: 1x28x28)
    input: str
    pretrained: bool
    defaults: dict[str, Any]
    modalities: tuple[str, ...] = ("image",)


class ModelTaskError(ModelParamError):
    """The configured model does not take the project's kind of data (task)."""


#: The instance `dlw models` counts parameters on, per modality.
PROBE_INPUTS: dict[str, dict[str, Any]] = {
    "image": {"in_channels": 1, "image_size": (28, 28)},
    "text": {"vocab_size": VOCAB_SIZE},
    "tabular": {"n_features": 30},
    "sequence": {"in_channels": 1},  # a univariate series
    "audio": {"sample_rate": 16000},
}


def create_model(
    name: str,
    *,
    num_classes: int,
    task: str | None = None,
    in_channels: int | None = None,
    image_size: tuple[int, int] | int | None = None,
    n_features: int | None = None,
    vocab_size: int | None = None,
    sample_rate: int | None = None,
    **params: Any,
) -> Classifier:
    """A fresh (randomly initialised, or pretrained) model; `params` are its own keyword
    arguments. Give the data's input: images `in_channels` + `image_size`, tabular
    `n_features`, series `in_channels` (their channels), audio `sample_rate` (of the
    waveforms); text needs nothing (`vocab_size` defaults to the shared tokenizer's).
    `task` (the project's) checks that the model takes that kind of data.

    Seed torch (`torch.manual_seed`) first for a reproducible initialisation.
    """
    entry = MODELS.get(name)
    given = {
        k: v
        for k, v in {
            "in_channels": in_channels,
            "image_size": image_size,
            "n_features": n_features,
            "vocab_size": vocab_size,
            "sample_rate": sample_rate,
        }.items()
        if v is not None
    }
    modality = _modality(entry, task, given)
    inputs = _inputs(entry, modality, given, num_classes)
    _check_params(entry, params)
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        model = entry.builder(num_classes=num_classes, **inputs, **clean)
    except (TypeError, ValueError) as exc:
        raise ModelParamError(
            f"Cannot build model {name!r}: {exc}",
            expected=f"model.params within {entry.defaults()} (defaults shown)",
            received=repr(params),
            fix="correct `model.params` (or data.image.size) in dlworkflow.yaml",
        ) from None
    model.preprocessing = {**_default_preprocessing(modality, inputs), **model.preprocessing}
    model.dlw_spec = {
        "name": name,
        "params": _jsonable(clean),
        "num_classes": num_classes,
        "modality": modality,
        **_jsonable(inputs),
    }
    return model


def models_for(task: str) -> list[str]:
    """Names of the registered models that serve `task` (e.g. "text-classification")."""
    return [n for n in MODELS.names() if task in MODELS.get(n).tasks]


def _models_taking(modality: str) -> list[str]:
    return [n for n in MODELS.names() if modality in MODELS.get(n).modalities]


def check_task(name: str, task: str) -> None:
    """Raise ModelTaskError (naming the models that fit) unless `name` serves `task`."""
    entry = MODELS.get(name)
    if task in entry.tasks:
        return
    fits = models_for(task)
    raise ModelTaskError(
        f"Model {name!r} takes {' or '.join(entry.modalities)} input, but this project's task "
        f"is {task}.",
        expected=f"a model for {task}: {', '.join(fits) or 'none registered'}",
        received=f"model.name: {name} ({entry.task})",
        fix=f"set `model.name` in dlworkflow.yaml to one of {', '.join(fits)} "
        "(`dlw models` lists them)",
    )


def list_models() -> list[ModelCard]:
    cards = []
    for name in MODELS.names():
        entry = MODELS.get(name)
        # pretrained=False: the same parameters without loading (or needing) the weights
        parameters = _probe_parameters(entry)
        cards.append(
            ModelCard(
                name=name,
                task=entry.task,
                description=entry.description,
                parameters=parameters,
                input=entry.input_note,
                pretrained=entry.pretrained,
                defaults=_jsonable(entry.defaults()),
                modalities=entry.modalities,
            )
        )
    return cards


def _probe_parameters(entry: ModelEntry) -> int:
    """Trainable parameters of a 10-class instance on PROBE_INPUTS: built on the meta device
    (shapes only), else on the CPU (a builder that computes buffers with numpy, e.g. the
    audio front end's mel filter bank); 0 when neither builds."""
    # pretrained=False: the same parameters without loading (or needing) the weights
    skip_weights = {"pretrained": False} if "pretrained" in entry.defaults() else {}
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):  # meta: nothing allocated or initialised
                probe = entry.builder(
                    num_classes=10, **PROBE_INPUTS[entry.modalities[0]], **skip_weights
                )
            return sum(p.numel() for p in probe.parameters() if p.requires_grad)
        except Exception:  # noqa: BLE001, S112  (a plug-in's factory that needs other inputs)
            continue
    return 0


def _modality(entry: ModelEntry, task: str | None, given: dict[str, Any]) -> str:
    """The kind of input this instance takes: from the task, else from the inputs given."""
    if task is not None:
        if task not in task_names():
            raise ModelParamError(
                f"Unknown task {task!r}.",
                expected=", ".join(task_names()),
                received=repr(task),
                fix="use one of the expected tasks",
            )
        check_task(entry.name, task)
        return task_of(task).modality
    if len(entry.modalities) == 1:
        return entry.modalities[0]
    matching = [m for m in entry.modalities if set(INPUT_ARGS[m]) & set(given)]
    if len(matching) != 1:
        raise ModelParamError(
            f"Model {entry.name!r} takes {' or '.join(entry.modalities)} input; which one is "
            "meant here is unclear.",
            expected=" or ".join(f"{m}: {', '.join(INPUT_ARGS[m])}" for m in entry.modalities),
            received=", ".join(given) or "no input arguments",
            fix="pass the input arguments of one modality, or task=...",
        )
    return matching[0]


def _inputs(
    entry: ModelEntry, modality: str, given: dict[str, Any], num_classes: int
) -> dict[str, Any]:
    """The builder's input arguments for `modality`, checked."""
    foreign = [k for k in given if k not in INPUT_ARGS[modality]]
    if foreign:
        raise ModelTaskError(
            f"Model {entry.name!r} takes {modality} input, but was given {', '.join(foreign)}.",
            expected=f"{modality} input: {', '.join(INPUT_ARGS[modality])}",
            received=", ".join(f"{k}={given[k]!r}" for k in foreign),
            fix="for other kinds of data choose another model: "
            + "; ".join(f"{m} input: {', '.join(_models_taking(m))}" for m in MODALITIES),
        )
    inputs = {k: v if k == "image_size" else int(v) for k, v in given.items()}
    if modality == "image":
        if "in_channels" not in inputs or "image_size" not in inputs:
            raise ModelParamError(
                f"Model {entry.name!r} needs the image format.",
                expected="in_channels and image_size",
                received=", ".join(given) or "neither",
                fix="pass in_channels=1|3 and image_size=(h, w)",
            )
        inputs["image_size"] = _size(inputs["image_size"])
    elif modality == "text":
        inputs.setdefault("vocab_size", VOCAB_SIZE)
    elif modality in ("sequence", "audio"):
        _require(entry, modality, inputs)
    elif "n_features" not in inputs:
        raise ModelParamError(
            f"Model {entry.name!r} needs the number of input features.",
            expected="n_features >= 1",
            received="none",
            fix="pass n_features (the width of the encoded table)",
        )
    _check_shape(entry.name, modality=modality, num_classes=num_classes, inputs=inputs)
    return inputs


#: The input argument each modality cannot do without, and what to say when it is missing.
REQUIRED_INPUT = {
    "sequence": ("in_channels", "the series' channels (in_channels >= 1)"),
    "audio": ("sample_rate", "the waveforms' sample rate in Hz (sample_rate)"),
}


def _require(entry: ModelEntry, modality: str, inputs: dict[str, Any]) -> None:
    key, what = REQUIRED_INPUT[modality]
    if key not in inputs:
        raise ModelParamError(
            f"Model {entry.name!r} needs {what}.",
            expected=f"{key} for {modality} input",
            received=", ".join(inputs) or "none",
            fix=f"pass {key}=... (dlw train reads it from the data)",
        )


def _default_preprocessing(modality: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What `dlw test` and the server need to feed the model (the data's loader adds the
    rest: audio its ClipSettings, train/tensors.py)."""
    if modality == "sequence":  # float (N, C, T), NaN after each series' end
        return {"modality": "sequence", "channels": inputs["in_channels"]}
    if modality == "audio":  # float (N, S) mono waveforms at sample_rate
        return {"modality": "audio", "sample_rate": inputs["sample_rate"]}
    if modality != "image":
        return {"modality": modality}
    channels = inputs["in_channels"]
    return {
        "modality": "image",
        "channels": channels,
        "size": list(inputs["image_size"]),
        # identity until the trainer sets the data's statistics; a pretrained backbone
        # brings the normalisation it needs (the builder's preprocessing wins)
        "mean": [0.0] * channels,
        "std": [1.0] * channels,
    }


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


def _check_shape(name: str, *, modality: str, num_classes: int, inputs: dict[str, Any]) -> None:
    problems = {
        "image": lambda: inputs["in_channels"] in (1, 3) and min(inputs["image_size"]) >= 1,
        "text": lambda: inputs["vocab_size"] >= 2,
        "tabular": lambda: inputs["n_features"] >= 1,
        "sequence": lambda: inputs["in_channels"] >= 1,
        "audio": lambda: 1000 <= inputs["sample_rate"] <= 384_000,
    }
    if num_classes < 1 or not problems[modality]():
        expected = {
            "image": "1 or 3 channels, a positive image size",
            "text": "a vocabulary of at least 2 tokens",
            "tabular": "at least 1 input feature",
            "sequence": "at least 1 channel",
            "audio": "a sample rate of 1,000 to 384,000 Hz",
        }[modality]
        raise ModelParamError(
            f"Cannot build model {name!r} for this data.",
            expected=f"at least 1 output (class, label or value), {expected}",
            received=f"num_classes={num_classes}, "
            + ", ".join(f"{k}={v!r}" for k, v in inputs.items()),
            fix="check the dataset's labels and data.image / data.audio in dlworkflow.yaml",
        )


def _size(image_size: tuple[int, int] | int | list[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return (image_size, image_size)
    h, w = image_size
    return (int(h), int(w))


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
