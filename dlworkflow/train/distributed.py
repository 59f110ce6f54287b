"""`dlw train --devices N [--nnodes M --node-rank R --rdzv-endpoint HOST:PORT]`: data-parallel
training with torch.distributed, one process per device, launched like torchrun
(`python -m torch.distributed.run`: `--standalone` on one node, the c10d rendezvous on several).

    parent (dlw train --devices 2), one per node
      └─ torch.distributed.run --nproc-per-node 2 -m dlworkflow.train_worker
           ├─ global rank 0: the ledger step, MLflow, checkpoints, the saved model
           └─ the other ranks: compute only
    every node's local rank 0 writes rank 0's result (shared with all ranks) for its parent.

Several nodes (docs/guide/multi-node.md): every node runs `dlw train --nnodes M --node-rank R
--rdzv-endpoint HOST:PORT --devices N` on the same project folder, on a shared filesystem (each
rank reads the split and, on --resume, the checkpoint; global rank 0 writes). The c10d
rendezvous assigns the global ranks: global rank 0 is on whichever node torchrun sorts first,
not necessarily --node-rank 0; whichever node it is on, it alone writes, and it takes the
project's write lock itself (the parents of a multi-node run hold none).

Semantics (chosen so that the same dlworkflow.yaml means the same training on 1 or N
processes, N = nodes x devices): `train.batch_size` is the *global* batch. Every rank draws the
same seeded permutation; each global batch is cut into N nearly equal slices, one per rank,
and each rank's loss is scaled by (its slice / the global batch) x N, so that DDP's gradient
average equals the gradient of the mean loss over the whole global batch, as one process
computes it. A last global batch with fewer samples than ranks is skipped (at most N - 1
samples an epoch). Batch norm: with train.sync_batchnorm (default) on CUDA, SyncBatchNorm
normalises with the whole global batch's statistics, as one process does (torch's
SyncBatchNorm runs on GPUs only: on CPU each rank normalises with its slice's statistics).
The running buffers are rank 0's, broadcast before every validation. Dropout and
augmentation draw per-rank random numbers, and float sums are ordered differently.
Validation is sharded: each rank predicts one slice of the validation split, the outputs are
gathered in order, and every rank computes the metric over the whole split, as one process
would; rank 0's early-stopping decision is broadcast anyway.

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


DEFAULT_RDZV_PORT = 29400  # torchrun's default port of the c10d rendezvous


@dataclass(frozen=True)
class Nodes:
    """Where this node stands in a multi-node run (`dlw train --nnodes ...`).
    rdzv_id: the rendezvous's name, the same on every node (default: the project's name and
    dataset version: train/step.py)."""

    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_id: str | None = None

    @property
    def multi(self) -> bool:
        return self.nnodes > 1

    def torchrun_args(self) -> list[str]:
        """torch.distributed.run's rendezvous flags: --standalone on one node, else c10d.
        (Not --node-rank: the c10d rendezvous assigns the ranks itself, and torchrun warns
        that it ignores the flag; dlw checks it and names the node by it in messages.)"""
        if not self.multi:
            return ["--standalone"]
        return [
            f"--nnodes={self.nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={self.rdzv_endpoint}",
            f"--rdzv-id={self.rdzv_id}",
        ]


def check_nodes(nodes: Nodes) -> None:
    """Clear errors for the node flags, before any process starts."""
    if nodes.nnodes < 1 or not 0 <= nodes.node_rank < nodes.nnodes:
        raise TrainError(
            f"--node-rank {nodes.node_rank} is not a node of --nnodes {nodes.nnodes}.",
            expected=f"--nnodes >= 1 and 0 <= --node-rank < {max(nodes.nnodes, 1)}",
            received=f"--nnodes {nodes.nnodes} --node-rank {nodes.node_rank}",
            fix="--nnodes 2 --node-rank 0 on the first node, --node-rank 1 on the second",
        )
    if not nodes.multi:
        return
    endpoint = nodes.rdzv_endpoint or ""
    host, colon, port = endpoint.rpartition(":")
    if not colon:  # no port: torchrun's default
        host, port = endpoint, str(DEFAULT_RDZV_PORT)
    if not host or not port.isdigit():
        raise TrainError(
            f"--nnodes {nodes.nnodes} needs --rdzv-endpoint HOST:PORT, the address every node "
            "reaches the rendezvous at (one of the nodes; the first one by convention).",
            expected="HOST:PORT, e.g. node001:29400 (the same on every node)",
            received=repr(nodes.rdzv_endpoint),
            fix="--rdzv-endpoint $MASTER_ADDR:29400 (Slurm: the first host of "
            "$SLURM_JOB_NODELIST; Kubernetes: the PyTorchJob's $MASTER_ADDR:$MASTER_PORT)",
        )


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


def gather_rows(part: torch.Tensor, shard: Shard, n: int) -> torch.Tensor:
    """The rows every rank computed for its `eval_slice`, concatenated in rank order (the
    whole split's, in order) on every rank. Slices differ in length by at most one row:
    each is padded to the longest for all_gather, then trimmed."""
    longest = -(-n // shard.world)
    padded = part.new_zeros((longest, *part.shape[1:]))
    padded[: len(part)] = part
    parts = [torch.empty_like(padded) for _ in range(shard.world)]
    torch.distributed.all_gather(parts, padded.contiguous())
    sizes = [len(s) for s in torch.tensor_split(torch.arange(n), shard.world)]
    return torch.cat([p[:size] for p, size in zip(parts, sizes)])


def eval_slice(n: int, shard: Shard) -> torch.Tensor:
    """The validation samples this rank predicts: its tensor_split slice of 0..n-1."""
    return torch.tensor_split(torch.arange(n), shard.world)[shard.rank]


def check_same_resume(state: Any, shard: Shard) -> None:
    """Every rank resumes from the same checkpoint: the digest of its LoopState (epoch,
    weights, shuffle RNG), or of "no checkpoint", is compared with rank 0's, and every rank
    raises the same TrainError when one differs (ranks on nodes that do not share the
    project's filesystem read different or stale checkpoints)."""
    import hashlib

    digest = hashlib.sha256(b"none" if state is None else str(state.epoch).encode())
    if state is not None:
        for name, tensor in sorted(state.model.items()):
            digest.update(name.encode())
            digest.update(_bytes(tensor))
        digest.update(_bytes(state.rng["shuffle"]))
    device = comm_device(shard)
    mine = torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8).to(device)
    main = mine.clone()
    torch.distributed.broadcast(main, src=0)
    differs = torch.tensor([0 if torch.equal(mine, main) else 1], device=device)
    torch.distributed.all_reduce(differs)
    if int(differs.item()):
        raise TrainError(
            f"{int(differs.item())} of {shard.world} ranks read a different checkpoint than "
            "rank 0: a multi-node --resume needs every node to see the same project folder.",
            expected="the same checkpoint (epoch, weights, RNG) on every rank",
            received=f"rank {shard.rank}: epoch {getattr(state, 'epoch', None)}",
            fix="put the project on a filesystem every node mounts (NFS, Lustre, a shared "
            "volume), or copy .dlw/ from the first node to the others before resuming",
        )


def _bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def comm_device(shard: Shard) -> torch.device:
    """Where tensors of a collective live: the rank's GPU under NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", shard.local_rank)
    return torch.device("cpu")


BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def to_sync_batchnorm(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, type]]:
    """Replace every BatchNorm1d/2d/3d in `model` (exactly those classes: a subclass may do
    more) by a SyncBatchNorm holding the same parameters and buffers, in place; what
    `from_sync_batchnorm` needs to put plain ones back."""
    swapped: list[tuple[torch.nn.Module, str, type]] = []
    done: dict[int, torch.nn.Module] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) not in BATCH_NORMS:
                continue
            if id(child) not in done:
                done[id(child)] = _batch_norm_like(torch.nn.SyncBatchNorm, child)
            setattr(parent, name, done[id(child)])
            swapped.append((parent, name, type(child)))
    return swapped


def from_sync_batchnorm(swapped: list[tuple[torch.nn.Module, str, type]]) -> None:
    """Put plain batch norms (their original classes) back, with the SyncBatchNorms'
    current parameters and buffers: the saved and exported model has no SyncBatchNorm."""
    done: dict[int, torch.nn.Module] = {}
    for parent, name, cls in swapped:
        sync = getattr(parent, name)
        if id(sync) not in done:
            done[id(sync)] = _batch_norm_like(cls, sync)
        setattr(parent, name, done[id(sync)])


def _batch_norm_like(cls: type, source: Any) -> torch.nn.Module:
    """A `cls` batch norm with `source`'s settings, holding its very parameters and
    buffers (the same tensors, wherever they are)."""
    norm = cls(
        source.num_features,
        source.eps,
        source.momentum,
        source.affine,
        source.track_running_stats,
    )
    if source.affine:
        norm.weight, norm.bias = source.weight, source.bias
    norm.running_mean, norm.running_var = source.running_mean, source.running_var
    norm.num_batches_tracked = source.num_batches_tracked
    norm.train(source.training)
    return norm


def use_sync_batchnorm(setting: bool, shard: Shard | None, device: torch.device) -> bool:
    """train.sync_batchnorm applies to multi-process runs on CUDA (torch's SyncBatchNorm
    refuses CPU tensors: on CPU each rank keeps its slice's statistics)."""
    return bool(setting) and shard is not None and device.type == "cuda"


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
    nodes: Nodes | None = None,
    budget_minutes: float | None = None,
) -> dict[str, Any]:
    """Run `dlw train` in `devices` processes on this node (of `nodes`); rank 0's result
    (a dict) when all succeed, on every node. init_from: the warm start's folder
    (train/warm_start.py), read by every rank."""
    nodes = nodes or Nodes()
    check_devices(devices)
    check_nodes(nodes)
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
            *nodes.torchrun_args(),
            f"--nproc-per-node={devices}",
            "-m",
            WORKER_MODULE,
            "--project",
            str(root),
        ]
        if epochs is not None:
            command += ["--epochs", str(epochs)]
        if budget_minutes is not None:
            command += ["--budget", repr(float(budget_minutes))]
        if resume:
            command.append("--resume")
        if not progress:
            command.append("--no-progress")
        done = subprocess.run(command, env=env, check=False)
        if done.returncode != 0 or not result_file.exists():
            where = f" on node {nodes.node_rank} of {nodes.nnodes}" if nodes.multi else ""
            raise TrainError(
                f"Distributed training on {devices} processes{where} failed (exit code "
                f"{done.returncode}); the ranks' errors are printed above.",
                expected="every rank to finish",
                received=f"exit code {done.returncode}",
                fix="fix the error above, or run `dlw train` without --devices to see it "
                "in one process; `dlw train --resume` continues after the last epoch",
            )
        return json.loads(result_file.read_text())


def share_from_main(data: dict[str, Any] | None, shard: Shard) -> Any:
    """Rank 0's JSON-able `data` on every rank (as JSON bytes: nothing is pickled)."""
    device = comm_device(shard)
    blob = json.dumps(data, default=str).encode() if shard.is_main else b""
    size = torch.tensor([len(blob)], dtype=torch.long, device=device)
    torch.distributed.broadcast(size, src=0)
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if shard.is_main:
        buffer.copy_(torch.frombuffer(bytearray(blob), dtype=torch.uint8))
    torch.distributed.broadcast(buffer, src=0)
    return json.loads(buffer.cpu().numpy().tobytes().decode())


def warm_start_from_env() -> str | None:
    """A rank's warm start folder, as `launch` handed it down (None: no warm start)."""
    return os.environ.get(INIT_ENV) or None


def write_result(data: dict[str, Any]) -> None:
    """A node's local rank 0 hands rank 0's TrainResult to the node's launching process."""
    path = os.environ.get(RESULT_ENV)
    if path:
        Path(path).write_text(json.dumps(data, default=str))
