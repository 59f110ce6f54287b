"""One rank of `dlw train --devices N [--nnodes M ...]` (train/distributed.py starts N of these
on each node through torch.distributed.run): join the process group, train, and hand rank 0's
result to every node's launching process."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dlworkflow.train_worker")
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--budget", type=float)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from dlworkflow.errors import DlwError
    from dlworkflow.project import Project
    from dlworkflow.train import distributed
    from dlworkflow.train.step import train

    shard = distributed.init_from_env()
    code = 0
    try:
        project = Project.load(args.project)
        options = {
            "epochs": args.epochs,
            "budget_minutes": args.budget,
            "resume": args.resume,
            "progress": shard.is_main and not args.no_progress,
        }
        # global rank 0 writes, under the project's write lock (its launcher's, inherited on
        # one node; its own on several); the other ranks compute only and write nothing
        result = project.train(**options) if shard.is_main else train(project, **options)
        shared = distributed.share_from_main(
            dataclasses.asdict(result) if result is not None else None, shard
        )
        if shard.local_rank == 0:  # one per node: its launcher returns rank 0's result
            distributed.write_result(shared)
    except DlwError as exc:
        print(f"error (rank {shard.rank}): {exc.render()}", file=sys.stderr)
        code = exc.exit_code
    else:
        # No rank tears its process group down while another still writes (rank 0 saves
        # the model and the ledger after the last collective).
        distributed.barrier(shard)
    finally:
        gc.collect()  # drop the DDP reducer's hold on the group before destroying it
        torch.distributed.destroy_process_group()
    # Skip interpreter finalisation: gloo's C++ threads can still hold tensors there and
    # abort the process ("terminate called without an active exception", SIGABRT) after
    # the work is done. Everything is written and flushed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
