"""How long a training run will take under each transfer strategy, timed on this machine, and
the `auto` choice that fits the run's time budget (issue 20: an `auto` that knows the machine).

    strategy = strategies.choose(project)             # by the data-size rule
    strategy = settle(strategy, project, model, data, loop, progress=True)

`settle` times a few batches of each candidate on the actual device, batch size and precision
(a copy of the model; the random number generators are restored, so the run that follows is
the one it would have been without the timing):

  forward   1 warm-up + 2 batches in eval mode: a frozen backbone's feature pass, validation,
            and gradual's head epochs (the backbone runs forward only);
  step      1 warm-up + up to 3 optimizer steps of the whole network (forward, backward,
            AdamW/SGD step), stopping early after TIMED_STEPS_S: finetune, and gradual after
            its head epochs;
  head      1 warm-up + 3 steps of the linear head alone on feature vectors (frozen).

The estimate is the run's length if it runs every epoch of train.epochs (early stopping may
end it sooner):

  finetune  epochs x (batches x step + val x forward)
  gradual   head_epochs x train x forward + (epochs - head_epochs) x batches x step
            + epochs x val x forward
  frozen    (train + val) x forward, once (texts: their real tokens x the time of a padded
            token, as they are extracted shortest first; 0 when the features are cached for
            this dataset version) + epochs x batches x head
  frozen, dense tasks (the backbone stays in the network, frozen): epochs x (train + val) x
            forward + epochs x batches x head step

`auto` keeps the data-size rule's preference (strategies.AUTO_FROZEN_BELOW) as the first choice
and falls back to the next cheaper strategy (gradual -> frozen) when the first does not fit
train.budget_minutes (null: 10 min on a CPU, 60 on a GPU); when none fits, the cheapest. An
explicit model.transfer is obeyed; its estimate is printed and recorded all the same. Only
pretrained models are timed (scratch has no alternative) and only in a single-process run.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlworkflow.tasks import task_of
from dlworkflow.train import distributed
from dlworkflow.train.data import TensorData
from dlworkflow.train.device_defaults import run_budget
from dlworkflow.train.trainer import (
    LoopConfig,
    autocast,
    global_batches,
    make_optimizer,
    resolve_device,
    resolve_precision,
)

if TYPE_CHECKING:
    from dlworkflow.models.base import Classifier
    from dlworkflow.train.strategies import Strategy
    from dlworkflow.train.tensors import TrainData
    from dlworkflow.workspace import Workspace

TIMED_STEPS = 3  # optimizer steps timed after the warm-up one
TIMED_STEPS_S = 3.0  # ... or fewer, once they took this long (at least one is timed)
FORWARD_BATCHES = 2  # forward batches timed after the warm-up one
FORWARD_CPU_BATCH = 16  # samples a forward batch timed on a CPU (on a GPU: up to 128)
LABELS = {
    "gradual": "gradual fine-tuning",
    "finetune": "full fine-tuning",
    "frozen": "frozen features",
    "scratch": "training from scratch",
}
CHEAPER = {"gradual": "frozen", "finetune": "frozen"}  # auto's fallback when one does not fit
HINT = "set train.budget_minutes or model.transfer to change"


def settle(
    strategy: Strategy,
    project: Workspace,
    model: Classifier,
    data: TrainData,
    loop: LoopConfig,
    *,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
) -> Strategy:
    """`strategy` (strategies.choose's) with its timed estimate, or under `auto` the best
    strategy that fits the run's budget; the message goes to `say` (default: stderr when
    `progress`). Unchanged for scratch and in data-parallel runs; a timing that fails leaves
    the strategy as it was and says why in its reason."""
    if strategy.name == "scratch" or distributed.current() is not None:
        return strategy
    cfg = project.config
    auto = cfg.model.transfer == "auto"
    candidates = [strategy.name]
    if auto and strategy.name in CHEAPER and _can_freeze(model):
        candidates.append(CHEAPER[strategy.name])
    loop = dataclasses.replace(loop, task=data.task, target=data.target)
    device = resolve_device(loop.device)
    budget = run_budget(loop.budget_minutes, device)
    started = time.perf_counter()
    try:
        clock = Clock(model, data, loop, device)
        cached = _features_cached(project, model, data) if "frozen" in candidates else False
        seconds = {
            name: estimate(name, clock, data, loop, cfg.model.head_epochs, cached=cached)
            for name in candidates
        }
    except Exception as exc:  # an estimate must never stop a run: it trains as chosen
        note = f"; not timed ({type(exc).__name__}: {str(exc)[:120]})"
        return dataclasses.replace(strategy, reason=strategy.reason + note)
    fits = [name for name in candidates if seconds[name] <= budget * 60]
    picked = fits[0] if fits else candidates[-1]
    where = machine(device)
    message = _message(
        strategy.name, picked, seconds, budget, where, auto=auto, cached=cached, epochs=loop.epochs
    )
    record = {
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "first_choice": strategy.name,
        "chosen": picked,
        "budget_minutes": budget,
        "fits": picked in fits,
        "machine": where,
        "features_cached": cached,
        "timing_seconds": round(time.perf_counter() - started, 2),
        "message": message,
    }
    if picked == strategy.name:
        reason = f"{strategy.reason}; {message}"
    else:
        from dlworkflow.train.strategies import augment_note, description

        rule = strategy.reason.split(";", 1)[0]
        reason = (
            f"{message} ({rule}); "
            + description(cfg, picked)
            + augment_note(cfg, frozen=picked == "frozen")
        )
    if say is None and progress:
        say = _stderr
    if say is not None:
        say(f"transfer: {message}")
    return dataclasses.replace(strategy, name=picked, reason=reason, estimate=record)


def estimate(
    name: str,
    clock: Clock,
    data: TrainData,
    loop: LoopConfig,
    head_epochs: int,
    *,
    cached: bool = False,
) -> float:
    """Seconds of a run of every epoch of `loop` under strategy `name` (see the module)."""
    n_train, n_val = len(data.y_train), len(data.y_val)
    epochs = loop.epochs
    batches = global_batches(n_train, loop.batch_size, None)
    dense = task_of(data.task).dense

    def val() -> float:  # a validation pass every epoch
        return epochs * n_val * clock.forward()

    if name == "finetune":
        return epochs * batches * clock.step() + val()
    if name == "gradual":
        head = min(head_epochs, epochs)
        first = (
            head * batches * clock.step(frozen=True) if dense else head * n_train * clock.forward()
        )
        return first + (epochs - head) * batches * clock.step() + val()
    if name == "frozen":
        if dense:  # the backbone stays in the network, frozen, every epoch
            return epochs * batches * clock.step(frozen=True) + val()
        features = 0.0 if cached else clock.feature_pass()
        return features + epochs * batches * clock.head_step()
    raise ValueError(f"no estimate for transfer strategy {name!r}")


class Clock:
    """Times batches of `model` (a copy) on `data`'s first training samples, once each kind;
    forward() is seconds a sample, step() and head_step() seconds a batch."""

    def __init__(self, model: Classifier, data: TrainData, loop: LoopConfig, device: Any) -> None:
        self.model, self.data, self.loop, self.device = model, data, loop, device
        self.precision = resolve_precision(loop.precision, device)
        self._copy: Classifier | None = None
        self._times: dict[str, float] = {}

    def net(self) -> Classifier:
        if self._copy is None:
            self._copy = copy.deepcopy(self.model).to(self.device)
        return self._copy

    def forward(self) -> float:
        return self._once("forward", self._forward)

    def step(self, *, frozen: bool = False) -> float:
        return self._once("step_frozen" if frozen else "step", lambda: self._step(frozen=frozen))

    def head_step(self) -> float:
        return self._once("head", self._head_step)

    def _once(self, key: str, time_it: Callable[[], float]) -> float:
        if key not in self._times:
            self._times[key] = time_it()
        return self._times[key]

    def _batches(self, n: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`n` batches of `size` of the first training samples (again from the first when
        there are fewer), on the device as the trainer prepares them."""
        train = self.data.train
        total = len(train)
        rows = torch.arange(n * size) % max(total, 1)
        x = train.x[rows.numpy()] if not isinstance(train.x, torch.Tensor) else train.x[rows]
        subset = TensorData(torch.as_tensor(x), train.y[rows], mean=train.mean, std=train.std)
        return list(subset.place(self.device).batches(None, size))

    def _forward(self) -> float:
        """Seconds a sample of eval-mode forward passes (inference mode)."""
        net = self.net().eval()
        # a CPU's time a sample hardly depends on the batch: small batches keep the timing
        # cheap (MiniLM: 48 texts ~1 s on 2 cores); a GPU's does: the batch the features take
        size = min(self.loop.batch_size, 128 if self.device.type == "cuda" else FORWARD_CPU_BATCH)
        batches = self._batches(1 + FORWARD_BATCHES, size)
        with (
            _rng_kept(self.device),
            torch.inference_mode(),
            autocast(self.precision, self.device),
        ):
            net(batches[0][0])  # warm-up
            self._sync()
            start = time.perf_counter()
            for xb, _ in batches[1:]:
                net(xb)
            self._sync()
        spent = time.perf_counter() - start
        padded = sum(_padded_tokens(xb) for xb, _ in batches[1:])
        self._times["token"] = spent / padded if padded else 0.0
        return spent / sum(len(xb) for xb, _ in batches[1:])

    def feature_pass(self) -> float:
        """Seconds of the frozen backbone's features of every train and val sample. Texts
        are extracted shortest first (features_cache), so a batch costs about its real
        tokens: token time x the real tokens of both splits; other inputs: samples x
        forward()."""
        data = self.data
        n = len(data.y_train) + len(data.y_val)
        per_sample = self.forward()
        per_token = self._times.get("token", 0.0)
        if not per_token:
            return n * per_sample
        tokens = sum(int((torch.as_tensor(x) != 0).sum()) for x in (data.x_train, data.x_val))
        return tokens * per_token

    def _step(self, *, frozen: bool) -> float:
        """Seconds an optimizer step of the whole network (frozen: of its head, the backbone
        frozen as gradual's head epochs freeze it) on a training batch."""
        from dlworkflow.train.strategies import GradualUnfreeze, discriminative_groups

        net = self.net()  # a copy: its weights may change, not the model's
        unfreeze = GradualUnfreeze(1)
        if frozen:
            unfreeze.freeze(net)
        groups = discriminative_groups(net, learning_rate=self.loop.learning_rate, factor=0.1)
        optimizer = make_optimizer(net, self.loop, groups)
        batches = self._batches(1 + TIMED_STEPS, self.loop.batch_size)
        try:
            with _rng_kept(self.device):
                return self._time_steps(net, optimizer, batches)
        finally:
            unfreeze.release(net)

    def _time_steps(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, batches: list[Any]
    ) -> float:
        kind, loop = task_of(self.data.task), self.loop
        net.train()
        spent: list[float] = []
        for i, (xb, yb) in enumerate(batches):
            start = time.perf_counter()
            with autocast(self.precision, self.device):
                loss = kind.loss(net(xb), yb, loop.target, label_smoothing=loop.label_smoothing)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            self._sync()
            if i:  # the first is the warm-up
                spent.append(time.perf_counter() - start)
                if sum(spent) >= TIMED_STEPS_S:
                    break
        return sum(spent) / len(spent)

    def _head_step(self) -> float:
        """Seconds an optimizer step of the head alone on a batch of feature vectors."""
        from dlworkflow.train.strategies import HeadOnly

        head = getattr(self.model, "head", None)
        width = getattr(head, "in_features", None)
        if not isinstance(head, nn.Linear) or width is None:
            return 0.0
        net = HeadOnly(copy.deepcopy(head)).to(self.device)
        optimizer = make_optimizer(net, self.loop)
        b = self.loop.batch_size
        x = torch.zeros(b, width, device=self.device)
        y = self.data.y_train[torch.arange(b) % max(len(self.data.y_train), 1)].to(self.device)
        with _rng_kept(self.device):
            return self._time_steps(net, optimizer, [(x, y)] * (1 + TIMED_STEPS))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _padded_tokens(xb: torch.Tensor) -> int:
    """Token ids (N, L): N x the longest text's tokens (what a text model's batch costs, its
    all-padding columns dropped); 0 for other inputs."""
    if xb.ndim != 2 or xb.dtype not in (torch.int64, torch.int32):
        return 0
    longest = int((xb != 0).sum(1).max()) if len(xb) else 0
    return len(xb) * max(longest, 1)


