"""Callbacks of `trainer.fit`: one object per concern, told what happens to the run.

    class Watch(Callback):
        def on_epoch_end(self, state: FitState) -> None:
            print(state.epoch, state.row["val_accuracy"], state.optimizer.param_groups[0]["lr"])

    fit(model, train, val, cfg, callbacks=[Watch(), tracker, LambdaCallback(on_checkpoint=...)])

The loop calls, in this order:

    on_train_start(state)                 once, before the first epoch (state.epoch: the last
                                          epoch done, 0 unless resumed)
    per epoch:
      on_epoch_start(state)               before the epoch's first batch
      on_checkpoint(state)                after validation; state.checkpoint is the LoopState
                                          to resume from (see train/checkpoint.py)
      on_epoch_end(state)                 state.row: the epoch's history entry
    on_train_end(state)                   after the last epoch, before the best weights are
                                          loaded back (not after an exception)

In a data-parallel run only rank 0 calls them, except callbacks whose `all_ranks` is True
(training logic every process must apply, e.g. unfreezing a backbone). A callback may raise to
stop the run (tuning's pruners do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dlworkflow.train.trainer import LoopConfig, LoopState


@dataclass
class FitState:
    """What a callback sees: the live model and optimizer, the history so far."""

    epoch: int  # the current epoch (1-based); in on_train_start the last one done (0: none)
    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: list[dict[str, float]]  # one row per epoch done (see trainer.fit)
    cfg: LoopConfig
    checkpoint: LoopState | None = None  # set for on_checkpoint (and after it in the epoch)

    @property
    def row(self) -> dict[str, float]:
        """The last epoch's metrics: epoch, train_loss, val_loss, val_<metric>,
        val_accuracy, lr, seconds."""
        return self.history[-1]


class Callback:
    """Base class: every method does nothing; override those you need."""

    all_ranks: bool = False  # True: called on every rank of a data-parallel run

    def on_train_start(self, state: FitState) -> None:
        pass

    def on_epoch_start(self, state: FitState) -> None:
        pass

    def on_checkpoint(self, state: FitState) -> None:
        pass

    def on_epoch_end(self, state: FitState) -> None:
        pass

    def on_train_end(self, state: FitState) -> None:
        pass


Hook = Callable[[FitState], Any]


class LambdaCallback(Callback):
    """A callback made of functions of the state, e.g.
    LambdaCallback(on_epoch_end=lambda s: print(s.epoch, s.row["val_loss"]))."""

    def __init__(
        self,
        *,
        on_train_start: Hook | None = None,
        on_epoch_start: Hook | None = None,
        on_checkpoint: Hook | None = None,
        on_epoch_end: Hook | None = None,
        on_train_end: Hook | None = None,
        all_ranks: bool = False,
    ) -> None:
        self.hooks = {
            "on_train_start": on_train_start,
            "on_epoch_start": on_epoch_start,
            "on_checkpoint": on_checkpoint,
            "on_epoch_end": on_epoch_end,
            "on_train_end": on_train_end,
        }
        self.all_ranks = all_ranks

    def _call(self, name: str, state: FitState) -> None:
        hook = self.hooks[name]
        if hook is not None:
            hook(state)

    def on_train_start(self, state: FitState) -> None:
        self._call("on_train_start", state)

    def on_epoch_start(self, state: FitState) -> None:
        self._call("on_epoch_start", state)

    def on_checkpoint(self, state: FitState) -> None:
        self._call("on_checkpoint", state)

    def on_epoch_end(self, state: FitState) -> None:
        self._call("on_epoch_end", state)

    def on_train_end(self, state: FitState) -> None:
        self._call("on_train_end", state)


def checkpointing(save: Callable[[LoopState], Any]) -> Callback:
    """on_checkpoint: save(state.checkpoint), e.g. with train.checkpoint.Checkpointer.save."""

    def on_checkpoint(state: FitState) -> None:
        assert state.checkpoint is not None
        save(state.checkpoint)

    return LambdaCallback(on_checkpoint=on_checkpoint)


def each_epoch(fn: Callable[[int, dict[str, float]], Any]) -> Callback:
    """on_epoch_end: fn(epoch, row), the epoch's history entry."""
    return LambdaCallback(on_epoch_end=lambda state: fn(state.epoch, state.row))
