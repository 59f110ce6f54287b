"""Step 5/6: how a pretrained network is adapted to the project's data (`model.transfer`).

    strategy = choose(project)                       # name + the reason it was chosen
    model = create_model(..., **strategy.model_params(cfg.model.name, cfg.model.params))
    result = train_model(strategy, project, model, data, loop, generator=g)

The strategies (after fastai's `fine_tune` and the transfer-learning literature):

  frozen    the backbone is a fixed feature extractor: its features for train and val are
            computed once (eval mode, no augmentation), cached on disk (features_cache), and
            only a linear head is trained on them: seconds on a CPU. The trained head is put
            back into the full network, so the saved model takes images like any other.
  finetune  every layer trains from the start, with discriminative learning rates: backbone
            lr = train.learning_rate x model.backbone_lr_factor, head lr = train.learning_rate.
  gradual   `model.head_epochs` epochs with the backbone frozen (requires_grad off, its batch
            norm layers in eval mode), then every layer with the discriminative rates above.
            The optimizer holds the backbone's parameter group from the start, with its own lr;
            unfreezing only flips requires_grad (a parameter without a gradient is skipped by
            AdamW and SGD, so it gets neither updates nor weight decay while frozen). One lr
            schedule spans both phases.
  scratch   random initialisation (the builder's `pretrained=False`), every layer at
            train.learning_rate. Always used for models without pretrained weights.

`auto` (the default) picks by the size of the train split: fewer than AUTO_FROZEN_BELOW
(2,000) training samples -> frozen, else gradual. With little data a linear head on fixed
pretrained features is the better bet: fine-tuning millions of weights on a few hundred
images overfits, and the features' quality is what carries the result. With a few thousand
samples or more, adapting the backbone pays off, and training the head first keeps the large
gradients of a random head from wrecking the pretrained features (fastai's fine_tune).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlworkflow.models import MODELS
from dlworkflow.models.registry import FactoryEntry
from dlworkflow.tasks import task_of
from dlworkflow.train import augment, augment_keys, augment_signals, distributed
from dlworkflow.train.callbacks import Callback, FitState, LambdaCallback
from dlworkflow.train.data import TensorData
from dlworkflow.train.features_cache import cached_features
from dlworkflow.train.trainer import FitOptions, FitResult, LoopConfig, fit, resolve_device

if TYPE_CHECKING:
    from dlworkflow.models.base import Classifier
    from dlworkflow.train.tensors import TrainData
    from dlworkflow.workspace import Workspace

STRATEGIES = ("frozen", "finetune", "gradual", "scratch")
AUTO_FROZEN_BELOW = 2000
DESCRIPTIONS = {
    "frozen": "head only, on cached pretrained features",
    "finetune": "all layers, backbone lr x{factor}",
    "gradual": "head for {head_epochs} epoch(s), then all layers with backbone lr x{factor}",
    "scratch": "random initialisation, all layers",
}


@dataclass(frozen=True)
class Strategy:
    name: str  # one of STRATEGIES
    reason: str
    # the timed estimate and auto's choice (train/estimate.py settle): seconds per candidate,
    # first_choice, chosen, budget_minutes, fits, machine, features_cached, timing_seconds,
    # message; None when not timed (scratch, data-parallel, before the data is loaded)
    estimate: dict[str, Any] | None = field(default=None, compare=False)

    def describe(self) -> str:
        """One line for `dlw train`: "frozen: <reason>"."""
        return f"{self.name}: {self.reason}"

    def summary(self) -> dict[str, Any]:
        """For the ledger summary (run.summary["transfer"]) and model.json."""
        out: dict[str, Any] = {"strategy": self.name, "reason": self.reason}
        if self.estimate is not None:
            out["estimate"] = self.estimate
        return out

    def params(self) -> dict[str, Any]:
        """MLflow params."""
        out: dict[str, Any] = {"transfer.strategy": self.name, "transfer.reason": self.reason[:500]}
        if self.estimate is not None:
            out["transfer.estimate_s"] = self.estimate["seconds"].get(self.name)
            out["transfer.first_choice"] = self.estimate["first_choice"]
        return out

    def model_params(self, model_name: str, params: dict[str, Any]) -> dict[str, Any]:
        """`model.params` for create_model: scratch asks the builder for random weights."""
        if self.name == "scratch" and "pretrained" in MODELS.get(model_name).defaults():
            return {**params, "pretrained": False}
        return dict(params)


def choose(
    project: Workspace, model: str | nn.Module | None = None, *, n_train: int | None = None
) -> Strategy:
    """The strategy for `model` (a registry name or a built model; default: model.name) under
    `model.transfer`, with the reason. `n_train` defaults to the train split's size."""
    cfg = project.config
    name = _model_name(model, default=cfg.model.name)
    requested = cfg.model.transfer
    entry = MODELS.get(name)
    if not entry.pretrained or cfg.model.params.get("pretrained", True) is False:
        why = (
            f"{name} has no pretrained weights"
            if not entry.pretrained
            else "model.params.pretrained is false: no pretrained weights"
        )
        if requested not in ("auto", "scratch"):
            why += f" (model.transfer: {requested} needs them)"
        return Strategy("scratch", why + augment_note(cfg, frozen=False))
    if requested == "auto":
        if n_train is None:
            from dlworkflow import store

            n_train = int(store.read_split_info(project).counts.get("train", 0))
        picked = "frozen" if n_train < AUTO_FROZEN_BELOW else "gradual"
        rule = (
            f"< {AUTO_FROZEN_BELOW:,}: too few to adapt the backbone without overfitting"
            if picked == "frozen"
            else f">= {AUTO_FROZEN_BELOW:,}: enough to adapt the backbone"
        )
        reason = f"auto, {n_train:,} training samples {rule}; " + description(cfg, picked)
    else:
        picked = requested
        reason = f"model.transfer: {requested}; " + description(cfg, picked)
    if picked == "frozen" and requested == "auto" and task_of(cfg.task).dense:
        picked = "gradual"
        reason = (
            f"auto, {n_train:,} training samples; a dense head (boxes, masks) reads the "
            "backbone's feature maps, not one cached vector per image, and is new: "
            + description(cfg, picked)
        )
    elif picked == "frozen" and task_of(cfg.task).dense:
        reason += " (a dense head: the backbone stays frozen in the network, no feature cache)"
    if picked == "frozen" and isinstance(entry, FactoryEntry):
        picked = "finetune"
        reason = (
            "a user network has no features() to cache, so not frozen but finetune; "
            + description(cfg, picked)
        )
    return Strategy(picked, reason + augment_note(cfg, frozen=picked == "frozen"))