def _rng_kept(device: Any) -> contextlib.AbstractContextManager[Any]:
    """Restores torch's CPU (and this CUDA device's) random state on exit: the timing draws
    dropout masks, the run after it must not see that."""
    return torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])


def _can_freeze(model: nn.Module) -> bool:
    """A backbone can be frozen: the network has a head and features()."""
    return hasattr(model, "head") and hasattr(model, "features")


def _features_cached(project: Workspace, model: Classifier, data: TrainData) -> bool:
    from dlworkflow.train.features_cache import cache_file

    try:
        return cache_file(project, model, data).is_file()
    except Exception:  # no split info: not cached
        return False


def machine(device: Any) -> str:
    """'2 CPU cores' (the threads torch uses) or the GPU's name."""
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    n = torch.get_num_threads()
    return f"{n} CPU core{'s' if n != 1 else ''}"


def duration(seconds: float) -> str:
    """≈ 40 min, ≈ 20 s, ≈ 1.5 h."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _message(
    first: str,
    picked: str,
    seconds: dict[str, float],
    budget: float,
    where: str,
    *,
    auto: bool,
    cached: bool,
    epochs: int,
) -> str:
    """The line `dlw train` prints: the estimate, the choice and why."""

    def est(name: str) -> str:
        note = " (features cached)" if name == "frozen" and cached else ""
        return f"{LABELS[name]} ≈ {duration(seconds[name])}{note}"

    limit = f"budget {budget:g} min on {where}"
    over = seconds[picked] > budget * 60
    if picked != first:
        tail = f"; {LABELS[picked]} is over the budget too, the cheapest" if over else ""
        return (
            f"{est(first)} > {limit}; using {LABELS[picked]} "
            f"(≈ {duration(seconds[picked])}){tail}; {HINT}"
        )
    if not over:
        others = [n for n in seconds if n != picked]
        also = "".join(f"; {est(n)}" for n in others)
        how = "auto" if auto else "model.transfer"
        return f"{est(picked)} for {epochs} epochs <= {limit}{also}; using it ({how})"
    if auto:
        return (
            f"{est(picked)} for {epochs} epochs > {limit}, no cheaper strategy: the run stops "
            f"after the epoch that reaches the budget; {HINT}"
        )
    return (
        f"{est(picked)} for {epochs} epochs > {limit}; model.transfer: {picked} is obeyed and "
        "the run stops after the epoch that reaches the budget; set train.budget_minutes to "
        "change"
    )


def _stderr(text: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, markup=False).print(text)
