"""The training loop: generic, lean, reproducible, resumable.

Each epoch shuffles with a seeded generator and takes batches from a `TensorData` placed on
the device (resident when it fits, else read ahead from a memory map; uint8 images are
normalised per batch on the device), evaluates on validation under `torch.inference_mode`,
keeps a copy of the best weights and stops early when the monitored metric stops improving.
Options (all from `train:` in dlworkflow.yaml): schedule (cosine, onecycle, plateau,
constant), label smoothing, gradient clipping, gradient accumulation, balanced class weights,
bf16 autocast, channels-last, torch.compile and the device.

It knows nothing of projects, files or MLflow: those come in through callbacks
(train/callbacks.py: on_train_start, on_epoch_start, on_checkpoint, on_epoch_end,
on_train_end, each given one FitState) and FitOptions (`batch_transform`, `param_groups`)
for augmentation and transfer learning.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dlworkflow.errors import TrainError
from dlworkflow.tasks import Task, task_of
from dlworkflow.train import distributed
from dlworkflow.train.callbacks import Callback, FitState
from dlworkflow.train.data import DeviceData, TensorData
from dlworkflow.train.device_defaults import (
    allow_recompiles,
    run_budget,
    tune_cuda_kernels,
    use_channels_last,
    use_compile,
)
from dlworkflow.train.distributed import Shard
from dlworkflow.train.weight_average import WeightAverage

BatchTransform = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
SCHEDULES = ("cosine", "onecycle", "plateau", "constant")


@dataclass(frozen=True)
class LoopConfig:
    epochs: int
    batch_size: int = 64
    optimizer: str = "adamw"  # "adamw" or "sgd" (momentum 0.9, Nesterov)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without a better metric before stopping
    metric: str = "accuracy"  # monitored on validation, in its direction (the task's)
    seed: int = 42
    eval_batch_size: int = 512
    schedule: str = "cosine"  # per epoch; onecycle: per optimizer step; plateau: on the metric
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max total gradient norm
    accumulate: int = 1  # batches per optimizer step
    class_weights: str = "none"  # "balanced": n / (k * count_c) from the train labels
    precision: str = "auto"  # auto: bf16 on a GPU that supports it, else fp32
    channels_last: bool | str = "auto"  # auto: on a GPU for conv nets (device_defaults)
    compile: bool | str = "auto"  # auto: on a GPU when the run repays it (device_defaults)
    device: str = "auto"  # auto: cuda when available, else cpu
    sync_batchnorm: bool = True  # data-parallel on CUDA: SyncBatchNorm (train/distributed.py)
    resident_bytes: int | None = None  # data on the device up to this size; None: automatic
    task: str = "image-classification"  # whose loss and metrics (dlworkflow.tasks)
    ema_decay: float | None = None  # validate and keep an average of the weights (weight_average)
    budget_minutes: float | None = None  # stop after the epoch reaching it; None: by device
    target: dict[str, Any] = field(default_factory=dict)  # Task.fit_target of the train split

    @property
    def kind(self) -> Task:
        return task_of(self.task)

    @classmethod
    def from_train_config(
        cls,
        train: Any,
        *,
        metric: str,
        seed: int,
        epochs: int | None = None,
        task: str = "image-classification",
        budget_minutes: float | None = None,
    ) -> LoopConfig:
        """From the `train:` section of dlworkflow.yaml (dlworkflow.config.Train);
        `epochs` and `budget_minutes` override the file's for this run."""
        return cls(
            epochs=epochs or train.epochs,
            batch_size=train.batch_size,
            optimizer=train.optimizer,
            learning_rate=train.learning_rate,
            weight_decay=train.weight_decay,
            patience=train.early_stopping_patience,
            metric=metric,
            seed=seed,
            schedule=train.schedule,
            label_smoothing=train.label_smoothing,
            grad_clip=train.grad_clip,
            accumulate=train.accumulate,
            class_weights=train.class_weights,
            precision=train.precision,
            channels_last=train.channels_last,
            compile=train.compile,
            device=train.device,
            sync_batchnorm=train.sync_batchnorm,
            task=task,
            eval_batch_size=eval_batch_size(task, train.batch_size),
            ema_decay=train.ema_decay,
            budget_minutes=budget_minutes or train.budget_minutes,
        )


