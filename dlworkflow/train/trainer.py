"""The training loop: generic, lean, in-memory, reproducible.

Whole tensors live in memory, already normalised; each epoch shuffles with a seeded generator
and slices batches, evaluates on validation under `torch.inference_mode`, keeps a copy of the
best weights and stops early when the monitored metric stops improving. It knows nothing of
projects, files or MLflow: those come in through `on_epoch_end` callbacks.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dlworkflow import metrics as metrics_mod

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class LoopConfig:
    epochs: int
    batch_size: int = 64
    optimizer: str = "adamw"  # "adamw" or "sgd" (momentum 0.9, Nesterov)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without a better metric before stopping
    metric: str = "accuracy"  # monitored on validation; higher is better
    seed: int = 42
    eval_batch_size: int = 512

    @classmethod
    def from_train_config(cls, train: Any, *, metric: str, seed: int,
                          epochs: int | None = None) -> LoopConfig:
        """From the `train:` section of dlworkflow.yaml (dlworkflow.config.Train)."""
        return cls(epochs=epochs or train.epochs, batch_size=train.batch_size,
                   optimizer=train.optimizer, learning_rate=train.learning_rate,
                   weight_decay=train.weight_decay, patience=train.early_stopping_patience,
                   metric=metric, seed=seed)


@dataclass
class FitResult:
    history: list[dict[str, float]]  # one entry per epoch (see `fit`)
    best_epoch: int  # 1-based
    best_metric: float
    epochs_run: int
    stopped_early: bool
    seconds: float
    best_state: dict[str, torch.Tensor] = field(repr=False)

    @property
    def best(self) -> dict[str, float]:
        return self.history[self.best_epoch - 1]


def seed_everything(seed: int, *, threads: int | None = None) -> torch.Generator:
    """Seed python, numpy and torch, ask torch for deterministic kernels; the shuffle RNG."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed)


def make_optimizer(model: nn.Module, cfg: LoopConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                               momentum=0.9, nesterov=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use 'adamw' or 'sgd'")


def fit(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor,
        x_val: torch.Tensor, y_val: torch.Tensor, cfg: LoopConfig, *,
        generator: torch.Generator | None = None,
        callbacks: Sequence[EpochCallback] = (), progress: bool = False) -> FitResult:
    """Train `model` in place; on return it holds the best epoch's weights.

    x_* are float (N, C, H, W) already normalised, y_* int64 class indices. Each history entry
    has epoch, train_loss, val_loss, val_<metric>, val_accuracy, lr and seconds.
    """
    from dlworkflow.train.progress import epoch_progress

    generator = generator or torch.Generator().manual_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    n_batches = math.ceil(len(x_train) / cfg.batch_size)
    history: list[dict[str, float]] = []
    best_metric, best_epoch, best_state = -math.inf, 0, _copy_state(model)
    key, start = f"val_{cfg.metric}", time.perf_counter()
    with epoch_progress(cfg.epochs, n_batches, enabled=progress, metric=key) as bar:
        for epoch in range(1, cfg.epochs + 1):
            t0, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
            train_loss = train_epoch(model, x_train, y_train, optimizer,
                                     batch_size=cfg.batch_size, generator=generator,
                                     tick=bar.tick)
            schedule.step()
            row = {"epoch": epoch, "train_loss": train_loss,
                   **evaluate(model, x_val, y_val, metric=cfg.metric,
                              batch_size=cfg.eval_batch_size),
                   "lr": lr, "seconds": time.perf_counter() - t0}
            history.append(row)
            if row[key] > best_metric:  # NaN never counts as better
                best_metric, best_epoch, best_state = row[key], epoch, _copy_state(model)
            bar.epoch_done(epoch, row)
            for callback in callbacks:
                callback(epoch, row)
            if epoch - best_epoch >= cfg.patience:
                break
    model.load_state_dict(best_state)
    return FitResult(history=history, best_epoch=best_epoch, best_metric=best_metric,
                     epochs_run=len(history), stopped_early=len(history) < cfg.epochs,
                     seconds=time.perf_counter() - start, best_state=best_state)


def train_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                optimizer: torch.optim.Optimizer, *, batch_size: int,
                generator: torch.Generator, tick: Callable[[], None] | None = None) -> float:
    """One pass over a fresh random permutation; the mean training loss."""
    model.train()
    order = torch.randperm(len(x), generator=generator)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        xb, yb = x[idx], y[idx]
        loss = nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
        if tick is not None:
            tick()
    return float(total) / len(x)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, metric: str,
             batch_size: int = 512) -> dict[str, float]:
    """val_loss, val_<metric> and val_accuracy (with dlworkflow.metrics, as `dlw test`)."""
    logits = predict_logits(model, x, batch_size=batch_size)
    loss = float(nn.functional.cross_entropy(logits, y))
    proba = torch.softmax(logits, dim=1).numpy()
    labels = y.numpy()
    out = {"val_loss": loss, f"val_{metric}": metrics_mod.compute(metric, labels, proba)}
    if metric != "accuracy":
        out["val_accuracy"] = metrics_mod.compute("accuracy", labels, proba)
    return out


def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return logits


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
