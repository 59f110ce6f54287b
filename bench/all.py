"""Every benchmark at its bench-all size, one after the other, each as its own process, then
one summary table: script, verdict, key line, minutes (and the load average at its start).

    .venv/bin/python bench/all.py [--only a,b] [--skip a,b] [--list] [--logs DIR]
    make bench-all [BENCH_ALL_ARGS="--only serve,tune"]

The command line of each script is in BENCHES below (one row per script: edit it there). A
script's verdict comes from its exit code and the `MET: ...` / `NOT MET: ...` lines that
bench/verdict.py's `finish` prints: exit 0 with a MET line is MET, exit 1 with a NOT MET line
is NOT MET, anything else is an ERROR (a crash, no verdict printed, a missing script) or a
TIMEOUT. The runner goes on past failures and exits 1 when any script is not MET (SKIPPED does
not count). `gpu` is SKIPPED ("no CUDA") where torch sees no CUDA device. trainer_vs_lightning
runs as `make bench-lightning LIGHTNING_ARGS=--quick` does: `make .bench-lightning-venv/.installed`
(builds its venv the first time, a few minutes, timed apart and outside the budget; a no-op
after), then the script with that venv's python. Each script's whole output goes to
`--logs` (a fresh temporary folder by default) and to this terminal.

Budget: <= 30 minutes in all on an idle 2-core machine (the `budget` column, minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUDGET_MIN = 30.0
HELPERS = {"all", "verdict", "latency", "mnist_sample"}  # modules, not benchmarks


@dataclass(frozen=True)
class Bench:
    name: str  # bench/NAME.py
    args: tuple[str, ...] = ("--quick",)
    budget: float = 1.0  # minutes on an idle 2-core machine
    owner: str = ""  # who tunes its --quick size (for the lead)
    python: str = ""  # an interpreter of its own (relative to the repository root); "": .venv's
    prepare: tuple[str, ...] = field(default=())  # built first, outside the budget (make TARGET)
    needs_cuda: bool = False
    label: str = ""  # its name in the table, the logs and --only (default: the script's name)

    @property
    def key(self) -> str:
        return self.label or self.name


# One row per benchmark: its bench-all command line and its budget (minutes, idle, 2 cores).
# The budgets add up to 30 on a CPU machine (issue 18 item 5); gpu.py runs only where CUDA is
# available. Each budget is the script's measured --quick time (CPU seconds, user+sys, over
# ~1.6 for the two cores; `/usr/bin/time -v`) with some room; the measured minutes of
# 2026-12-04 are in the comments.
BENCHES: tuple[Bench, ...] = (
    Bench("train_overhead", ("--quick",), 1.0),  # ~0.6
    Bench(  # what `make bench-lightning LIGHTNING_ARGS=--quick` runs, its exit code unwrapped
        "trainer_vs_lightning",
        ("--quick",),
        1.5,  # 15 arm runs (5 rounds of 3): 0.9 min idle (2026-12-04)
        python=".bench-lightning-venv/bin/python",
        prepare=("make", "--no-print-directory", ".bench-lightning-venv/.installed"),
    ),
    Bench("mnist_time_to_97", ("--quick",), 3.0, owner="item 7 helper"),
    Bench("elpv_transfer", ("--quick",), 1.5),  # 0.8 idle (1,000 of the cells)
    Bench("explore_full", ("--quick",), 2.0, owner="item 3 helper"),  # 1.5
    Bench("ingest_scale", ("--quick",), 2.5, owner="item 4 helper"),  # 1.2 idle with re-ingest
    Bench("serve", ("--quick",), 2.0, owner="item 7 helper"),  # ~2 (1 min to build)
    Bench("monitor", ("--quick",), 1.0),  # 0.5 idle
    Bench("tune", ("--quick",), 2.0, owner="item 6 helper"),  # 1.1 idle: 2 arms x 20 seeds
    Bench("bootstrap_report", ("--quick",), 0.5),  # 20 s CPU
    Bench("task_baselines", ("--quick",), 1.0),  # 82 s CPU
    Bench("dense_tasks", ("--quick",), 5.0),  # trees 30 epochs 3.5 + masks 0.6, idle
    Bench("signal_tasks", ("--quick",), 1.5),  # 0.6 idle
    Bench("demo_steps", ("--quick",), 1.0),  # 0.5
    Bench(  # issue 20 item 3: <= 2 min; 102 s idle (2026-12-05)
        "demo_steps", ("--quick", "--task", "text-classification"), 2.0, label="demo_text"
    ),
    Bench(  # issue 20 item 3: <= 1 min; 13 s idle (2026-12-05)
        "demo_steps", ("--quick", "--task", "tabular-classification"), 0.5, label="demo_tabular"
    ),
    Bench("ui", ("--quick",), 1.5),  # the demo (~0.5 idle), evaluate, explain, every page x 21
    Bench("gpu", (), 8.0, owner="lead", needs_cuda=True),
)
VERDICT_LINE = re.compile(r"^(NOT MET|MET): ")


@dataclass
class Outcome:
    bench: Bench
    verdict: str
    key: str
    minutes: float
    load: float


def command(bench: Bench) -> list[str]:
    python = str(ROOT / bench.python) if bench.python else sys.executable
    return [python, str(BENCH / f"{bench.name}.py"), *bench.args]


def has_cuda() -> bool:
    probe = "import torch; print(torch.cuda.is_available())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return out.stdout.strip() == "True"


def _env() -> dict[str, str]:
    """This environment without make's own variables (a `make bench-lightning` started from
    `make bench-all` must not inherit bench-all's command-line variables)."""
    return {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}