DENSE_EVAL_BATCH = 32  # dense outputs (box maps, masks) are large: smaller eval batches


def eval_batch_size(task: str, batch_size: int) -> int:
    """Samples per evaluation batch: 512, or for a dense task (whose inputs are large
    images and whose outputs are maps) the larger of the training batch and 32."""
    return max(batch_size, DENSE_EVAL_BATCH) if task_of(task).dense else 512


@dataclass
class FitResult:
    history: list[dict[str, float]]  # one entry per epoch (see `fit`)
    best_epoch: int  # 1-based
    best_metric: float
    epochs_run: int
    stopped_early: bool  # fewer epochs than cfg.epochs: early stopping or the budget
    seconds: float
    best_state: dict[str, torch.Tensor] = field(repr=False)
    notes: list[str] = field(default_factory=list)  # e.g. "torch.compile failed: ..."
    device: str = "cpu"
    budget_minutes: float = 0.0  # the run's time budget (train.budget_minutes, or the device's)
    stopped_for_budget: bool = False  # it stopped before cfg.epochs because of the budget
    precision: str = "fp32"
    resident: bool = True  # train data held on the device (else streamed)
    steps_per_epoch: int = 0  # optimizer steps an epoch (each one's gradient norm checked)

    @property
    def best(self) -> dict[str, float]:
        return self.history[self.best_epoch - 1]

    @property
    def numerics(self) -> dict[str, Any]:
        """What the numerical check saw: every optimizer step's training loss and gradient
        norm were finite (else `fit` raised NonFiniteError); the largest gradient norm.
        Epochs are counted from the history (a resumed run's too); a row without
        grad_norm_max comes from a version of dlworkflow without the check."""
        checked = [r["grad_norm_max"] for r in self.history if "grad_norm_max" in r]
        return {
            "check": "training loss and gradient norm finite, every optimizer step",
            "every_step": bool(checked) and len(checked) == len(self.history),
            "epochs_checked": len(checked),
            "steps_checked": len(checked) * self.steps_per_epoch,
            "max_grad_norm": max(checked) if checked else None,
        }


@dataclass
class LoopState:
    """Everything needed to continue exactly after `epoch` (see train/checkpoint.py)."""

    epoch: int
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    best_metric: float
    best_epoch: int
    best_state: dict[str, Tensor]
    history: list[dict[str, float]]
    rng: dict[str, Any]
    ema: dict[str, Tensor] | None = None  # WeightAverage.state() when train.ema_decay is set


def seed_everything(seed: int, *, threads: int | None = None) -> torch.Generator:
    """Seed python, numpy and torch, ask torch for deterministic kernels; the shuffle RNG."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    deterministic_kernels()
    if threads:
        torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed)


def deterministic_kernels(*, compiling: bool = False) -> None:
    """torch.use_deterministic_algorithms(True, warn_only=True), without importing Inductor's
    config (2 s, for sympy) unless the model is compiled or Inductor is already loaded: the
    flag for eager kernels is the same one, and Inductor reads its own when it compiles."""
    import sys

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if compiling or setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        setter(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def make_optimizer(
    model: nn.Module, cfg: LoopConfig, param_groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """AdamW or SGD over `param_groups` (a group may carry its own "lr"), else over the
    model's trainable parameters."""
    params: Any = (
        param_groups
        if param_groups is not None
        else [p for p in model.parameters() if p.requires_grad]
    )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, momentum=0.9, nesterov=True
        )
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use 'adamw' or 'sgd'")