def description(cfg: Any, name: str) -> str:
    """What strategy `name` trains (DESCRIPTIONS), with the config's numbers."""
    return DESCRIPTIONS[name].format(
        factor=cfg.model.backbone_lr_factor, head_epochs=cfg.model.head_epochs
    )


def augment_note(cfg: Any, *, frozen: bool) -> str:
    """What the transfer reason says of `augment:` options that are not applied: those of
    another kind of data (text and tables take none), and every one under a frozen backbone
    of a per-sample head (its features are computed once, from the original inputs)."""
    task = task_of(cfg.task)
    other = augment_keys.ignored(cfg.augment, task.modality)
    note = ""
    if other:
        takes = ", ".join(augment_keys.keys_for(task.modality)) or "none"
        note += f"; augment is not applied: {', '.join(other)} ({task.modality} takes {takes})"
    if frozen and augment_keys.applied(cfg.augment, task.modality) and not task.dense:
        note += "; augment is not applied (features are computed once, from the original inputs)"
    return note


def _model_name(model: str | nn.Module | None, *, default: str) -> str:
    if model is None:
        return default
    if isinstance(model, str):
        return model
    return str(getattr(model, "dlw_spec", {}).get("name", default))


# ---------------------------------------------------------------- training under a strategy


def train_model(
    strategy: Strategy,
    project: Workspace,
    model: Classifier,
    data: TrainData,
    loop: LoopConfig,
    *,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    report: Any = None,
    resume: Any = None,
) -> FitResult:
    """Train `model` in place under `strategy`; on return it holds the best weights (for
    frozen: the pretrained backbone and the best head). `callbacks` and `resume` (a
    LoopState) go to `trainer.fit`; `report(done, total)` shows feature extraction."""
    loop = dataclasses.replace(loop, task=data.task, target=data.target)
    dense = task_of(data.task).dense  # boxes / masks: the head reads feature maps
    if strategy.name == "frozen" and not dense:
        return fit_frozen(
            project,
            model,
            data,
            loop,
            generator=generator,
            callbacks=callbacks,
            progress=progress,
            report=report,
            resume=resume,
        )
    cfg = project.config
    options = FitOptions(generator=generator, progress=progress)
    hooks: list[Callback] = []
    if getattr(data, "modality", "image") == "image":
        assert data.channels is not None and data.size is not None  # set for images
        mixing = task_of(data.task).single_label  # mixup / cutmix blend one-hot classes
        settings = (
            cfg.augment if mixing else cfg.augment.model_copy(update={"mixup": 0.0, "cutmix": 0.0})
        )
        transform = augment.build(
            settings,
            channels=data.channels,
            size=data.size,
            num_classes=len(data.classes),
            seed=cfg.seed + _rank(),  # data-parallel: own draws a rank
            mean=data.mean,
            std=data.std,
            kind=task_of(data.task).kind,  # boxes / masks move with the pixels
        )
        if transform is not None:
            options.batch_transform = transform
            hooks.append(_numbering_batches(transform))
    signal = _signal_augment(cfg, model, data)  # series / audio; None for other data
    if signal is not None:
        options.batch_transform, spec = signal
        for numbered in (options.batch_transform, spec):
            if numbered is not None:
                hooks.append(_numbering_batches(numbered))
    unfreeze = None
    if strategy.name in ("finetune", "gradual", "frozen"):
        options.param_groups = discriminative_groups(
            model, learning_rate=loop.learning_rate, factor=cfg.model.backbone_lr_factor
        )
    if strategy.name in ("gradual", "frozen"):  # frozen here: a dense head, every epoch
        unfreeze = GradualUnfreeze(
            cfg.model.head_epochs if strategy.name == "gradual" else loop.epochs
        )
        hooks.append(unfreeze)
    try:
        return fit(
            model,
            data.train,
            data.val,
            loop,
            options=options,
            callbacks=[*hooks, *callbacks],
            resume=resume,
        )
    finally:
        if unfreeze is not None:
            unfreeze.release(model)
        if signal is not None and signal[1] is not None:
            model.augment = None  # type: ignore[assignment]  # SpecAugment: this run only


