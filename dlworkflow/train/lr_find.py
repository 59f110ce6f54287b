"""`dlw lr-find`: the learning-rate range test (Smith 2017; fastai's lr_find).

    result = lr_find(project)            # == Project.lr_find(), `dlw lr-find`

The configured network trains on batches of the TRAIN split only, with a learning rate
growing exponentially from `start` to `end` over `steps` optimizer steps. The test stops
once the running loss (exponential moving average, beta 0.98, bias-corrected) exceeds 4x its
best. The curve is then smoothed without lag (a centred moving average over ~10% of the
steps; an EMA trails the falling loss by decades of learning rate) and the suggestion is the
learning rate at its STEEPEST DESCENT (most negative slope against log10(lr), between the
first 10% of steps and the lowest loss); when that stretch is too short to have a slope, the
lowest loss's learning rate / 10. The plot (loss against lr, log axis) goes to
reports/lr_find.png.

It is not a workflow step: nothing is recorded in the ledger, no model is saved, and the
network's weights (and the random states) are restored afterwards.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlworkflow.errors import TrainError
from dlworkflow.results import StepResult
from dlworkflow.train.data import TensorData
from dlworkflow.train.trainer import (
    LoopConfig,
    _Loop,
    autocast,
    capture_rng,
    make_optimizer,
    resolve_device,
    resolve_precision,
    restore_rng,
)

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

PLOT_FILE = "lr_find.png"
BETA = 0.98  # loss smoothing
DIVERGE = 4.0  # stop when the smoothed loss exceeds this times its best


@dataclass
class LRFindResult(StepResult):
    suggestion: float
    method: str  # "steepest descent" or "lowest loss / 10"
    min_loss_lr: float
    start: float
    end: float
    steps_run: int
    diverged: bool
    plot: str
    lrs: list[float] = field(default_factory=list, repr=False)
    losses: list[float] = field(default_factory=list, repr=False)  # smoothed
    raw_losses: list[float] = field(default_factory=list, repr=False)

    def title(self) -> str:
        return "lr-find"

    def rows(self) -> list[tuple[str, Any]]:
        stop = ", stopped when the loss diverged" if self.diverged else ""
        return [
            ("suggested learning rate", f"{self.suggestion:.2e} ({self.method})"),
            ("lowest loss at", f"{self.min_loss_lr:.2e}"),
            ("tested", f"{self.start:.0e} to {self.end:.0e}: {self.steps_run} steps{stop}"),
            ("plot", self.plot),
            ("to use it", f"set train.learning_rate: {self.suggestion:.2g} in dlworkflow.yaml"),
        ]

    def _repr_html_(self) -> str:
        table = super()._repr_html_()
        try:
            data = base64.b64encode(Path(self.plot).read_bytes()).decode("ascii")
        except OSError:
            return table
        return (
            f"{table}<img alt='{html.escape('loss against learning rate')}' "
            f"src='data:image/png;base64,{data}'/>"
        )


def lr_find(
    project: Workspace,
    *,
    start: float = 1e-7,
    end: float = 1.0,
    steps: int = 100,
    progress: bool = True,
) -> LRFindResult:
    """Run the range test on the project's network and train split; write the plot."""
    from dlworkflow import store
    from dlworkflow.models import create_model
    from dlworkflow.train import strategies
    from dlworkflow.train.progress import count_progress
    from dlworkflow.train.tensors import adopt, input_format, load_train_val, loading_label
    from dlworkflow.train.trainer import seed_everything

    _check_range(start, end, steps)
    cfg = project.config
    split_info = store.read_split_info(project)  # raises StepOrderError before `dlw split`
    from dlworkflow.tasks import task_of

    loop = LoopConfig.from_train_config(
        cfg.train, metric=task_of(cfg.task).default_metric, seed=cfg.seed, task=cfg.task
    )  # the task's loss (and its target facts, below), not classification's
    generator = seed_everything(cfg.seed, threads=cfg.train.threads)
    strategy = strategies.choose(project, cfg.model.name)
    model = create_model(
        cfg.model.name,
        num_classes=len(split_info.classes),
        task=cfg.task,
        **input_format(project),
        **strategy.model_params(cfg.model.name, cfg.model.params),
    )
    with count_progress(loading_label(cfg.task), enabled=progress) as report:
        data = load_train_val(
            project, split_info.classes, report=report, preprocessing=model.preprocessing
        )
    adopt(model, data)  # series: the model normalises with the train split's statistics
    loop = dataclasses.replace(loop, target=data.target)
    groups = None
    if strategy.name in ("finetune", "gradual"):  # the backbone at its discriminative lr
        groups = strategies.discriminative_groups(
            model, learning_rate=loop.learning_rate, factor=cfg.model.backbone_lr_factor
        )
    lrs, raw, _running, diverged = lr_range_test(
        model,
        data.train,
        loop,
        start=start,
        end=end,
        steps=steps,
        generator=generator,
        param_groups=groups,
    )
    smooth = smoothed(raw)
    suggestion, method, min_lr = suggest(lrs, smooth)
    plot = project.paths.reports / PLOT_FILE
    write_plot(plot, lrs, raw, smooth, suggestion=suggestion, method=method)
    return LRFindResult(
        suggestion=suggestion,
        method=method,
        min_loss_lr=min_lr,
        start=start,
        end=end,
        steps_run=len(lrs),
        diverged=diverged,
        plot=str(plot),
        lrs=lrs,
        losses=smooth,
        raw_losses=raw,
    )