def make_schedule(
    optimizer: torch.optim.Optimizer, cfg: LoopConfig, *, steps_per_epoch: int
) -> Any:
    """cosine: per epoch to 0; onecycle: per optimizer step, peak = each group's lr;
    plateau: x0.1 after patience//2 epochs without a better metric; constant: None."""
    sched = torch.optim.lr_scheduler
    if cfg.schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "onecycle":
        return sched.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=cfg.epochs * steps_per_epoch,
        )
    if cfg.schedule == "plateau":
        higher = cfg.kind.metric(cfg.metric).higher_is_better
        return sched.ReduceLROnPlateau(
            optimizer,
            mode="max" if higher else "min",
            factor=0.1,
            patience=max(0, cfg.patience // 2 - 1),
        )
    if cfg.schedule == "constant":
        return None
    raise ValueError(f"unknown schedule {cfg.schedule!r}; use one of {', '.join(SCHEDULES)}")


def global_batches(n: int, batch_size: int, shard: Shard | None) -> int:
    """Batches an epoch (per rank, data-parallel: a last batch smaller than the world is
    skipped, see Shard.local_order)."""
    world = shard.world if shard is not None else 1
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world else 0)


def balanced_weights(y: Tensor, num_classes: int) -> Tensor:
    """n / (k * count_c) per class (sklearn's "balanced"); 0 for a class absent from y."""
    counts = torch.bincount(torch.as_tensor(y).cpu(), minlength=num_classes).double()
    present = int((counts > 0).sum())
    weights = torch.where(counts > 0, counts.sum() / (present * counts.clamp(min=1)), 0.0)
    return weights.float()


@dataclass
class FitOptions:
    """How `fit` runs, beside the settings of LoopConfig: runtime objects, not settings.

    generator: the shuffle RNG (default: seeded with cfg.seed). progress: show a progress bar
    (rank 0). batch_transform(x, y) runs on each training batch on the device (augmentation;
    it may return float soft targets [B, K]). param_groups replaces model.parameters() in the
    optimizer (a group may carry its own "lr"). shard: this process's place in a
    data-parallel run ("auto": the initialised process group, if any; see
    train/distributed.py)."""

    generator: torch.Generator | None = None
    progress: bool = False
    batch_transform: BatchTransform | None = None
    param_groups: list[dict] | None = None
    shard: Shard | None | str = "auto"


