"""Trials to reach a target validation accuracy: TPE + pruning vs random search without
pruning, the same budget of trials, several sampler seeds.

One project per job in a temporary folder goes through the workflow as a user runs it
(`Project.init`, `define`, `ingest("builtin:digits")`, the default 70/15/15 `split`); then, for
each seed, every arm runs one study, in an order that rotates with the seed (A B C, B C A,
C A B, ...) so that machine load hits the arms alike. An arm is SAMPLER:STARTUP:PRUNER:

  random:0:none   tune.sampler random, tune.pruner none (every trial trains all its epochs)
  tpe:S:median    tune.sampler tpe (seeded, multivariate, S random trials first), tune.pruner
                  median (after S complete trials, a trial below the median of earlier trials
                  at the same epoch is stopped after the warm-up epoch); asha: successive
                  halving (the top third of each rung goes on)

The default arms are random search, TPE with dlw's shipped `tune:` defaults, and TPE with
5 startup trials and median pruning (the defaults before issue 18), when they differ.

Trials train with the project's `train:` settings as `dlw init` writes them, which since
issue 18 include the weight average (train.ema_decay 0.9): it changes the problem, not the
samplers (TPE 8.50 / random 14.40 mean trials with it, 6.60 / 14.00 without, same 10 seeds:
0.59 vs 0.47, both within the +-0.15 of 10 seeds). `--ema-decay none` runs the problem
without it.

All run the engine `dlw tune` runs (dlworkflow.train.tune.study.optimize -> trial.run_one ->
trial.run_trial: the train step's own build and loop on a config view, an MLflow child run per
trial), one worker, `--trials` trials of `--epochs` epochs each, over the same search space
(SPACE below: learning rate log-uniform 1e-5..1e-1, batch size, weight decay, channels). The
sampler seed is the seed; each trial's training seed is the project's (fixed), so the arms
differ only in what they sample and prune.

For each study: the trials (in trial order, pruned ones included) up to and including the
first complete trial whose best validation accuracy is >= `--target`, and the epochs trained
up to that point (pruning saves epochs: the real cost). A study stops at that trial: what
follows cannot change either number. A study that never reaches the target shows ">B" and
counts as B + 1 trials (and all its epochs) in the mean, a lower bound. The budget is 20
trials (dlw's tune.trials); the same studies cut at 12 (`--also`: the samplers and pruners never
read the budget) are reported too. The goal: mean trials of the goal arm (dlw's defaults) /
mean trials of random search <= 0.5, with the 20-trial budget.

Why the ratio has a floor: TPE's first S trials ARE random search. With p the share of random
configurations that reach the target (estimated from every random-search trial run here), a
random study needs E_R = sum_{k=0..B} (1-p)^k trials on average (B the budget, a miss counted
as B + 1), and TPE at least sum_{k=0..S} (1-p)^k even if its first modelled trial always hit.
The script prints p, the distribution of random trials' validation accuracy, and that floor.

Results are counts, not timings, so jobs may run side by side (`--jobs 2`: two processes of
threads/2 training threads, each with its own project and its share of the seeds); with the
same threads per job they repeat exactly from run to run. The sealed test set is never read
(the script checks the ledger).

    python bench/tune.py [--seeds 0-9] [--trials 20] [--also 12] [--epochs 3] [--target 0.98]
                         [--arms random:0:none,tpe:2:median,...] [--jobs 2] [--threads 2]
    python bench/tune.py --quick      # bench-all: the same without the tpe:5:median arm
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from verdict import Goal, finish, spread  # noqa: E402

SPACE: dict[str, dict[str, Any]] = {
    "train.learning_rate": {"type": "log_uniform", "low": 1e-5, "high": 1e-1},
    "train.batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "train.weight_decay": {"type": "log_uniform", "low": 1e-6, "high": 1e-1},
    "model.params.channels": {"type": "categorical", "choices": [[4, 8], [8, 16]]},
}
RANDOM = "random:0:none"
BEFORE = "tpe:5:median"  # the tune: defaults before issue 18
GOAL_RATIO = 0.5


def shipped_arm() -> str:
    """dlw's `tune:` defaults as an arm."""
    from dlworkflow.config import Tune

    tune = Tune()
    return f"{tune.sampler}:{tune.startup_trials}:{tune.pruner}"


