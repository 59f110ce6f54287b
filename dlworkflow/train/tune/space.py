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

When `tune.space` is empty, `dlw tune` searches a default space (`resolve`, `default_space`)
made for the project's model and training strategy (strategies.py):

    learning rate   log-uniform around train.learning_rate: a decade either side from scratch;
                    lr/10..lr*3 for finetune and gradual (pretrained weights want smaller
                    steps), with model.backbone_lr_factor 0.01..0.3; lr/3..lr*30 for frozen (a
                    linear head on fixed features takes larger steps)
    weight decay    log-uniform 1e-6..1e-2 (frozen: 1e-5..1e-1, the head's only regulariser
                    besides dropout)
    batch size      half, same and double train.batch_size (frozen: same, x2, x4: features
                    are cheap)
    dropout         0..0.5, for a model with a `dropout` parameter (model.params.dropout)
    augmentation    images: rotation 0..15 degrees and shift 0..12.5 % (augment.rotation,
                    augment.translate); series: jitter 0..0.1 of each channel's std and
                    magnitude warp 0..0.3 (augment.jitter, augment.magnitude_warp); audio:
                    gain 0..12 dB and SpecAugment frequency masks 0..16 mels (augment.gain_db,
                    augment.freq_mask). Not for frozen (its features are computed once, from
                    the original inputs)

The ranges follow train.learning_rate and train.batch_size, so after `dlw tune --apply` the
next default study is centred on the new values (a new study: its space changed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dlworkflow.errors import ConfigError, DlwError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import Trial

    from dlworkflow.config import ParamSpec, ProjectConfig
    from dlworkflow.workspace import Workspace

TUNABLE_SECTIONS = ("model", "augment", "train")
# set by `dlw tune` itself, not searched: the trial's epochs come from tune.epochs
RESERVED = {
    "train.epochs": "tune.epochs sets the epochs of every trial",
    "train.threads": "set by dlw tune for its worker processes",
    "train.device": "the trials run on the project's device",
}
_PRIMITIVE = (type(None), bool, int, float, str)
DEFAULT_FIX = "write your own under tune.space in dlworkflow.yaml to search other ranges"
#: The default space's augmentation strengths for series and audio (not for frozen: its
#: features are computed once, from the original inputs): key -> (reason, ParamSpec fields).
SIGNAL_AUGMENT: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "sequence": {
        "augment.jitter": (
            "augmentation strength: noise, share of each channel's std",
            {"type": "uniform", "low": 0.0, "high": 0.1},
        ),
        "augment.magnitude_warp": (
            "augmentation strength: smooth random scaling along the series",
            {"type": "uniform", "low": 0.0, "high": 0.3},
        ),
    },
    "audio": {
        "augment.gain_db": (
            "augmentation strength: random gain, +-dB",
            {"type": "uniform", "low": 0.0, "high": 12.0},
        ),
        "augment.freq_mask": (
            "augmentation strength: SpecAugment frequency masks, mels",
            {"type": "int", "low": 0, "high": 16},
        ),
    },
}


@dataclass(frozen=True)
class SearchSpace:
    """What `dlw tune` searches: tune.space ("configured") or, when it is empty, the default
    space for the model and strategy ("default"), with why each range is what it is."""

    space: dict[str, ParamSpec]
    source: Literal["configured", "default"]
    model: str
    strategy: str  # strategies.py's name; "" when it could not be told (a configured space)
    why: dict[str, str] = field(default_factory=dict)  # dotted key -> the reason of its range
    note: str = ""  # e.g. the strategy assumed before `dlw split`

    @property
    def is_default(self) -> bool:
        return self.source == "default"

    def describe(self) -> str:
        """One line: "default space for small_cnn (scratch strategy): 6 parameters", or
        "tune.space of dlworkflow.yaml: 2 parameters"."""
        n = f"{len(self.space)} parameter{'s' * (len(self.space) != 1)}"
        if self.is_default:
            return f"default space for {self.model} ({self.strategy} strategy): {n}" + (
                f"; {self.note}" if self.note else ""
            )
        return f"tune.space of dlworkflow.yaml: {n}"

    def dump(self) -> dict[str, dict[str, Any]]:
        """{key: the ParamSpec as dlworkflow.yaml writes it} (the ledger records this)."""
        return {k: v.model_dump(mode="json", exclude_none=True) for k, v in self.space.items()}

    def lines(self) -> list[str]:
        """The space as `tune.space` YAML lines, each with its reason as a comment."""
        out = []
        for key, spec in self.dump().items():
            body = ", ".join(
                f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in spec.items()
            )
            reason = f"  # {self.why[key]}" if key in self.why else ""
            out.append(f"{key}: {{{body}}}{reason}")
        return out