def fit(
    model: nn.Module,
    train: TensorData,
    val: TensorData,
    cfg: LoopConfig,
    *,
    options: FitOptions | None = None,
    callbacks: Sequence[Callback] = (),
    resume: LoopState | None = None,
) -> FitResult:
    """Train `model` in place on `cfg.device`; on return it holds the best epoch's weights.

    train / val: TensorData (uint8 images are normalised per batch with their mean/std).
    options: generator, progress, batch_transform, param_groups, shard (see FitOptions).
    callbacks: Callback objects (train/callbacks.py), told on_train_start, on_epoch_start,
    on_checkpoint (with the LoopState to resume from), on_epoch_end and on_train_end; in a
    data-parallel run only rank 0 calls them (and shows progress), except callbacks with
    all_ranks. `resume` continues from a LoopState.
    Each history entry has epoch, train_loss, val_loss, val_<metric>, val_<companion metric>, lr,
    grad_norm_max (the epoch's largest total gradient norm, before clipping) and seconds.
    Numerics: every optimizer step's loss and total gradient norm are checked on the device
    (no synchronisation per step); an epoch in which one was NaN or infinite raises
    a TrainError at its end, naming the first (epoch, batch, step, which quantity).
    """
    from dlworkflow.train.progress import epoch_progress

    opts = options or FitOptions()
    shard = distributed.current() if opts.shard == "auto" else opts.shard
    assert not isinstance(shard, str)
    main = shard is None or shard.is_main
    progress = opts.progress and main
    if not main:
        callbacks = [c for c in callbacks if c.all_ranks]
    device = distributed.device_for(shard, resolve_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    tune_cuda_kernels(device)
    generator = opts.generator or torch.Generator().manual_seed(cfg.seed)
    synced = (
        distributed.to_sync_batchnorm(model)
        if distributed.use_sync_batchnorm(cfg.sync_batchnorm, shard, device)
        else []
    )
    model.to(device)
    n_batches = global_batches(len(train), cfg.batch_size, shard)
    n_steps = math.ceil(n_batches / cfg.accumulate)
    channels_last = use_channels_last(cfg.channels_last, device, model)
    compiling = use_compile(cfg.compile, device, total_steps=n_steps * cfg.epochs)
    if channels_last:
        # (torch's stubs of Module.to lack memory_format, which it accepts)
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    train_on = train.place(device, budget=cfg.resident_bytes)
    val_on = val.place(device, budget=cfg.resident_bytes)
    loop = _Loop(
        model,
        cfg,
        device=device,
        precision=precision,
        batch_transform=opts.batch_transform,
        shard=shard,
        channels_last=channels_last,
    )
    loop.weights = _class_weights(cfg, model, train, device)
    if shard is None:
        loop.forward = _maybe_compile(model, compiling, val_on, loop)
        loop.eval_forward = loop.forward
    else:  # gradients are all-reduced by DDP; evaluation runs the plain module
        loop.ddp = distributed.wrap(model, shard, device, find_unused=opts.param_groups is not None)
        loop.forward = _maybe_compile(loop.ddp, compiling, val_on, loop)
    if cfg.ema_decay is not None:  # after every move of the weights (device, memory format)
        loop.average = WeightAverage(model, cfg.ema_decay)
    optimizer = make_optimizer(model, cfg, opts.param_groups)
    schedule = make_schedule(optimizer, cfg, steps_per_epoch=n_steps)
    history: list[dict[str, float]] = []
    spec = cfg.kind.metric(cfg.metric)
    best_metric = -math.inf if spec.higher_is_better else math.inf
    best_epoch, best_state = 0, _copy_state(model)
    first = 1
    if resume is not None:
        _restore(resume, model, optimizer, schedule, generator, device)
        if loop.average is not None and not loop.average.load(resume.ema or {}):
            loop.notes.append("the checkpoint holds no weight average: it restarts here")
        history, best_metric, best_epoch = (
            list(resume.history),
            resume.best_metric,
            resume.best_epoch,
        )
        best_state, first = resume.best_state, resume.epoch + 1
    state = FitState(epoch=first - 1, model=model, optimizer=optimizer, history=history, cfg=cfg)
    for callback in callbacks:
        callback.on_train_start(state)
    key, start = f"val_{cfg.metric}", time.perf_counter()
    budget = run_budget(cfg.budget_minutes, device)
    over_budget = False
    done = first > cfg.epochs or (first > 1 and first - 1 - best_epoch >= cfg.patience)
    with epoch_progress(cfg.epochs, n_batches, enabled=progress, metric=key) as bar:
        for epoch in range(first, cfg.epochs + 1):
            if done:
                break
            state.epoch, state.checkpoint = epoch, None
            for callback in callbacks:
                callback.on_epoch_start(state)
            t0, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
            order = torch.randperm(len(train), generator=generator)
            train_loss = loop.train_epoch(
                train_on,
                order,
                optimizer,
                schedule if cfg.schedule == "onecycle" else None,
                tick=bar.tick,
            )
            # the loss: the same on every rank (an all-reduced sum); the gradient norm too
            # (gradients are all-reduced before the optimizer steps)
            if not math.isfinite(train_loss) or loop.bad_grad is not None:
                raise _non_finite(cfg, precision, epoch, loop, n_batches, n_steps, train_loss)
            with loop.averaged():  # train.ema_decay: the average is validated and kept
                scores = loop.evaluate(val_on, metric=cfg.metric)
                better = spec.better(scores[key], best_metric)  # NaN never counts as better
                candidate = _copy_state(model) if better else None
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                **scores,
                "lr": lr,
                "grad_norm_max": loop.grad_norm_max,
                "seconds": time.perf_counter() - t0,
            }
            if cfg.schedule == "plateau":
                schedule.step(row[key])
            elif cfg.schedule == "cosine":
                schedule.step()
            history.append(row)
            if candidate is not None:
                best_metric, best_epoch, best_state = row[key], epoch, candidate
            if callbacks:
                state.checkpoint = LoopState(
                    epoch=epoch,
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    scheduler=schedule.state_dict() if schedule is not None else None,
                    best_metric=best_metric,
                    best_epoch=best_epoch,
                    best_state=best_state,
                    history=history,
                    rng=capture_rng(generator, device),
                    ema=loop.average.state() if loop.average is not None else None,
                )
                for callback in callbacks:
                    callback.on_checkpoint(state)
            bar.epoch_done(epoch, row)
            for callback in callbacks:
                callback.on_epoch_end(state)
            over_budget = epoch < cfg.epochs and time.perf_counter() - start >= budget * 60
            stop = over_budget or epoch - best_epoch >= cfg.patience
            done = distributed.from_main(stop, shard, device)
            over_budget = over_budget and done
    for callback in callbacks:
        callback.on_train_end(state)
    model.load_state_dict(best_state)
    distributed.from_sync_batchnorm(synced)  # plain batch norms again, for saving and export
    return FitResult(
        history=history,
        best_epoch=best_epoch,
        best_metric=best_metric,
        epochs_run=len(history),
        stopped_early=len(history) < cfg.epochs,
        seconds=time.perf_counter() - start,
        best_state=best_state,
        notes=loop.notes,
        device=str(device),
        budget_minutes=budget,
        stopped_for_budget=over_budget,
        precision=precision,
        resident=train_on.resident,
        steps_per_epoch=n_steps,
    )


