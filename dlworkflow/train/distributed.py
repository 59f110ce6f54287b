"""`dlw train --devices N`: data-parallel training with torch.distributed, one process per
device, launched like torchrun (`python -m torch.distributed.run --standalone`).

    parent (dlw train --devices 2)
      └─ torch.distributed.run --standalone --nproc_per_node 2 -m dlworkflow.train_worker
           ├─ rank 0: the ledger step, MLflow, checkpoints, the saved model, the result file
           └─ rank 1: computes only

Semantics (chosen so that the same dlworkflow.yaml means the same training on 1 or N
devices): `train.batch_size` is the *global* batch. Every rank draws the same seeded
permutation; each global batch is cut into N nearly equal slices, one per rank, and each
rank's loss is scaled by (its slice / the global batch) x N, so that DDP's gradient average
equals the gradient of the mean loss over the whole global batch, as one process computes
it. A last global batch with fewer samples than ranks is skipped (at most N - 1 samples an
epoch). What differs from one process: batch-norm statistics come from each rank's slice
(the running buffers are rank 0's, broadcast before every validation), dropout and
augmentation draw per-rank random numbers, and float sums are ordered differently.
Validation runs on every rank over the whole validation split, so every rank sees the same
metric; rank 0's early-stopping decision is broadcast anyway.

Backends: NCCL on CUDA (device = LOCAL_RANK), gloo on CPU (threads split between ranks).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlworkflow.errors import TrainError

RESULT_ENV = "DLW_RESULT_FILE"
INIT_ENV = "DLW_TRAIN_INIT_FROM"  # the warm start's folder, handed to every rank
WORKER_MODULE = "dlworkflow.train_worker"


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel run."""

    rank: int
    world: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_order(self, order: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, list[int]]:
        """This rank's samples, global batch by global batch, and the global batch sizes.

        Global batch j is order[j*b:(j+1)*b]; this rank takes its tensor_split slice. Slices
        of one batch differ in size by at most one, so every rank has the same number of
        batches; a last batch with fewer samples than ranks is dropped.
        """
        pieces, sizes = [], []
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) < self.world:
                break
            pieces.append(torch.tensor_split(batch, self.world)[self.rank])
            sizes.append(len(batch))
        return (torch.cat(pieces) if pieces else order[:0]), sizes


def current() -> Shard | None:
    """The Shard of this process when it runs inside an initialised process group of > 1."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    world = torch.distributed.get_world_size()
    if world < 2:
        return None
    return Shard(
        rank=torch.distributed.get_rank(),
        world=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_from_env() -> Shard:
    """Join the process group that torch.distributed.run set up (RANK, WORLD_SIZE, ...)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    torch.distributed.init_process_group(backend=backend)
    return Shard(
        rank=torch.distributed.get_rank(),
        world=torch.distributed.get_world_size(),
        local_rank=local_rank,
    )


def device_for(shard: Shard | None, device: torch.device) -> torch.device:
    """A CUDA rank trains on cuda:LOCAL_RANK."""
    if shard is not None and device.type == "cuda":
        return torch.device("cuda", shard.local_rank)
    return device


def barrier(shard: Shard | None) -> None:
    if shard is not None:
        torch.distributed.barrier()


@contextlib.contextmanager
def main_first(shard: Shard | None) -> Iterator[None]:
    """Rank 0 runs the block first (say, to write a cache); the others run it after."""
    if shard is not None and not shard.is_main:
        torch.distributed.barrier()
    yield
    if shard is not None and shard.is_main:
        torch.distributed.barrier()


def sum_all(value: torch.Tensor, shard: Shard | None) -> torch.Tensor:
    """The sum of `value` over all ranks (the value itself without a process group)."""
    if shard is not None:
        value = value.clone()
        torch.distributed.all_reduce(value)
    return value


def from_main(flag: bool, shard: Shard | None, device: torch.device) -> bool:
    """Rank 0's value of `flag` on every rank (keeps early stopping in step)."""
    if shard is None:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())


def sync_buffers(model: torch.nn.Module, shard: Shard | None) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every rank."""
    if shard is None:
        return
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer, src=0)


def wrap(
    model: torch.nn.Module, shard: Shard, device: torch.device, *, find_unused: bool
) -> torch.nn.parallel.DistributedDataParallel:
    """DistributedDataParallel around `model` (which keeps its own identity and state)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def check_devices(devices: int) -> None:
    if devices < 1:
        raise TrainError(
            f"--devices must be at least 1, got {devices}.",
            expected="1 or more",
            received=str(devices),
            fix="--devices 2",
        )
    if torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise TrainError(
            f"--devices {devices} asks for more GPUs than this machine has.",
            expected=f"at most {torch.cuda.device_count()}",
            received=str(devices),
            fix=f"--devices {torch.cuda.device_count()}",
        )


def launch(
    root: Path,
    *,
    devices: int,
    epochs: int | None,
    resume: bool,
    progress: bool,
    init_from: str | Path | None = None,
) -> dict[str, Any]:
    """Run `dlw train` in `devices` processes; rank 0's result (a dict) when all succeed.
    init_from: the warm start's folder (train/warm_start.py), read by every rank."""
    check_devices(devices)
    with tempfile.TemporaryDirectory(prefix="dlw-ddp-") as tmp:
        result_file = Path(tmp) / "result.json"
        env = dict(os.environ)
        env[RESULT_ENV] = str(result_file)
        env.pop(INIT_ENV, None)
        if init_from is not None:
            env[INIT_ENV] = str(init_from)
        if not torch.cuda.is_available():  # CPU ranks share the cores (train.threads too)
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={devices}",
            "-m",
            WORKER_MODULE,
            "--project",
            str(root),
        ]
        if epochs is not None:
            command += ["--epochs", str(epochs)]
        if resume:
            command.append("--resume")
        if not progress:
            command.append("--no-progress")
        done = subprocess.run(command, env=env, check=False)
        if done.returncode != 0 or not result_file.exists():
            raise TrainError(
                f"Distributed training on {devices} processes failed (exit code "
                f"{done.returncode}); the ranks' errors are printed above.",
                expected="every rank to finish",
                received=f"exit code {done.returncode}",
                fix="fix the error above, or run `dlw train` without --devices to see it "
                "in one process; `dlw train --resume` continues after the last epoch",
            )
        return json.loads(result_file.read_text())


def warm_start_from_env() -> str | None:
    """A rank's warm start folder, as `launch` handed it down (None: no warm start)."""
    return os.environ.get(INIT_ENV) or None


def write_result(data: dict[str, Any]) -> None:
    """Rank 0 hands its TrainResult to the launching process."""
    path = os.environ.get(RESULT_ENV)
    if path:
        Path(path).write_text(json.dumps(data, default=str))
