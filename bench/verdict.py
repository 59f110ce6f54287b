"""What every benchmark under bench/ shares: alternating pairs, the spread, the verdict.

    from verdict import Goal, alternate, conditions, finish, spread

    runs = alternate({"dlw": run_dlw, "plain": run_plain}, pairs=5)   # A B, B A, A B, ...
    ratio = [d / p for d, p in zip(runs["dlw"], runs["plain"])]
    print(spread("dlw / plain", ratio))                               # min / median / max
    goal = Goal("dlw / plain wall time", median(ratio), "<=", 1.03)
    finish([goal])        # prints MET / NOT MET per goal and the conditions, exits 1 if one failed

A benchmark imports this as `from verdict import ...` (scripts run from the repository root as
`python bench/NAME.py`, so bench/ is on sys.path). Nothing here imports dlworkflow.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_PAIRS = 5
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


@dataclass(frozen=True)
class Goal:
    """One goal: `value OP bound` (OP is "<=", ">=", "<" or ">"), MET when it holds."""

    name: str
    value: float | None  # None: could not be measured (counts as NOT MET)
    op: str
    bound: float
    unit: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"Goal {self.name!r}: op {self.op!r}, expected one of {list(_OPS)}")

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return bool(_OPS[self.op](self.value, self.bound))

    def line(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4g}{self.unit}"
        extra = f" ({self.detail})" if self.detail else ""
        verdict = "MET" if self.met else "NOT MET"
        return f"{verdict}: {self.name} {shown}, goal {self.op} {self.bound:g}{self.unit}{extra}"


def alternate(
    arms: dict[str, Callable[[], Any]], *, pairs: int = MIN_PAIRS
) -> dict[str, list[Any]]:
    """Run every arm `pairs` times, rotating which goes first, so load hits each alike.

    Two arms: A B, B A, A B, ... Three or more: each round starts one arm later."""
    names = list(arms)
    out: dict[str, list[Any]] = {name: [] for name in names}
    for round_ in range(pairs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            out[name].append(arms[name]())
    return out


def spread(name: str, values: Sequence[float], *, unit: str = "", digits: int = 3) -> str:
    """'name: min a / median b / max c (n=5)'."""
    if not values:
        return f"{name}: no values"
    fmt = f"{{:.{digits}g}}{unit}"
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return (
        f"{name}: min {fmt.format(lo)} / median {fmt.format(mid)} / max {fmt.format(hi)} "
        f"(n={len(values)})"
    )


def ratios(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    """Per-pair ratios top[i] / bottom[i] (the pairs of `alternate`)."""
    return [a / b for a, b in zip(top, bottom, strict=True)]


def conditions() -> str:
    """Date, machine and load average: what the README's 'last results' row records."""
    cores = os.cpu_count() or 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    today = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{today}; {platform.machine()}, {cores} cores; load average {load:.1f}"


def finish(goals: Sequence[Goal]) -> None:
    """Print each goal's MET / NOT MET and the conditions; exit 1 when any goal is not met."""
    print()
    for goal in goals:
        print(goal.line())
    print(f"conditions: {conditions()}")
    if not goals or not all(goal.met for goal in goals):
        sys.exit(1)


def apply_quick(args: Any, quick: dict[str, Any], argv: Sequence[str] | None) -> None:
    """`--quick`: set each of `quick`'s options (name: value) that the command line did not
    give; explicit options win. argv: what the parser read (None: sys.argv[1:])."""
    if not getattr(args, "quick", False):
        return
    given = [a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:])]
    for key, value in quick.items():
        if "--" + key.replace("_", "-") not in given:
            setattr(args, key, value)


@contextmanager
def work_folder(folder: Path | None, prefix: str) -> Iterator[Path]:
    """`folder` when given (kept afterwards), else a temporary one removed at the end: a
    benchmark leaves nothing behind in /tmp (each left ~100 MB)."""
    if folder is not None:
        yield Path(folder)
        return
    made = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)