class _Loop:
    """The per-batch work of one fit: forward, loss, backward, optimizer steps."""

    def __init__(
        self,
        model: nn.Module,
        cfg: LoopConfig,
        *,
        device: torch.device,
        precision: str,
        batch_transform: BatchTransform | None,
        shard: Shard | None = None,
        channels_last: bool = False,
    ) -> None:
        self.model, self.cfg, self.device, self.precision = model, cfg, device, precision
        self.average: WeightAverage | None = None
        self.channels_last = channels_last
        self.forward: Callable[[Tensor], Tensor] = model
        self.eval_forward: Callable[[Tensor], Tensor] = model
        self.shard = shard
        self.ddp: torch.nn.parallel.DistributedDataParallel | None = None
        self.transform = batch_transform
        self.weights: Tensor | None = None
        self.notes: list[str] = []
        self.first_bad: int | None = None  # 0-based batch of the last epoch's first NaN/inf loss
        # the last epoch's first non-finite gradient norm: (0-based batch, 0-based step, value)
        self.bad_grad: tuple[int, int, float] | None = None
        self.grad_norm_max = 0.0  # the last epoch's largest (finite) total gradient norm

    def prepare(self, xb: Tensor) -> Tensor:
        if self.channels_last and xb.dim() == 4:
            return xb.contiguous(memory_format=torch.channels_last)
        return xb

    def loss(self, logits: Tensor, yb: Tensor) -> Tensor:
        return self.cfg.kind.loss(
            logits,
            yb,
            self.cfg.target,
            weight=self.weights,
            label_smoothing=self.cfg.label_smoothing,
        )

    def train_epoch(
        self,
        data: DeviceData,
        order: Tensor,
        optimizer: torch.optim.Optimizer,
        step_schedule: Any,
        *,
        tick: Callable[[], None] | None = None,
    ) -> float:
        """One pass over `order`; the mean training loss. Accumulation: each batch's loss is
        scaled by its share of its group (1/k for full groups); a last partial group steps.
        Data-parallel: this rank's slice of each global batch, its loss scaled by its share
        of the global batch x world size (DDP averages over ranks)."""
        cfg, model, shard = self.cfg, self.model, self.shard
        model.train()
        k, n, b = cfg.accumulate, len(order), cfg.batch_size
        world, local_b = 1, b
        if shard is not None:
            order, sizes = shard.local_order(order, b)
            world, local_b, n = shard.world, b // shard.world, sum(sizes)
        amp = autocast(self.precision, self.device)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        # the first batch whose loss is NaN/inf, tracked on the device (no sync per batch);
        # likewise each optimizer step's total gradient norm: the first non-finite one (its
        # batch, its step, its value) and the largest
        bad = torch.full((), -1, dtype=torch.long, device=self.device)
        grad_batch = torch.full((), -1, dtype=torch.long, device=self.device)
        grad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        grad_bad = torch.zeros((), dtype=torch.float32, device=self.device)
        grad_max = torch.zeros((), dtype=torch.float32, device=self.device)
        step_no = 0
        optimizer.zero_grad(set_to_none=True)
        for j, (xb, yb) in enumerate(data.batches(order, local_b)):
            if self.transform is not None:
                xb, yb = self.transform(xb, yb)
            steps = k == 1 or (j + 1) % k == 0 or (j + 1) * b >= n
            with self._sync(steps), amp:
                loss = self.loss(self.forward(self.prepare(xb)), yb)
            if k == 1 and shard is None:
                loss.backward()
            else:
                group = (j // k) * k * b
                (loss * (len(yb) * world / (min(group + k * b, n) - group))).backward()
            if steps:
                norm = self._grad_norm(params).float()
                finite = torch.isfinite(norm)
                new_bad = (grad_batch < 0) & ~finite
                grad_batch = grad_batch.masked_fill(new_bad, j)
                grad_step = grad_step.masked_fill(new_bad, step_no)
                grad_bad = torch.where(new_bad, norm, grad_bad)
                grad_max = torch.where(finite, torch.maximum(grad_max, norm), grad_max)
                step_no += 1
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if self.average is not None:
                    self.average.update()
                if step_schedule is not None:
                    step_schedule.step()
            total += loss.detach() * len(yb)
            bad = bad.masked_fill((bad < 0) & ~torch.isfinite(loss.detach()), j)
            if tick is not None:
                tick()
        mean = float(distributed.sum_all(total, shard)) / n
        first = int(bad) if not math.isfinite(mean) else -1
        self.first_bad = first if first >= 0 else None
        # the epoch's one synchronisation for the gradient norms
        at_batch, at_step, value, largest = torch.stack(
            [grad_batch.double(), grad_step.double(), grad_bad.double(), grad_max.double()]
        ).tolist()
        self.bad_grad = (int(at_batch), int(at_step), value) if at_batch >= 0 else None
        self.grad_norm_max = largest
        return mean

    def _grad_norm(self, params: list[Tensor]) -> Tensor:
        """The total (L2) gradient norm of this optimizer step, before clipping; clips to
        train.grad_clip when set (clip_grad_norm_ computes the same norm)."""
        if self.cfg.grad_clip is not None:
            return nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self.device)
        total_norm = getattr(nn.utils, "get_total_norm", None)  # torch >= 2.6
        if total_norm is not None:
            return total_norm(grads)
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))

    def _sync(self, steps: bool) -> AbstractContextManager[Any]:
        """DDP all-reduces only on the micro-batch that steps the optimizer."""
        if self.ddp is None or steps:
            return nullcontext()
        return self.ddp.no_sync()

    def logits(self, data: DeviceData) -> Tensor:
        """The model's outputs on every sample of `data`, in order. Data-parallel, each rank
        predicts its slice (distributed.eval_slice) and the slices are gathered: every rank
        gets the whole split's outputs, as one process computes them."""
        model, shard, n = self.model, self.shard, len(data.y)
        distributed.sync_buffers(model, shard)  # rank 0's batch-norm statistics
        sharded = shard is not None and n >= shard.world
        order = distributed.eval_slice(n, shard) if sharded and shard is not None else None
        was_training = model.training
        model.eval()
        with torch.inference_mode(), autocast(self.precision, self.device):
            out = [
                self.eval_forward(self.prepare(xb)).float()
                for xb, _ in data.batches(order, self.cfg.eval_batch_size)
            ]
        model.train(was_training)
        mine = torch.cat(out)
        if sharded and shard is not None:
            return distributed.gather_rows(mine, shard, n)
        return mine

    def averaged(self) -> AbstractContextManager[Any]:
        """The weight average in the model for the block (train.ema_decay), else nothing."""
        return nullcontext() if self.average is None else self.average.swapped_in()

    def evaluate(self, data: DeviceData, *, metric: str) -> dict[str, float]:
        return _metrics(self.logits(data), data.y, self.cfg, metric)