def parse_arm(arm: str) -> dict[str, Any]:
    sampler, startup, pruner = arm.split(":")
    return {
        "tune.sampler": sampler,
        "tune.startup_trials": int(startup),
        "tune.pruner": pruner,
    }


def setup(root: Path, args: argparse.Namespace, threads: int) -> Any:
    from dlworkflow.project import Project

    project = Project.init(root, name="bench-tune")
    project.update_config(
        {
            "data.source": "builtin:digits",
            "train.threads": threads,
            "model.name": "small_cnn",
            "model.params": {"channels": [8, 16], "convs_per_block": 1},
            "tune.space": SPACE,
            "tune.epochs": args.epochs,
            "tune.trials": args.trials,
            "tune.warmup_epochs": 1,
            "tune.workers": 1,
            **ema_setting(args.ema_decay),
        }
    )
    project.define(
        metric="accuracy",
        target=args.target,
        objective="benchmark: trials to reach a validation accuracy with dlw tune",
    )
    project.ingest(progress=False)
    project.split()
    return project


def ema_setting(value: str) -> dict[str, Any]:
    """--ema-decay: nothing for "shipped" (the project keeps what `dlw init` wrote)."""
    if value == "shipped":
        return {}
    return {"train.ema_decay": None if value == "none" else float(value)}


class Reached(Exception):
    """Raised by the study callback at the first complete trial >= target: stop the study."""


def run_study(project: Any, arm: str, seed: int, target: float) -> Any:
    """One study of `arm` with sampler seed `seed`, to the target or its budget."""
    from dlworkflow.train.tune import study as study_mod

    project.update_config({**parse_arm(arm), "tune.seed": seed})
    settings = study_mod.settings_for(project)

    def stop(study: Any, trial: Any) -> None:
        if trial.state.name == "COMPLETE" and trial.value is not None and trial.value >= target:
            raise Reached

    with contextlib.suppress(Reached):
        study_mod.optimize(project, settings, callbacks=[stop])
    return study_mod.load(settings)


