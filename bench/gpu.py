"""GPU training throughput: dlw's trainer with its GPU defaults vs the best hand-written loop
vs PyTorch Lightning's default Trainer, on EfficientNet-Lite0 at 224 px, batch 256.

    python bench/gpu.py [--rounds 5] [--epochs 2] [--batches 16] [--elpv .gpu-data/elpv224.npz]
    python bench/gpu.py --smoke                      # CPU, tiny sizes: checks the script runs
    python bench/gpu.py --prepare-elpv .gpu-data/elpv224.npz   # once, where elpv-dataset is

One process, one GPU. The same network (`create_model("efficientnet_lite0", pretrained=False)`,
the same initial weights) and the same data for every arm:

- `dlw`: `dlworkflow.train.trainer.fit` with LoopConfig's defaults (precision auto: bf16 on a
  GPU that supports it; channels_last auto; compile auto, decided for the run it is told it
  is part of: --declared-epochs; the uint8 split resident on the GPU when it fits), AdamW,
  cosine schedule, a validation pass per epoch;
- `raw`: the best loop one writes by hand: the uint8 data resident on the GPU, a GPU
  permutation, per-batch normalisation, channels-last, bf16 autocast, torch.compile, fused
  AdamW, the same validation pass;
- `raw-eager`: the same without torch.compile (what compiling buys: calibrates dlw's
  compile-when-it-pays-off default, train/device_defaults.py);
- `lightning`: `Trainer(max_epochs=E, accelerator="auto", devices=1)` with its defaults
  (32-bit, sanity validation) fed by `DataLoader(TensorDataset(uint8 x, y), shuffle=True)`,
  normalising in training_step; logger, checkpointing, progress bar and model summary off as
  in bench/trainer_vs_lightning.py (files and printing, not training).

Data: synthetic (random uint8 images, 3 channels, 4 classes) and ELPV (2,624 real 300x300
electroluminescence images of solar cells, grey, 4 classes, resized to 224; prepared once with
--prepare-elpv from the installed package `elpv-dataset`, non-commercial: read for this
measurement only). Arms rotate round by round (A B C D, B C D A, ...); each round runs
--epochs epochs of each arm and times the last one (train + validation, synchronised), so
compile time and warm-up fall outside the throughput; the first epoch's extra seconds of each
compiled arm are printed too. Images/s = training images / epoch seconds.

Goal: dlw / raw >= 0.9 (median over rounds) on each dataset: MET / NOT MET; exit 1 if not.
The last measured anchor (H100): raw 7,628 img/s, Lightning's default 1,997.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from verdict import Goal, finish, spread  # noqa: E402

from dlworkflow.models import create_model  # noqa: E402
from dlworkflow.train.callbacks import Callback  # noqa: E402
from dlworkflow.train.data import TensorData  # noqa: E402
from dlworkflow.train.device_defaults import use_channels_last, use_compile  # noqa: E402
from dlworkflow.train.trainer import LoopConfig, fit, resolve_precision  # noqa: E402

STARTED = time.perf_counter()
GOAL = 0.9
CLASSES = 4
LR, WD = 1e-3, 1e-4
MEAN, STD = 127 / 255, 128 / 255  # Lite0's own normalisation, every channel
ELPV_CARRIED = 1700  # of the 2,624 cells: ~49 MiB compressed at 224 px
DEADLINE_S = 7 * 60  # the script stops starting rounds past this (its budget is 8 minutes)
ANCHOR = "H100 anchor: raw 7,628 img/s, Lightning default 1,997 img/s"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(channels: int, size: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(
        "efficientnet_lite0",
        num_classes=CLASSES,
        in_channels=channels,
        image_size=(size, size),
        input_size=size,
        pretrained=False,
    )


class Split:
    """uint8 images (N, C, H, W) and int64 labels, on the CPU, train and validation."""

    def __init__(self, name: str, x: torch.Tensor, y: torch.Tensor, n_val: int) -> None:
        self.name, self.channels, self.size = name, x.shape[1], x.shape[-1]
        self.x_train, self.y_train = x[n_val:], y[n_val:]
        self.x_val, self.y_val = x[:n_val], y[:n_val]

    def tensors(self) -> tuple[TensorData, TensorData]:
        m, s = [MEAN] * self.channels, [STD] * self.channels
        return (
            TensorData(self.x_train, self.y_train, m, s),
            TensorData(self.x_val, self.y_val, m, s),
        )


def synthetic(n_train: int, n_val: int, size: int) -> Split:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_train + n_val, 3, size, size), dtype=torch.uint8, generator=g)
    y = torch.randint(0, CLASSES, (n_train + n_val,), generator=g)
    return Split("synthetic", x, y, n_val)


def elpv(path: Path, n_train: int, n_val: int, size: int) -> Split | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as pack:
        x, y = pack["x"], pack["y"]
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    if x.shape[-1] != size:  # --smoke: shrink
        x = (
            F.interpolate(torch.from_numpy(x[:, None]).float(), size=(size, size))
            .byte()
            .numpy()[:, 0]
        )
    n = min(len(y), n_train + n_val)
    reps = -(-(n_train + n_val) // n)  # repeat to the batch count asked for (epochs stay equal)
    xt = torch.from_numpy(np.ascontiguousarray(x[:n]))[:, None].repeat(reps, 1, 1, 1)
    yt = torch.from_numpy(y[:n].astype(np.int64)).repeat(reps)
    return Split("elpv", xt[: n_train + n_val], yt[: n_train + n_val], n_val)


def prepare_elpv(out: Path, *, size: int = 224, limit: int = ELPV_CARRIED) -> None:
    """A seeded random `limit` of the ELPV cells, grey, resized to `size`, as a compressed
    .npz (x uint8 (N, size, size), y int64): what travels to the GPU machine (whose working
    tree is limited to 64 MiB)."""
    from PIL import Image

    from dlworkflow.datasets.elpv import LABELS, package_data_dir, read_labels

    names = list(LABELS.values())
    rows = read_labels(package_data_dir())
    keep = np.random.default_rng(0).permutation(len(rows))[:limit]
    rows = [rows[i] for i in sorted(keep)]
    x = np.stack(
        [
            np.asarray(Image.open(r["path"]).convert("L").resize((size, size), Image.BILINEAR))
            for r in rows
        ]
    )
    y = np.array([names.index(r["label"]) for r in rows], dtype=np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=x, y=y)
    print(f"wrote {out}: {x.shape} uint8, {out.stat().st_size / 2**20:.1f} MiB")


class Enough(Exception):
    """Raised by the epoch timer to end a dlw round after its epochs."""


class EpochTimer(Callback):
    def __init__(self, device: torch.device, epochs: int) -> None:
        self.device, self.epochs, self.seconds = device, epochs, []
        self.t0 = 0.0

    def on_epoch_start(self, state: Any) -> None:
        sync(self.device)
        self.t0 = time.perf_counter()

    def on_epoch_end(self, state: Any) -> None:
        sync(self.device)
        self.seconds.append(time.perf_counter() - self.t0)
        if len(self.seconds) >= self.epochs:
            raise Enough


def dlw_arm(split: Split, args: argparse.Namespace, device: torch.device) -> Callable:
    model = make_model(split.channels, split.size, seed=0)
    train, val = split.tensors()
    cfg = LoopConfig(
        epochs=args.declared_epochs,
        batch_size=args.batch,
        learning_rate=LR,
        weight_decay=WD,
        patience=10**6,
        device=str(device),
    )

    def run() -> list[float]:
        timer = EpochTimer(device, args.epochs)
        with contextlib.suppress(Enough):
            fit(model, train, val, cfg, callbacks=[timer])
        return timer.seconds

    steps = args.declared_epochs * (len(train) // args.batch)
    run.settings = (  # type: ignore[attr-defined]
        f"precision {resolve_precision('auto', device)}, "
        f"channels_last {use_channels_last('auto', device, model)}, "
        f"compile {use_compile('auto', device, total_steps=steps)} "
        f"(declared run: {args.declared_epochs} epochs, {steps} steps)"
    )
    return run


def raw_arm(
    split: Split, args: argparse.Namespace, device: torch.device, *, compiled: bool
) -> Callable:
    model = make_model(split.channels, split.size, seed=0).to(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD, fused=cuda)
    x, y = split.x_train.to(device), split.y_train.to(device)
    xv, yv = split.x_val.to(device), split.y_val.to(device)
    g = torch.Generator(device=device).manual_seed(0)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)
    fmt = torch.channels_last if cuda else torch.contiguous_format

    def prep(xb: torch.Tensor) -> torch.Tensor:
        return xb.float().div_(255).sub_(MEAN).div_(STD).contiguous(memory_format=fmt)

    def epoch() -> float:
        sync(device)
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(y), device=device, generator=g)
        for i in range(0, len(y) - args.batch + 1, args.batch):
            idx = perm[i : i + args.batch]
            with amp:
                loss = F.cross_entropy(forward(prep(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode(), amp:
            hits = sum(
                (forward(prep(xv[i : i + 512])).argmax(1) == yv[i : i + 512]).sum()
                for i in range(0, len(yv), 512)
            )
        float(hits)  # the validation result, as every arm computes one
        sync(device)
        return time.perf_counter() - t0

    def run() -> list[float]:
        return [epoch() for _ in range(args.epochs)]

    run.settings = f"bf16 {cuda}, channels_last {cuda}, compile {compiled}, fused AdamW {cuda}"  # type: ignore[attr-defined]
    return run


def lightning_arm(split: Split, args: argparse.Namespace, device: torch.device) -> Callable | None:
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl  # type: ignore[no-redef]
        except ImportError:
            return None
    from torch.utils.data import DataLoader, TensorDataset

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = make_model(split.channels, split.size, seed=0)

        def training_step(self, batch: Any, _i: int) -> torch.Tensor:
            xb, yb = batch
            return F.cross_entropy(self.net(xb.float().div(255).sub(MEAN).div(STD)), yb)

        def validation_step(self, batch: Any, _i: int) -> None:
            xb, yb = batch
            logits = self.net(xb.float().div(255).sub(MEAN).div(STD))
            self.log("val_acc", (logits.argmax(1) == yb).float().mean())

        def configure_optimizers(self) -> Any:
            return torch.optim.AdamW(self.parameters(), lr=LR, weight_decay=WD)

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.t0 = self.end = 0.0

        def on_train_epoch_start(self, *_: Any) -> None:
            sync(device)
            self.t0 = time.perf_counter()

        def _stamp(self) -> None:
            sync(device)
            self.end = time.perf_counter()

        def on_validation_epoch_end(self, trainer: Any, *_: Any) -> None:
            if not trainer.sanity_checking:
                self._stamp()

        def on_train_epoch_end(self, *_: Any) -> None:
            self._stamp()
            self.seconds.append(self.end - self.t0)

    module = Module()
    train = DataLoader(
        TensorDataset(split.x_train, split.y_train), batch_size=args.batch, shuffle=True
    )
    val = DataLoader(TensorDataset(split.x_val, split.y_val), batch_size=512)

    def run() -> list[float]:
        timer = Timer()
        trainer = pl.Trainer(
            max_epochs=args.epochs,
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer],
        )
        trainer.fit(module, train, val)
        return timer.seconds

    run.settings = (
        f"Lightning {pl.__version__} defaults: 32-bit, DataLoader(shuffle=True), workers 0"  # type: ignore[attr-defined]
    )
    return run


def measure(
    split: Split, args: argparse.Namespace, device: torch.device, *, deadline: float
) -> dict[str, list[float]]:
    """Images/s of each arm's last epoch per round, arms rotated round by round; no round
    starts past `deadline` seconds of the script (after the first)."""
    makers: dict[str, Callable[[], Callable | None]] = {
        "dlw": lambda: dlw_arm(split, args, device),
        "raw": lambda: raw_arm(split, args, device, compiled=not args.smoke),
        "raw-eager": lambda: raw_arm(split, args, device, compiled=False),
        "lightning": lambda: lightning_arm(split, args, device),
    }
    arms: dict[str, Callable] = {}
    failed: set[str] = set()
    for name, make in makers.items():
        try:
            arm = make()
        except Exception as exc:
            print(f"  {name:<10} could not be built: {type(exc).__name__}: {str(exc)[:500]}")
            traceback.print_exc(limit=8)
            continue
        if arm is not None:
            arms[name] = arm
    light = arms.get("lightning")
    if light is not None:
        arms["lightning"] = light
    print(
        f"\n{split.name}: {len(split.y_train)} train / {len(split.y_val)} val images, "
        f"{split.channels}x{split.size}x{split.size}, batch {args.batch}"
    )
    for name, run in arms.items():
        print(f"  {name:<10} {run.settings}")
    if light is None:
        print("  lightning  not installed here: arm skipped")
    rates: dict[str, list[float]] = {name: [] for name in arms}
    names = list(arms)
    for r in range(args.rounds):
        if time.perf_counter() - STARTED > deadline and r >= 1:
            print(f"  past {deadline:.0f} s of the script: stopped after {r} round(s)")
            break
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if name in failed:
                continue
            try:
                seconds = arms[name]()
            except Exception as exc:  # one arm's failure must not lose the others' figures
                failed.add(name)
                print(f"  {name:<10} FAILED: {type(exc).__name__}: {str(exc)[:500]}")
                traceback.print_exc(limit=8)
                continue
            rates[name].append(len(split.y_train) // args.batch * args.batch / seconds[-1])
            if r == 0 and len(seconds) > 1:
                extra = seconds[0] - seconds[-1]
                print(
                    f"  {name:<10} first epoch {seconds[0]:.1f} s, steady {seconds[-1]:.2f} s "
                    f"(warm-up/compile {extra:.1f} s = {extra / seconds[-1] * args.batches:.0f} "
                    "steady steps)"
                )
    return rates


def report(rates: dict[str, list[float]], name: str) -> float | None:
    print(f"\n{name}: images/s per round")
    for arm, values in rates.items():
        print("  " + spread(f"{arm:<10}", values, digits=5))

    def ratio(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates.get(a, []), rates.get(b, []))]

    print("  " + spread("dlw / raw ", ratio("dlw", "raw")))
    print("  " + spread("dlw / lightning", ratio("dlw", "lightning")))
    print("  " + spread("raw compiled / eager", ratio("raw", "raw-eager")))
    main = ratio("dlw", "raw")
    return statistics.median(main) if main else None


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--epochs", type=int, default=2, help="epochs per arm per round; the last is timed"
    )
    p.add_argument("--batches", type=int, default=16, help="training batches an epoch")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument(
        "--declared-epochs",
        type=int,
        default=400,
        help="the run length dlw is told (its compile default depends on it)",
    )
    p.add_argument("--elpv", type=Path, default=Path(".gpu-data/elpv224.npz"))
    p.add_argument("--datasets", default="synthetic,elpv")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, no compile")
    p.add_argument("--prepare-elpv", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:  # --rounds stays the caller's (the test suite runs one)
        args.epochs, args.batches, args.batch, args.size = 1, 2, 4, 32
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.prepare_elpv is not None:
        prepare_elpv(args.prepare_elpv)
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if device.type == "cpu" and not args.smoke:
        print("NOT MET: no CUDA device here; bench/gpu.py measures a GPU (--smoke runs on a CPU)")
        return 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)"
    print(f"{name}; torch {torch.__version__}; {ANCHOR}")
    n_train, n_val = (
        args.batches * args.batch,
        max(args.batch, 2 * args.batch if not args.smoke else 8),
    )
    goals = []
    datasets = args.datasets.split(",")
    for which in datasets:
        split = (
            synthetic(n_train, n_val, args.size)
            if which == "synthetic"
            else elpv(args.elpv, n_train, n_val, args.size)
        )
        if split is None:
            print(f"\n{which}: {args.elpv} not found (make it with --prepare-elpv): skipped")
            goals.append(Goal(f"{which} dlw / raw images/s", None, ">=", GOAL, detail="no data"))
            continue
        torch._dynamo.reset()  # each dataset's arms compile afresh, as in their own process
        deadline = DEADLINE_S * (len(goals) + 1) / len(datasets)  # each dataset its share
        ratio = report(measure(split, args, device, deadline=deadline), which)
        goals.append(Goal(f"{which} dlw / raw images/s (median)", ratio, ">=", GOAL))
    if args.smoke:
        print("\nsmoke run on a CPU at tiny sizes: not the goal's conditions, no verdict")
        for goal in goals:
            print(f"  (would be) {goal.line()}")
        return 0
    finish(goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