def _non_finite(
    cfg: LoopConfig,
    precision: str,
    epoch: int,
    loop: _Loop,
    n_batches: int,
    n_steps: int,
    loss: float,
) -> TrainError:
    """The error of the epoch's first non-finite value: the loss of a batch, or the gradient
    norm of an optimizer step (a loss at or before the step's batch comes first: its
    gradients follow from it). Its context["numerics"]: what the ledger records of it
    (failed, quantity, value, epoch, batch, step)."""
    batch, grad = loop.first_bad if not math.isfinite(loss) else None, loop.bad_grad
    bf16 = "; or try train.precision: fp32 (this run used bf16)" if precision == "bf16" else ""
    lr = (
        f"lower the learning rate (train.learning_rate is {cfg.learning_rate:g}; "
        "`dlw lr-find` suggests one) or set train.grad_clip"
    )
    if grad is not None and (math.isfinite(loss) or (batch is not None and grad[0] < batch)):
        g_batch, g_step, value = grad
        numerics = {
            "failed": True,
            "quantity": "gradient norm",
            "value": str(value),
            "epoch": epoch,
            "batch": g_batch + 1,
            "step": g_step + 1,
            "steps_per_epoch": n_steps,
        }
        return TrainError(
            f"Training stopped: the gradient norm became non-finite ({value}) at epoch {epoch}, "
            f"optimizer step {g_step + 1} of {n_steps} (batch {g_batch + 1} of {n_batches}), "
            "while the loss was still finite; the weights from then on would be garbage.",
            context={"numerics": numerics},
            expected="a finite total gradient norm at every optimizer step",
            received=f"gradient norm {value} at epoch {epoch}, step {g_step + 1}",
            fix=f"a NaN gradient under a finite loss comes from an operation whose derivative is "
            "undefined where it ran (sqrt or log at 0, a division by 0, the norm of a zero "
            "vector): check the network's forward; an infinite one from exploding gradients: "
            f"{lr}{bf16}",
        )
    where = f"batch {batch + 1} of {n_batches}" if batch is not None else "a batch of this epoch"
    return TrainError(
        f"Training stopped: the training loss became non-finite ({loss}) at epoch {epoch}, "
        f"{where}; the weights from then on would be garbage.",
        context={
            "numerics": {
                "failed": True,
                "quantity": "training loss",
                "value": str(loss),
                "epoch": epoch,
                "batch": batch + 1 if batch is not None else None,
                "batches_per_epoch": n_batches,
            }
        },
        expected="a finite training loss",
        received=f"mean training loss {loss} in epoch {epoch}",
        fix=f"{lr}; check the inputs for NaN or inf values and extreme scales (a column in "
        f"other units, unnormalised values){bf16}",
    )


