"""One rank of `dlw train --devices N` (train/distributed.py starts N of these through
torch.distributed.run): join the process group, train, hand rank 0's result back."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlworkflow.train_worker")
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from dlworkflow.errors import DlwError
    from dlworkflow.project import Project
    from dlworkflow.train import distributed

    shard = distributed.init_from_env()
    try:
        Project.load(args.project).train(epochs=args.epochs, resume=args.resume,
                                         progress=shard.is_main and not args.no_progress)
    except DlwError as exc:
        print(f"error (rank {shard.rank}): {exc.render()}", file=sys.stderr)
        return exc.exit_code
    finally:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
