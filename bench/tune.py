"""Trials to reach a target validation accuracy: TPE + median pruning vs random search without
pruning, the same budget of trials, several sampler seeds.

One project in a temporary folder goes through the workflow as a user runs it (`Project.init`,
`define`, `ingest("builtin:digits")`, the default 70/15/15 `split`); then, for each seed, the
two arms run one study each, alternating (A B A B ...) so that machine load hits both alike:

  tpe+median   tune.sampler tpe (seeded, multivariate, `--startup` random trials first) and
               tune.pruner median (a trial below the median of earlier trials at the same
               epoch is stopped after the warm-up epoch)
  random       tune.sampler random, tune.pruner none (every trial trains all its epochs)

Both run the engine `dlw tune` runs (dlworkflow.train.tune.study.optimize -> trial.run_one ->
trial.run_trial: the train step's own build and loop on a config view, an MLflow child run per
trial), one worker, `--trials` trials of `--epochs` epochs each, over the same search space
(SPACE below: learning rate log-uniform 1e-5..1e-1, batch size, weight decay, channels). The
sampler seed is the seed; each trial's training seed is the project's (fixed), so the arms
differ only in what they sample and prune.

For each study the table gives the trials (in trial order, pruned ones included) up to and
including the first complete trial whose best validation accuracy is >= `--target`, the
epochs trained and the trial seconds summed up to that point (Optuna's trial durations), and
the best value within the budget. A study that never reaches the target shows ">B" and is
counted as B + 1 trials (and all its epochs and seconds) in the mean, a lower bound. The
sealed test set is never read (the script checks the ledger).

    python bench/tune.py [--seeds 0,1,2,3,4] [--trials 12] [--epochs 3] [--target 0.98]
                         [--threads 2] [--startup 4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from dlworkflow.project import Project  # noqa: E402

SPACE: dict[str, dict[str, Any]] = {
    "train.learning_rate": {"type": "log_uniform", "low": 1e-5, "high": 1e-1},
    "train.batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "train.weight_decay": {"type": "log_uniform", "low": 1e-6, "high": 1e-1},
    "model.params.channels": {"type": "categorical", "choices": [[4, 8], [8, 16]]},
}
ARMS: dict[str, dict[str, str]] = {
    "tpe+median": {"tune.sampler": "tpe", "tune.pruner": "median"},
    "random": {"tune.sampler": "random", "tune.pruner": "none"},
}


def setup(root: Path, args: argparse.Namespace) -> Project:
    project = Project.init(root, name="bench-tune")
    project.update_config(
        {
            "data.source": "builtin:digits",
            "train.threads": args.threads,
            "model.name": "small_cnn",
            "model.params": {"channels": [8, 16], "convs_per_block": 1},
            "tune.space": SPACE,
            "tune.epochs": args.epochs,
            "tune.trials": args.trials,
            "tune.startup_trials": args.startup,
            "tune.warmup_epochs": 1,
            "tune.workers": 1,
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


def run_study(project: Project, arm: str, seed: int) -> Any:
    """One study of `arm` with sampler seed `seed`, run to its budget; the optuna.Study."""
    from dlworkflow.train.tune import study as study_mod

    project.update_config({**ARMS[arm], "tune.seed": seed})
    settings = study_mod.settings_for(project)
    return study_mod.optimize(project, settings)


def trials_to_target(study: Any, target: float, budget: int) -> dict[str, Any]:
    """Trials, epochs and trial seconds up to the first complete trial >= target."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    epochs = seconds = 0.0
    hit = None
    for i, t in enumerate(trials, start=1):
        epochs += len(t.intermediate_values)
        seconds += t.duration.total_seconds() if t.duration else 0.0
        if t.state.name == "COMPLETE" and t.value is not None and t.value >= target:
            hit = i
            break
    done = [t.value for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    return {
        "trials": hit,
        "count": hit if hit is not None else budget + 1,
        "epochs": int(epochs),
        "seconds": seconds,
        "best": max(done) if done else None,
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "n": len(trials),
        "all_epochs": sum(len(t.intermediate_values) for t in trials),
    }


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    header = (
        f"{'arm':<11} {'seed':>4} {'trials':>7} {'epochs':>7} {'trial s':>8} "
        f"{'best acc':>9} {'pruned':>7} {'all ep':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        trials = str(r["trials"]) if r["trials"] is not None else f">{args.trials}"
        lines.append(
            f"{r['arm']:<11} {r['seed']:>4} {trials:>7} {r['epochs']:>7} "
            f"{r['seconds']:>8.1f} {r['best'] or float('nan'):>9.4f} "
            f"{r['pruned']:>7} {r['all_epochs']:>7}"
        )
    lines.append("-" * len(header))
    for arm in ARMS:
        mine = [r for r in rows if r["arm"] == arm]
        reached = sum(r["trials"] is not None for r in mine)
        lines.append(
            f"{arm + ' mean':<16} {statistics.mean(r['count'] for r in mine):>7.1f} "
            f"{statistics.mean(r['epochs'] for r in mine):>7.1f} "
            f"{statistics.mean(r['seconds'] for r in mine):>8.1f} "
            f"{statistics.mean(r['best'] or 0.0 for r in mine):>9.4f} "
            f"{statistics.mean(r['pruned'] for r in mine):>7.1f} "
            f"{statistics.mean(r['all_epochs'] for r in mine):>7.1f}   "
            f"reached {reached}/{len(mine)}"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--target", type=float, default=0.98)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--startup",
        type=int,
        default=4,
        help="TPE random trials and the median pruner's startup trials",
    )
    p.add_argument("--keep", default=None, help="keep the project in this folder")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dlw-bench-tune-"))
    started = time.perf_counter()
    project = setup(root / "proj", args)
    print(
        f"setup (init, define, ingest builtin:digits, split) {time.perf_counter() - started:.1f}"
        f" s; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    rows = []
    for seed in seeds:
        for arm in ARMS if seed % 2 == 0 else reversed(list(ARMS)):
            t0 = time.perf_counter()
            study = run_study(project, arm, seed)
            row = {"arm": arm, "seed": seed, **trials_to_target(study, args.target, args.trials)}
            rows.append(row)
            print(
                f"  {arm:<11} seed {seed}: {row['n']} trials, best {row['best']}, to target "
                f"{row['trials']} ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
    reads = project.ledger.test_reads()
    print(
        f"\nTrials to reach validation accuracy >= {args.target} (budget {args.trials} "
        f"trials x {args.epochs} epochs, builtin:digits, small_cnn, {args.threads} threads; "
        f"seeds {args.seeds}):\n"
    )
    print(table(rows, args))
    print(
        f"\ntest-set reads: {len(reads)}; wall {time.perf_counter() - started:.0f} s; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if not reads else 1


if __name__ == "__main__":
    raise SystemExit(main())