def _metrics(logits: Tensor, y: Tensor, cfg: LoopConfig, metric: str) -> dict[str, float]:
    """val_loss, val_<metric> and val_<the task's companion metric> (accuracy for
    classification), computed by the task as `dlw test` computes them."""
    task, target = cfg.kind, cfg.target
    loss = float(task.loss(logits, y, target))
    return task.val_metrics(logits.cpu().numpy(), y.cpu().numpy(), target, metric, loss)


def evaluate(
    model: nn.Module,
    x: Tensor | TensorData,
    y: Tensor | None = None,
    *,
    metric: str,
    batch_size: int = 512,
    task: str = "image-classification",
    target: dict[str, Any] | None = None,
) -> dict[str, float]:
    """val_loss, val_<metric> and val_<companion> of `model` on (x, y) or a TensorData."""
    if isinstance(x, TensorData):
        data = x
    else:
        assert y is not None, "a tensor x needs its labels y"
        data = TensorData(x, y)
    logits = predict_logits(model, data, batch_size=batch_size)
    cfg = LoopConfig(epochs=1, metric=metric, task=task, target=target or {})
    return _metrics(logits, torch.as_tensor(data.y).to(logits.device), cfg, metric)


def predict_logits(model: nn.Module, x: Tensor | TensorData, *, batch_size: int = 512) -> Tensor:
    data = x if isinstance(x, TensorData) else TensorData(x, torch.zeros(len(x)))
    device = next(model.parameters()).device
    cfg = LoopConfig(epochs=1, eval_batch_size=batch_size, precision="fp32")
    return _Loop(model, cfg, device=device, precision="fp32", batch_transform=None).logits(
        data.place(device)
    )