def trials_to_target(study: Any, target: float) -> dict[str, Any]:
    """The first complete trial >= target (1-based; None: never), each trial's epochs up to
    it, and every complete value."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    hit = None
    for i, t in enumerate(trials, start=1):
        if t.state.name == "COMPLETE" and t.value is not None and t.value >= target:
            hit = i
            break
    done = [t.value for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    return {
        "hit": hit,
        "trial_epochs": [len(t.intermediate_values) for t in trials[: hit or len(trials)]],
        "best": max(done) if done else None,
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "values": done,
        "seconds": sum(t.duration.total_seconds() for t in trials if t.duration),
    }


def at_budget(row: dict[str, Any], budget: int) -> tuple[int | None, int, int]:
    """(trials to target or None, trials counted: a miss is budget + 1, epochs) had the
    study been given `budget` trials (the samplers and pruners never read the budget)."""
    hit = row["hit"] if row["hit"] is not None and row["hit"] <= budget else None
    return hit, hit or budget + 1, sum(row["trial_epochs"][: hit or budget])


def run_job(job: int, seeds: list[int], args: argparse.Namespace, root: str) -> list[dict]:
    """Set up a project and run every arm for each of `seeds`, rotating the arms' order."""
    threads = max(1, args.threads // args.jobs)
    project = setup(Path(root) / f"job{job}", args, threads)
    arms = args.arm_list
    rows = []
    for seed in seeds:
        shift = seed % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            t0 = time.perf_counter()
            row = {
                "arm": arm,
                "seed": seed,
                **trials_to_target(run_study(project, arm, seed, args.target), args.target),
            }
            rows.append(row)
            print(
                f"  [job {job}] {arm:<14} seed {seed}: to target {row['hit'] or '-'} "
                f"({sum(row['trial_epochs'])} epochs, {row['pruned']} pruned, "
                f"best {row['best'] or float('nan'):.4f}; "
                f"{time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    if project.ledger.test_reads():
        raise SystemExit(f"job {job}: the sealed test set was read")
    return rows


def run_all(args: argparse.Namespace, seeds: list[int], root: Path) -> list[dict]:
    shares = [seeds[j :: args.jobs] for j in range(args.jobs)]
    if args.jobs == 1:
        return run_job(0, seeds, args, str(root))
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs) as pool:
        parts = pool.starmap(
            run_job, [(j, share, args, str(root)) for j, share in enumerate(shares) if share]
        )
    return [row for part in parts for row in part]


def expected_trials(p: float, until: int) -> float:
    """E[min(G, until + 1)] for G geometric with success p: sum_{k=0..until} (1-p)^k."""
    return sum((1.0 - p) ** k for k in range(until + 1))


def arm_means(rows: list[dict], arm: str, budget: int) -> tuple[float, float]:
    """Mean trials (a miss: budget + 1) and mean epochs to the target of `arm`."""
    counted = [at_budget(r, budget) for r in rows if r["arm"] == arm]
    return statistics.mean(c[1] for c in counted), statistics.mean(c[2] for c in counted)


def arm_summary(rows: list[dict], arm: str, budget: int) -> list[str]:
    mine = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["seed"])
    counted = [at_budget(r, budget) for r in mine]
    shown = " ".join(str(hit) if hit else f">{budget}" for hit, _, _ in counted)
    reached = sum(hit is not None for hit, _, _ in counted)
    trials, epochs = arm_means(rows, arm, budget)
    return [
        f"{arm}: trials to target per seed {shown}; reached {reached}/{len(mine)}",
        "  " + spread("trials to target", [c[1] for c in counted]),
        "  " + spread("epochs to target", [c[2] for c in counted]),
        f"  mean trials {trials:.2f}, mean epochs {epochs:.1f}",
    ]


def random_landscape(rows: list[dict], args: argparse.Namespace) -> float:
    """Print the distribution of random search's trials and p, the share >= target."""
    values = [v for r in rows if r["arm"] == RANDOM for v in r["values"]]
    if not values:
        print("no complete random-search trials")
        return 0.0
    p = sum(v >= args.target for v in values) / len(values)
    edges = [0.0, 0.5, 0.9, 0.95, 0.97, args.target, 0.985, 0.99, 1.01]
    edges = sorted(set(edges))
    bins = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        n = sum(lo <= v < hi for v in values)
        bins.append(f"[{lo:g}, {min(hi, 1.0):g}{']' if hi > 1 else ')'}: {n}")
    print(f"random search, every trial ({len(values)}): val accuracy " + ", ".join(bins))
    print(f"share of random configurations >= {args.target}: p = {p:.3f}")
    return p


def floors(p: float, args: argparse.Namespace, budget: int) -> list[str]:
    """What p implies: random search's expected trials and each TPE arm's lowest ratio."""
    e_random = expected_trials(p, budget)
    lines = [
        f"  p = {p:.3f}: random search needs E_R = {e_random:.2f} trials on average "
        f"(a miss = {budget + 1})"
    ]
    for arm in args.arm_list:
        startup = parse_arm(arm)["tune.startup_trials"]
        if arm == RANDOM or startup >= budget:
            continue
        floor = expected_trials(p, startup)
        lines.append(
            f"  {arm}: its {startup} startup trials are random; even if its first modelled "
            f"trial always hit: >= {floor:.2f} trials, ratio >= {floor / e_random:.2f}"
        )
    return lines