def _signal_augment(cfg: Any, model: Classifier, data: TrainData) -> tuple[Any, Any] | None:
    """(the batch transform or None, the SpecAugment put into the audio model or None) of
    `augment:` for series and audio data; None for other data or when nothing is on."""
    modality = getattr(data, "modality", "image")
    seed = cfg.seed + _rank()  # data-parallel: own draws a rank
    mixup = cfg.augment.mixup if task_of(data.task).single_label else 0.0
    settings = cfg.augment.model_copy(update={"mixup": mixup})
    classes = len(data.classes)
    if modality == "sequence":
        series = augment_signals.series_transform(settings, num_classes=classes, seed=seed)
        return (series, None) if series is not None else None
    if modality != "audio":
        return None
    samples = int(data.x_train.shape[-1])
    wave = augment_signals.audio_transform(
        settings, samples=samples, num_classes=classes, seed=seed
    )
    spec = augment_signals.spec_augment(settings, seed=seed)
    if spec is not None and hasattr(model, "augment"):
        model.augment = spec  # AudioClassifier: applied in training mode only
    else:
        spec = None
    return (wave, spec) if wave is not None or spec is not None else None


def _rank() -> int:
    shard = distributed.current()
    return shard.rank if shard is not None else 0


def _numbering_batches(transform: Any) -> Callback:
    """The augmentation's start_epoch on every rank: batches of each epoch are numbered from
    1 again (so a resumed run draws what an uninterrupted one would)."""
    return LambdaCallback(on_epoch_start=lambda s: transform.start_epoch(s.epoch), all_ranks=True)