def _class_weights(
    cfg: LoopConfig, model: nn.Module, train: TensorData, device: torch.device
) -> Tensor | None:
    if cfg.class_weights != "balanced" or not cfg.kind.single_label:
        return None
    y = torch.as_tensor(train.y)
    k = int(getattr(model, "num_classes", 0) or int(y.max()) + 1)
    return balanced_weights(y, k).to(device)


def _maybe_compile(
    model: nn.Module, compiling: bool, probe: DeviceData, loop: _Loop
) -> Callable[[Tensor], Tensor]:
    """torch.compile(model), tried on the first validation batch (its graph is the one every
    validation pass reuses); eager with a note if it fails. Images have one fixed size, so
    their shapes are static (a dynamic batch dimension slows every kernel, and the probe's
    batch differs from the training batch); text and series vary in length: torch decides."""
    if not compiling:
        return model
    try:
        if torch.are_deterministic_algorithms_enabled():
            deterministic_kernels(compiling=True)  # Inductor's own flag too
        xb, _ = next(probe.batches(None, loop.cfg.eval_batch_size))
        allow_recompiles()
        compiled = torch.compile(model, dynamic=False if xb.dim() == 4 else None)
        was_training = model.training
        model.eval()
        with torch.inference_mode(), autocast(loop.precision, loop.device):
            compiled(loop.prepare(xb))
        model.train(was_training)
        return compiled
    except Exception as exc:  # backends fail in many ways (no compiler, unsupported op, ...)
        note = (
            f"torch.compile failed, trained without it: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        )
        warnings.warn(note, RuntimeWarning, stacklevel=3)
        loop.notes.append(note)
        return model


def capture_rng(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every random state the loop draws from: python, numpy, torch (CPU, CUDA), shuffle."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "shuffle": generator.get_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    generator.set_state(state["shuffle"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _restore(
    state: LoopState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    generator: torch.Generator,
    device: torch.device,
) -> None:
    model.load_state_dict(state.model)
    optimizer.load_state_dict(state.optimizer)
    if schedule is not None and state.scheduler is not None:
        schedule.load_state_dict(state.scheduler)
    restore_rng(state.rng, generator, device)


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
