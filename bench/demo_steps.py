"""Wall time of `dlw demo`, step by step: is the whole demo a one-minute demo on 2 cores?

Each repeat runs the command a user runs, `dlw demo DIR` in a fresh temporary folder, as its
own process (start-up and imports included), with the CPU threads the machine has (or
--threads). The demo writes its time per step to DIR/.dlw/demo-times.json (the table it also
prints at its end); this script reads it and prints, per step, the wall seconds of each
repeat, their median and the median CPU seconds (process and children: steadier than wall time
on a busy machine), then the demo's own total, the command's wall time (its total plus start-up)
and the load average. The goal is on the command's wall time: median <= 60 s (GOALS_S: 120 s
for --task text-classification): MET / NOT MET, exit 1 when not met. A run that does not
exit 0 (a FAIL verdict exits 3) is reported and counts as NOT MET.

    .venv/bin/python bench/demo_steps.py [--repeats 1] [--threads 2] [--keep DIR] [--tune] [--quick]
        [--task image-classification | text-classification | tabular-classification | ...]

One repeat by default (--quick, what `make bench-all` runs, is that: about 1 minute on 2 idle
cores): the demo is a whole nine-step run, a single number against an absolute bound, so its
spread needs --repeats 5 (5 minutes), which the bench-all budget leaves out.

--tune times `dlw demo --tune` (the demo with its short hyperparameter study) instead.
--task times another task's demo (`dlw demo --task TASK`; issue 20: text-classification, Rotten
Tomatoes with frozen MiniLM features, <= 2 min; tabular-classification, breast cancer, <= 1 min).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 60.0
GOALS_S = {"text-classification": 120.0}  # other tasks: GOAL_S
sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, finish, spread  # noqa: E402

DLW = Path(sys.executable).parent / "dlw"


def run_once(
    folder: Path, threads: int | None, tune: bool = False, task: str | None = None
) -> tuple[dict, float, int, str]:
    """(the demo's times record, the command's wall seconds, exit code, output tail)."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = (
        (
            [str(DLW), "demo", str(folder)]
            if DLW.exists()
            else [sys.executable, "-m", "dlworkflow", "demo", str(folder)]
        )
        + (["--tune"] if tune else [])
        + (["--task", task] if task else [])
    )
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - start
    times_file = folder / ".dlw" / "demo-times.json"
    times = json.loads(times_file.read_text()) if times_file.is_file() else {}
    return times, wall, out.returncode, (out.stdout + out.stderr)[-2000:]


def table(runs: list[tuple[dict, float, int, str]]) -> list[tuple[str, list[float], float | None]]:
    """(row name, wall seconds per repeat, median CPU seconds): each step by its position
    (explore runs twice)."""
    names = [name for name, _ in runs[0][0].get("steps", [])]
    seen: dict[str, int] = {}
    rows: list[tuple[str, list[float], float | None]] = []
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        label = name if seen[name] == 1 else f"{name} ({seen[name]})"
        cpu = [r[0]["cpu"][i] for r in runs if len(r[0].get("cpu", [])) > i]
        rows.append(
            (
                label,
                [r[0]["steps"][i][1] for r in runs if len(r[0]["steps"]) > i],
                statistics.median(cpu) if cpu else None,
            )
        )
    rows.append(("other (setup, status, printing)", [r[0]["other"] for r in runs], None))
    rows.append(
        (
            "demo total",
            [r[0]["total"] for r in runs],
            statistics.median(sum(r[0].get("cpu", [])) for r in runs),
        )
    )
    rows.append(("start-up (interpreter, imports)", [r[1] - r[0]["total"] for r in runs], None))
    rows.append(("`dlw demo` wall", [r[1] for r in runs], None))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="bench-all size: the defaults (1 repeat)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP/MKL threads of the demo process (default: all cores)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="run in this folder (kept) instead of a temporary one",
    )
    parser.add_argument("--tune", action="store_true", help="time `dlw demo --tune`")
    parser.add_argument(
        "--task", default=None, help="time `dlw demo --task TASK` (default: the MNIST demo)"
    )
    args = parser.parse_args()
    goal_s = GOALS_S.get(args.task or "", GOAL_S)
    what = "`dlw demo --tune`" if args.tune else "`dlw demo`"
    if args.task:
        what = what[:-1] + f" --task {args.task}`"
    runs = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="dlw-demo-bench-") as tmp:
            folder = args.keep or Path(tmp) / "demo"
            times, wall, code, tail = run_once(folder, args.threads, args.tune, args.task)
            print(
                f"repeat {repeat + 1}: {what} exit {code}, {wall:.1f} s, load average "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if code != 0 or not times:
                print(tail)
                finish([Goal(f"{what} exits 0", None, "<=", goal_s, detail=f"exit {code}")])
            runs.append((times, wall, code, tail))
    print(
        f"\n{what} on {os.cpu_count()} CPUs, threads {args.threads or 'all'}, "
        f"{args.repeats} repeat(s); load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'step':<34}"
        + "".join(f"{'run ' + str(i + 1):>8}" for i in range(len(runs)))
        + f"{'median':>9}{'cpu s':>8}"
    )
    for label, values, cpu in table(runs):
        print(
            f"{label:<34}"
            + "".join(f"{v:>8.1f}" for v in values)
            + f"{statistics.median(values):>9.1f}"
            + (f"{cpu:>8.1f}" if cpu is not None else "")
        )
    walls = [r[1] for r in runs]
    print("\n" + spread(f"{what} wall", walls, unit=" s"))
    finish(
        [
            Goal(
                f"{what} wall time on 2 cores (median of {len(walls)})",
                statistics.median(walls),
                "<=",
                goal_s,
                unit=" s",
                detail=f"the demo's own total {statistics.median(r[0]['total'] for r in runs):.1f}"
                " s",
            )
        ]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