def resolve(project: Workspace) -> SearchSpace:
    """The space `dlw tune` searches: tune.space when it has keys, else `default_space` for
    the project's model under the strategy `dlw train` would use (strategies.choose; before
    `dlw split` an auto transfer is assumed to have fewer than 2,000 training samples)."""
    cfg = project.config
    if cfg.tune.space:
        return SearchSpace(dict(cfg.tune.space), "configured", cfg.model.name, "")
    from dlworkflow.models import MODELS
    from dlworkflow.tasks import task_of
    from dlworkflow.train import strategies

    note = ""
    try:
        strategy = strategies.choose(project).name
    except DlwError:  # no split yet: the train split's size decides an auto transfer
        strategy = strategies.choose(project, n_train=0).name
        note = "the strategy assumes a small train split until `dlw split` runs"
    try:
        defaults = MODELS.get(cfg.model.name).defaults()
    except DlwError:  # a user network that does not load: no model parameters to search
        defaults = {}
    task = task_of(cfg.task)
    space = default_space(
        cfg,
        strategy=strategy,
        modality=task.modality,
        model_defaults=defaults,
        kind=task.kind,
    )
    return SearchSpace(space.space, "default", cfg.model.name, strategy, space.why, note)


def default_space(
    config: ProjectConfig,
    *,
    strategy: str,
    modality: str,
    model_defaults: dict[str, Any],
    kind: str = "",
) -> SearchSpace:
    """The default search space for `strategy` (frozen, finetune, gradual, scratch) on
    `modality` (image, text, tabular, sequence, audio) with a model whose parameters default to
    `model_defaults`, around the config's train.learning_rate and train.batch_size.
    `kind`: the task's target kind; dense targets (boxes, masks) search only the
    augmentation their targets take (boxes: no rotation, but mosaic)."""
    from dlworkflow.config import ParamSpec
    from dlworkflow.train.dense_targets import DATA_KEYS, MOSAIC, ROTATES

    lr, batch = config.train.learning_rate, config.train.batch_size
    space: dict[str, ParamSpec] = {}
    why: dict[str, str] = {}

    def add(key: str, reason: str, **spec: Any) -> None:
        space[key] = ParamSpec(**spec)
        why[key] = reason

    if strategy == "frozen":
        add(
            "train.learning_rate",
            f"around {lr:.3g}, higher: a linear head on fixed features",
            type="log_uniform",
            low=_round(lr / 3),
            high=_round(min(lr * 30, max(1.0, lr * 3))),  # at most 1 unless lr is above 1/3
        )
        add(
            "train.weight_decay",
            "the head's regulariser",
            type="log_uniform",
            low=1e-5,
            high=1e-1,
        )
        sizes = [batch, batch * 2, batch * 4]
        batch_why = f"{batch} and larger: the head trains on cached features"
    else:
        pretrained = strategy in ("finetune", "gradual")
        add(
            "train.learning_rate",
            f"around {lr:.3g}"
            + (", lower: pretrained weights" if pretrained else ", a decade either side"),
            type="log_uniform",
            low=_round(lr / 10),
            high=_round(lr * (3 if pretrained else 10)),
        )
        add(
            "train.weight_decay",
            f"{config.train.optimizer}'s weight decay",
            type="log_uniform",
            low=1e-6,
            high=1e-2,
        )
        if pretrained:
            add(
                "model.backbone_lr_factor",
                "the backbone's learning rate as a fraction of the head's",
                type="log_uniform",
                low=0.01,
                high=0.3,
            )
        sizes = [max(1, batch // 2), batch, batch * 2]
        batch_why = f"half, same and double {batch}"
    add("train.batch_size", batch_why, type="categorical", choices=sorted(set(sizes)))
    if isinstance(model_defaults.get("dropout"), float):
        add(
            "model.params.dropout",
            f"the model's dropout (default {model_defaults['dropout']:g})",
            type="uniform",
            low=0.0,
            high=0.5,
        )
    # augmentation applies to images, except frozen features (computed once) of a vector head
    augments = modality == "image" and (strategy != "frozen" or kind in DATA_KEYS)
    if augments and (kind not in DATA_KEYS or kind in ROTATES):  # boxes do not rotate
        add(
            "augment.rotation",
            "augmentation strength: rotation, degrees",
            type="uniform",
            low=0.0,
            high=15.0,
        )
    if augments and kind in MOSAIC:
        add(
            "augment.mosaic",
            "share of training images made 2x2 mosaics (boxes moved with them)",
            type="uniform",
            low=0.0,
            high=0.5,
        )
    if augments:
        add(
            "augment.translate",
            "augmentation strength: shift, fraction of the side",
            type="uniform",
            low=0.0,
            high=0.125,
        )
    if strategy != "frozen":
        for key, (reason, spec) in SIGNAL_AUGMENT.get(modality, {}).items():
            add(key, reason, **spec)
    return SearchSpace(space, "default", config.model.name, strategy, why)


def _round(value: float) -> float:
    """Two significant digits: ranges people can read (and type into tune.space)."""
    return float(f"{value:.2g}")


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
    if not space:  # resolve() gives the default space for an empty tune.space
        raise ConfigError(
            "The search space is empty: there is nothing to search.",
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
