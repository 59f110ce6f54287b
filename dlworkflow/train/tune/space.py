"""The search space of `dlw tune`: `tune.space` in dlworkflow.yaml, as Optuna distributions.

    tune:
      space:
        train.learning_rate: {type: log_uniform, low: 1.0e-4, high: 1.0e-1}
        train.batch_size: {type: categorical, choices: [32, 64, 128]}
        model.params.channels: {type: categorical, choices: [[8, 16], [16, 32]]}

Each key is a dotted config path under `model`, `augment` or `train` (what the train step
reads). `check_space` applies the low and high ends and every choice through
`ProjectConfig.with_overrides` before any trial runs, so a misspelt key or an out-of-range value
fails at once, naming the key. Categorical choices that Optuna cannot store (lists, mappings)
are kept as their JSON text inside the study and decoded back by `decode`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import ConfigError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import Trial

    from dlworkflow.config import ParamSpec, ProjectConfig

TUNABLE_SECTIONS = ("model", "augment", "train")
# set by `dlw tune` itself, not searched: the trial's epochs come from tune.epochs
RESERVED = {
    "train.epochs": "tune.epochs sets the epochs of every trial",
    "train.threads": "set by dlw tune for its worker processes",
    "train.device": "the trials run on the project's device",
}
_PRIMITIVE = (type(None), bool, int, float, str)


def distributions(space: dict[str, ParamSpec]) -> dict[str, BaseDistribution]:
    """{dotted key: the Optuna distribution of that ParamSpec}."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, BaseDistribution] = {}
    for key, spec in space.items():
        if spec.type == "categorical":
            out[key] = CategoricalDistribution([_encode(c) for c in spec.choices or []])
        elif spec.type == "int":
            low, high = spec.bounds()
            out[key] = IntDistribution(int(low), int(high), step=spec.step or 1)
        else:
            low, high = spec.bounds()
            out[key] = FloatDistribution(low, high, log=spec.type == "log_uniform")
    return out


def suggest(trial: Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Ask the trial for one value per key; the decoded config values ({key: value})."""
    raw: dict[str, Any] = {}
    for key, spec in space.items():
        if spec.type == "categorical":
            raw[key] = trial.suggest_categorical(key, [_encode(c) for c in spec.choices or []])
        elif spec.type == "int":
            low, high = spec.bounds()
            raw[key] = trial.suggest_int(key, int(low), int(high), step=spec.step or 1)
        else:
            low, high = spec.bounds()
            raw[key] = trial.suggest_float(key, low, high, log=spec.type == "log_uniform")
    return decode(raw, space)


def decode(params: dict[str, Any], space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Optuna's stored params -> config values (a JSON-encoded choice back to its list/dict;
    an int dimension as int). Keys no longer in the space are kept as they are."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        spec = space.get(key)
        if spec is not None and spec.type == "categorical" and isinstance(value, str):
            out[key] = next((c for c in spec.choices or [] if _encode(c) == value), value)
        elif spec is not None and spec.type == "int":
            out[key] = int(value)
        else:
            out[key] = value
    return out


def check_space(config: ProjectConfig, space: dict[str, ParamSpec]) -> None:
    """Every key a tunable config path, and every end of its range and every choice valid
    there; a ConfigError naming the key otherwise (nothing has trained yet)."""
    if not space:
        raise ConfigError(
            "tune.space is empty: there is nothing to search.",
            expected="at least one dotted config key with a range or choices",
            received="tune: {space: {}}",
            fix="add e.g. `train.learning_rate: {type: log_uniform, low: 1.0e-4, high: "
            "1.0e-1}` under tune.space in dlworkflow.yaml",
        )
    for key, spec in space.items():
        _check_key(config, key)
        _check_int(key, spec)
        if key == "model.name":
            _check_models(config, spec)
        for value in samples(spec):
            try:
                config.with_overrides({key: value})
            except ConfigError as exc:
                raise ConfigError(
                    f"tune.space.{key}: the value {value!r} is not valid for {key}.",
                    expected=f"every value of the range or choices valid for {key}",
                    received=exc.received or exc.what,
                    fix=f"narrow the range or fix the choices of {key} under tune.space",
                ) from exc


def samples(spec: ParamSpec) -> list[Any]:
    """The values that bound a dimension: both ends of a range, or every choice."""
    if spec.type == "categorical":
        return list(spec.choices or [])
    if spec.type == "int":
        return [int(v) for v in spec.bounds()]
    return [spec.low, spec.high]


def _check_key(config: ProjectConfig, key: str) -> None:
    section, _, rest = key.partition(".")
    if section not in TUNABLE_SECTIONS or not rest:
        raise ConfigError(
            f"tune.space.{key}: only settings of the train step can be searched.",
            expected=f"a dotted key under {', '.join(TUNABLE_SECTIONS)} "
            "(e.g. train.learning_rate, model.params.channels, augment.flip)",
            received=key,
            fix=f"remove {key} from tune.space (split, problem and data "
            "settings would change what the trials are compared on)",
        )
    if key in RESERVED:
        raise ConfigError(
            f"tune.space.{key}: {RESERVED[key]}.", received=key, fix=f"remove {key} from tune.space"
        )
    node: Any = config.model_dump(mode="json")
    parts = key.split(".")
    for depth, part in enumerate(parts):
        free_form = depth >= 2 and parts[0] == "model" and parts[1] == "params"
        if not free_form and (not isinstance(node, dict) or part not in node):
            raise ConfigError(
                f"tune.space.{key}: there is no setting {key} in dlworkflow.yaml's schema.",
                expected=f"a key of {'.'.join(parts[:depth]) or 'the config'}: "
                + ", ".join(sorted(node))
                if isinstance(node, dict)
                else "a section",
                received=part,
                fix=f"correct the key {key} under tune.space",
            )
        node = node.get(part) if isinstance(node, dict) else None


def _check_models(config: ProjectConfig, spec: ParamSpec) -> None:
    """model.name choices: registered models that serve the project's task."""
    from dlworkflow.models import models_for

    known = models_for(config.task)
    unknown = [c for c in spec.choices or [] if c not in known]
    if unknown:
        raise ConfigError(
            f"tune.space.model.name: {', '.join(map(repr, unknown))} is not a model for "
            f"{config.task}.",
            expected=f"names from `dlw models`: {', '.join(known)}",
            received=repr(unknown),
            fix="correct the choices of model.name under tune.space",
        )


def _check_int(key: str, spec: ParamSpec) -> None:
    if spec.type != "int":
        return
    ends = [spec.low, spec.high]
    if any(v is None or not math.isfinite(v) or v != int(v) for v in ends):
        raise ConfigError(
            f"tune.space.{key}: an int parameter needs whole-number ends.",
            received=f"low {spec.low}, high {spec.high}",
            fix=f"give {key} integer low and high",
        )


def _encode(choice: Any) -> Any:
    """A choice as Optuna can store it: a primitive as it is, anything else as JSON text."""
    if isinstance(choice, _PRIMITIVE):
        return choice
    return json.dumps(choice, sort_keys=True)