def discriminative_groups(
    model: Classifier, *, learning_rate: float, factor: float
) -> list[dict[str, Any]]:
    """Optimizer param groups: backbone at learning_rate x factor, head at learning_rate."""
    groups = model.param_groups()
    return [
        {"params": list(groups["backbone"]), "lr": learning_rate * factor, "name": "backbone"},
        {"params": list(groups["head"]), "lr": learning_rate, "name": "head"},
    ]


class GradualUnfreeze(Callback):
    """Callback (every rank): backbone frozen for epochs 1..head_epochs, trainable after.

    While frozen, the backbone's batch-norm layers are kept in eval mode (running statistics
    used and left unchanged) by a forward pre-hook, whatever `model.train()` the loop calls.
    """

    all_ranks = True

    def __init__(self, head_epochs: int) -> None:
        self.head_epochs = int(head_epochs)
        self.frozen = False
        self._hook: Any = None

    def on_epoch_start(self, state: FitState) -> None:
        self(state.epoch, state.model)  # type: ignore[arg-type]  # a Classifier

    def __call__(self, epoch: int, model: Classifier) -> None:
        if epoch <= self.head_epochs:
            self.freeze(model)
        else:
            self.release(model)

    def freeze(self, model: Classifier) -> None:
        for p in model.param_groups()["backbone"]:
            p.requires_grad_(False)
        if self._hook is None:
            norms = backbone_norms(model)

            def keep_norms_in_eval(_module: nn.Module, _args: Any) -> None:
                for norm in norms:
                    norm.eval()

            self._hook = model.register_forward_pre_hook(keep_norms_in_eval)
        self.frozen = True

    def release(self, model: Classifier) -> None:
        for p in model.param_groups()["backbone"]:
            p.requires_grad_(True)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self.frozen = False


def backbone_norms(model: Classifier) -> list[nn.Module]:
    """The batch-norm layers outside the head."""
    in_head = {id(m) for m in model.head.modules()}
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in in_head
    ]


# ---------------------------------------------------------------- frozen: head on features


class HeadOnly(nn.Module):
    """The classifier head alone, trained on cached features (features(x) is the identity);
    dropout as the full network applies it to its features while training."""

    def __init__(self, head: nn.Linear, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(x))


def fit_frozen(
    project: Workspace,
    model: Classifier,
    data: TrainData,
    loop: LoopConfig,
    *,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    report: Any = None,
    resume: Any = None,
) -> FitResult:
    """Backbone features once (cached), a fresh head trained on them, put into `model`."""
    from dlworkflow.train.progress import count_progress

    device = resolve_device(loop.device)
    shard = distributed.current()
    with (
        count_progress("backbone features", enabled=progress and report is None) as bar,
        distributed.main_first(shard),
    ):  # rank 0 writes the cache, the others read it
        feats = cached_features(
            project, model, data, device=distributed.device_for(shard, device), report=report or bar
        )
    drop = getattr(model, "dropout", None)
    head_only = HeadOnly(
        copy.deepcopy(model.head), dropout=drop.p if isinstance(drop, nn.Dropout) else 0.0
    )
    result = fit(
        head_only,
        TensorData(feats.train, data.y_train),
        TensorData(feats.val, data.y_val),
        _vector_loop(loop),
        options=FitOptions(generator=generator, progress=progress),
        callbacks=callbacks,
        resume=resume,
    )
    result.notes.append(
        f"frozen: features {'read from' if feats.from_cache else 'computed'} "
        f"{feats.path.name} in {feats.seconds:.1f} s"
    )
    model.head.load_state_dict(head_only.head.state_dict())
    result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return result


def _vector_loop(loop: LoopConfig) -> LoopConfig:
    """The loop settings for (N, F) feature vectors: no image-only options."""
    names = {f.name for f in dataclasses.fields(loop)}
    off: dict[str, Any] = {k: False for k in ("channels_last", "compile") if k in names}
    return dataclasses.replace(loop, **off) if off else loop