def _check_range(start: float, end: float, steps: int) -> None:
    if not (0 < start < end) or steps < 5:
        raise TrainError(
            "The learning-rate range is not a range.",
            expected="0 < start < end and at least 5 steps",
            received=f"start={start}, end={end}, steps={steps}",
            fix="e.g. `dlw lr-find --start 1e-7 --end 1 --steps 100`",
        )


def lr_range_test(
    model: nn.Module,
    data: TensorData,
    cfg: LoopConfig,
    *,
    start: float,
    end: float,
    steps: int,
    generator: torch.Generator | None = None,
    param_groups: list[dict] | None = None,
) -> tuple[list[float], list[float], list[float], bool]:
    """(lrs, raw losses, smoothed losses, diverged) of one exponential sweep; the model's
    state and the random states are restored afterwards. Group lrs keep their ratio to
    cfg.learning_rate (discriminative rates)."""
    _check_range(start, end, steps)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    generator = generator or torch.Generator().manual_seed(cfg.seed)
    saved = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    rng = capture_rng(generator, device)
    original = next(model.parameters()).device
    model.to(device)
    loop = _Loop(model, cfg, device=device, precision=precision, batch_transform=None)
    optimizer = make_optimizer(model, cfg, param_groups)
    scale = [g["lr"] / cfg.learning_rate for g in optimizer.param_groups]
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    avg, best, diverged = 0.0, math.inf, False
    placed = data.place(device, budget=cfg.resident_bytes)
    try:
        model.train()
        while len(lrs) < steps and not diverged:
            order = torch.randperm(len(data), generator=generator)
            for xb, yb in placed.batches(order, cfg.batch_size):
                lr = start * (end / start) ** (len(lrs) / (steps - 1))
                for group, factor in zip(optimizer.param_groups, scale):
                    group["lr"] = lr * factor
                with autocast(precision, device):
                    loss = loop.loss(model(loop.prepare(xb)), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                avg = BETA * avg + (1 - BETA) * value
                smoothed = avg / (1 - BETA ** (len(lrs) + 1))
                lrs.append(lr)
                raw.append(value)
                smooth.append(smoothed)
                best = min(best, smoothed)
                if not math.isfinite(smoothed) or smoothed > DIVERGE * best:
                    diverged = True
                if diverged or len(lrs) >= steps:
                    break
    finally:
        model.load_state_dict(saved)
        model.to(original)
        restore_rng(rng, generator, device)
    return lrs, raw, smooth, diverged


def smoothed(losses: list[float]) -> list[float]:
    """Centred moving average over ~10% of the points (odd window >= 3), edges padded."""
    values = np.asarray(losses, dtype=np.float64)
    window = max(3, len(values) // 10) | 1
    if len(values) < window:
        return values.tolist()
    padded = np.pad(values, window // 2, mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid").tolist()


def suggest(lrs: list[float], smooth: list[float]) -> tuple[float, str, float]:
    """(suggested lr, how it was chosen, lr of the lowest smoothed loss)."""
    losses = np.asarray(smooth, dtype=np.float64)
    finite = np.isfinite(losses)
    lowest = int(np.nanargmin(np.where(finite, losses, np.nan)))
    min_lr = float(lrs[lowest])
    first = max(1, len(lrs) // 10)
    if lowest - first >= 2:
        x = np.log10(np.asarray(lrs[first : lowest + 1]))
        slope = np.gradient(losses[first : lowest + 1], x)
        return float(lrs[first + int(np.argmin(slope))]), "steepest descent", min_lr
    return max(min_lr / 10, float(lrs[0])), "lowest loss / 10", min_lr


def write_plot(
    path: Path,
    lrs: list[float],
    raw: list[float],
    smooth: list[float],
    *,
    suggestion: float,
    method: str,
) -> None:
    """Loss against learning rate (log x), the suggestion marked; written atomically."""
    from dlworkflow.fileio import atomic_write_bytes
    from dlworkflow.plots import new_figure, png_bytes

    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(lrs, raw, color="0.75", linewidth=0.8, label="loss")
    ax.plot(lrs, smooth, color="C0", linewidth=1.8, label="smoothed loss")
    ax.axvline(
        suggestion, color="C3", linestyle="--", label=f"suggestion {suggestion:.1e} ({method})"
    )
    ax.set_xscale("log")
    finite = [v for v in raw + smooth if math.isfinite(v)]
    if finite:  # keep the diverging tail from flattening the curve
        low, high = min(finite), min(max(finite), DIVERGE * min(smooth))
        if high > low:
            ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("learning-rate range test (train split)")
    ax.legend(loc="upper left")
    atomic_write_bytes(path, png_bytes(fig))