def stream(cmd: list[str], log: Path, timeout_s: float) -> tuple[int | None, list[str]]:
    """Run cmd from the repository root, its output to this terminal and to `log`; (exit code,
    or None when it ran past timeout_s and was killed with its children; the output's lines)."""
    lines: list[str] = []
    with log.open("w") as sink:
        sink.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: killed with its children
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            os.killpg(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout_s, kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                sink.write(line)
                lines.append(line.rstrip("\n"))
            code = proc.wait()
        finally:
            watchdog.cancel()
    return (None if timed_out.is_set() else code), lines


def judge(code: int | None, lines: list[str]) -> tuple[str, str]:
    """(verdict, key line) from the exit code and the verdict lines."""
    goals = [line for line in lines if VERDICT_LINE.match(line)]
    missed = [line for line in goals if line.startswith("NOT MET")]
    key = (missed or goals or [""])[0]
    if len(goals) > 1:
        key += f" [+{len(goals) - 1} more goal(s), {len(missed)} not met]"
    tail = next((line for line in reversed(lines) if line.strip()), "")
    if code is None:
        return "TIMEOUT", key or tail
    if code == 0 and goals and not missed:
        return "MET", key
    if code == 1 and missed:
        return "NOT MET", key
    if not goals:
        return f"ERROR (exit {code}, no verdict)", tail
    return f"ERROR (exit {code})", key


def run_one(bench: Bench, logs: Path, cuda: bool | None) -> Outcome:
    load = os.getloadavg()[0]
    script = BENCH / f"{bench.name}.py"
    if bench.needs_cuda and not cuda:
        return Outcome(bench, "SKIPPED: no CUDA", "torch.cuda.is_available() is False", 0.0, load)
    if not script.is_file():
        return Outcome(bench, "ERROR (missing)", f"no bench/{bench.name}.py", 0.0, load)
    print(f"\n=== {bench.key}: {' '.join(command(bench))}  (load {load:.1f})", flush=True)
    if bench.prepare:
        prepare(bench, logs)
    started = time.perf_counter()
    timeout_s = max(3 * bench.budget, bench.budget + 5) * 60
    code, lines = stream(command(bench), logs / f"{bench.key}.log", timeout_s)
    verdict, key = judge(code, lines)
    return Outcome(bench, verdict, key, (time.perf_counter() - started) / 60, load)


def prepare(bench: Bench, logs: Path) -> None:
    """Build what the benchmark needs (its venv: make does nothing when it is up to date),
    outside the benchmark's time."""
    started = time.perf_counter()
    code, _ = stream(list(bench.prepare), logs / f"{bench.key}-prepare.log", 30 * 60)
    minutes = (time.perf_counter() - started) / 60
    print(f"{' '.join(bench.prepare)}: exit {code}, {minutes:.1f} min (outside the budget)")


def summary(outcomes: list[Outcome], wall_min: float) -> None:
    print(f"\n{'=' * 30} bench-all summary {'=' * 30}")
    width = max(len(o.bench.key) for o in outcomes)
    vw = max(len(o.verdict) for o in outcomes)
    print(f"{'script':<{width}}  {'verdict':<{vw}}  {'min':>5} {'budget':>6} {'load':>5}  key line")
    for o in outcomes:
        print(
            f"{o.bench.key:<{width}}  {o.verdict:<{vw}}  {o.minutes:>5.1f} "
            f"{o.bench.budget:>6.1f} {o.load:>5.1f}  {o.key}"
        )
    ran = [o for o in outcomes if not o.verdict.startswith("SKIPPED")]
    met = sum(o.verdict == "MET" for o in ran)
    print(
        f"\n{met} of {len(ran)} MET ({len(outcomes) - len(ran)} skipped); {wall_min:.1f} min in "
        f"all (budget {BUDGET_MIN:.0f} min on 2 idle cores); load average now "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def unlisted() -> list[str]:
    listed = {b.key for b in BENCHES}
    return sorted(
        p.stem for p in BENCH.glob("*.py") if p.stem not in listed and p.stem not in HELPERS
    )


def select(only: str | None, skip: str | None) -> list[Bench]:
    names = {b.key for b in BENCHES}
    chosen = {s.strip() for s in (only or "").split(",") if s.strip()}
    skipped = {s.strip() for s in (skip or "").split(",") if s.strip()}
    if bad := sorted((chosen | skipped) - names):
        raise SystemExit(f"bench/all.py: unknown benchmark(s) {bad}; known: {sorted(names)}")
    return [b for b in BENCHES if (not chosen or b.key in chosen) and b.key not in skipped]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names (bench/NAME.py) to run")
    parser.add_argument("--skip", help="comma-separated names to leave out")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    parser.add_argument("--logs", type=Path, default=None, help="folder for each script's log")
    args = parser.parse_args(argv)
    chosen = select(args.only, args.skip)
    if not chosen:
        raise SystemExit("bench/all.py: --only / --skip left no benchmark to run")
    if args.list:
        for b in chosen:
            print(f"{b.key:<22} {b.budget:>4.1f} min  {' '.join(command(b))}")
        cpu = sum(b.budget for b in chosen if not b.needs_cuda)
        gpu = sum(b.budget for b in chosen if b.needs_cuda)
        print(
            f"{cpu:.1f} min budgeted on a CPU machine (goal <= {BUDGET_MIN:.0f}); "
            f"+{gpu:.1f} min where CUDA is available"
        )
        return 0
    if extra := unlisted():
        print(f"note: bench/ scripts not in bench/all.py's table (not run): {', '.join(extra)}")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="dlw-bench-all-"))
    logs.mkdir(parents=True, exist_ok=True)
    cuda = has_cuda() if any(b.needs_cuda for b in chosen) else None
    started = time.perf_counter()
    outcomes = [run_one(b, logs, cuda) for b in chosen]
    summary(outcomes, (time.perf_counter() - started) / 60)
    print(f"logs: {logs}")
    failed = [o for o in outcomes if o.verdict != "MET" and not o.verdict.startswith("SKIPPED")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