def parse_seeds(text: str) -> list[int]:
    if "-" in text and "," not in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",") if s.strip()]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--seeds", default="0-9", help="0-9 or 0,1,2")
    p.add_argument("--trials", type=int, default=20, help="budget (dlw's tune.trials)")
    p.add_argument(
        "--also", default="12", help="smaller budgets to report too (the same studies, cut)"
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--target", type=float, default=0.98)
    p.add_argument("--threads", type=int, default=2, help="training threads, all jobs together")
    p.add_argument("--jobs", type=int, default=2, help="processes, each with its own seeds")
    p.add_argument("--arms", default=None, help="SAMPLER:STARTUP:PRUNER,... (random first)")
    p.add_argument("--goal-arm", default=None, help="default: dlw's tune: defaults")
    p.add_argument(
        "--quick", action="store_true", help="bench-all: random search and dlw's defaults only"
    )
    p.add_argument("--keep", default=None, help="keep the projects in this folder")
    p.add_argument(
        "--ema-decay",
        default="shipped",
        help="train.ema_decay of every trial: shipped (what `dlw init` writes), none, or a decay",
    )
    args = p.parse_args()
    if args.quick and not args.arms:
        args.arms = f"{RANDOM},{shipped_arm()}"
    args.also = [int(b) for b in args.also.split(",") if b.strip()]
    shipped = shipped_arm()
    arms = args.arms.split(",") if args.arms else [RANDOM, shipped, BEFORE]
    args.arm_list = list(dict.fromkeys(a.strip() for a in arms if a.strip()))
    args.goal_arm = args.goal_arm or shipped
    for arm in args.arm_list:
        parse_arm(arm)
    if RANDOM not in args.arm_list or args.goal_arm not in args.arm_list:
        p.error(f"--arms needs {RANDOM} and the goal arm {args.goal_arm}")
    return args


def main() -> None:
    args = parse_args()
    seeds = parse_seeds(args.seeds)
    args.jobs = max(1, min(args.jobs, len(seeds)))
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dlw-bench-tune-"))
    started = time.perf_counter()
    print(
        f"arms {', '.join(args.arm_list)} (goal arm: {args.goal_arm}, dlw's defaults "
        f"{shipped_arm()}); train.ema_decay {args.ema_decay}; seeds {args.seeds}; "
        f"{args.jobs} jobs x "
        f"{max(1, args.threads // args.jobs)} threads; {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        rows = run_all(args, seeds, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    p = random_landscape(rows, args)
    ratios = {b: report(rows, args, b, p) for b in [args.trials, *args.also] if b <= args.trials}
    print(f"\nwall {time.perf_counter() - started:.0f} s")
    finish(
        [
            Goal(
                f"mean trials to {args.target} in {args.trials}, {args.goal_arm} / random",
                ratios[args.trials][0],
                "<=",
                GOAL_RATIO,
                detail=f"{ratios[args.trials][1]}, {len(seeds)} seeds",
            )
        ]
    )


def report(rows: list[dict], args: argparse.Namespace, budget: int, p: float) -> tuple[float, str]:
    """Print every arm's trials and epochs to target with `budget` trials; the goal arm's
    ratio to random search and its detail."""
    print(
        f"\nTrials to reach validation accuracy >= {args.target}, budget {budget} trials x "
        f"{args.epochs} epochs (builtin:digits, small_cnn, seeds {args.seeds}; a miss counts "
        f"as {budget + 1}, a lower bound):"
    )
    for arm in args.arm_list:
        print("\n".join(arm_summary(rows, arm, budget)))
    print("\n".join(floors(p, args, budget)))
    means = {arm: arm_means(rows, arm, budget) for arm in args.arm_list}
    for arm in args.arm_list:
        if arm != RANDOM:
            print(
                f"  {arm} / random ({budget} trials): trials "
                f"{means[arm][0] / means[RANDOM][0]:.2f}, epochs "
                f"{means[arm][1] / means[RANDOM][1]:.2f}"
            )
    goal, rand = means[args.goal_arm][0], means[RANDOM][0]
    return goal / rand, f"{goal:.2f} / {rand:.2f} trials"


if __name__ == "__main__":
    main()
