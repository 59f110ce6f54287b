"""Where the prediction log lives when several server processes write it.

Each `dlw serve` process (a worker of `serve.workers`, or a second server on the same project)
holds a slot: an exclusive lock on `.dlw/serve/slots/<n>.lock`, the lowest free n, kept until
the process exits (the kernel drops the lock of a dead process, so a restarted worker takes
the slot back). Slot 0 writes `predictions.jsonl`, slot n `predictions.w<n>.jsonl`; each file
rotates on its own (`.1` newest ... `.N` oldest). No two processes ever append to, or rotate,
the same file. Readers (`dlw monitor`, the report) take every chain and merge by time.

Standard library only: the monitor and the report read these paths without the server's
imports.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

_LIVE = re.compile(r"^predictions(?:\.w(\d+))?\.jsonl$")
_ROTATED = re.compile(r"^predictions(?:\.w(\d+))?\.jsonl\.(\d+)$")


def serve_dir(root: Path) -> Path:
    return Path(root) / ".dlw" / "serve"


def log_path(root: Path, slot: int = 0) -> Path:
    """The live prediction log of `slot` (0: predictions.jsonl)."""
    name = "predictions.jsonl" if slot == 0 else f"predictions.w{slot}.jsonl"
    return serve_dir(root) / name


def log_chains(root: Path) -> list[list[Path]]:
    """Every slot's log files, oldest first within a slot (`.N` ... `.1`, then the live
    file); slots in order. Only files that exist."""
    folder = serve_dir(root)
    if not folder.is_dir():
        return []
    chains: dict[int, dict[int, Path]] = {}  # slot -> {rotation (0: live): path}
    for child in folder.iterdir():
        live, rotated = _LIVE.match(child.name), _ROTATED.match(child.name)
        if not (live or rotated) or not child.is_file():
            continue
        if live:
            chains.setdefault(int(live.group(1) or 0), {})[0] = child
        elif rotated:
            chains.setdefault(int(rotated.group(1) or 0), {})[int(rotated.group(2))] = child
    return [
        [path for _, path in sorted(files.items(), reverse=True)]
        for _, files in sorted(chains.items())
    ]


def log_files(root: Path) -> list[Path]:
    """All prediction log files of every slot (see `log_chains`)."""
    return [path for chain in log_chains(root) for path in chain]


class Slot:
    """The lowest free slot number of this project's server processes, held (an exclusive
    `flock`) until `release()` or the process's exit."""

    def __init__(self, root: Path) -> None:
        folder = serve_dir(root) / "slots"
        folder.mkdir(parents=True, exist_ok=True)
        number = 0
        while True:
            fd = os.open(folder / f"{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                number += 1
                continue
            break
        self.number = number
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __del__(self) -> None:  # a server dropped without close() (tests) frees its slot
        self.release()
