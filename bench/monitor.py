"""Drift monitoring on real MNIST: false-alarm rate and detection rate of `dlw monitor`'s
checks (dlworkflow/monitor/drift.py), side by side for window sizes and shift strengths.

The model: small_cnn trained, tested (PASS) and exported on 2,500 MNIST-5k digits
(tests/monitor/simkit.py); the reference: its validation split; live windows: random samples
of the 2,500 held-out digits, as they are (in-distribution) or shifted. Each window goes
through the server's own path (observe.prepare / infer / records) and the monitor's checks at
monitor.alpha. Prints one table. Goal: the false-alarm rate (in-distribution windows that
raise any alert, pooled over the window sizes) at most monitor.alpha: MET / NOT MET, exit 1
when not met; the spread is that rate's min / median / max over the window sizes. Detection
rates have no goal: they say which window each shift needs.

    .venv/bin/python bench/monitor.py [--runs 200] [--detection-runs 50] [--shift-pool 2500]
                                      [--quick]

--quick (what `make bench-all` runs): 50 in-distribution windows per size (200 in all: one
false alarm is a rate of 0.005, so the goal alpha 0.01 is still resolved), 5 windows per shift
and size, drawn from the first 1,000 held-out digits shifted (--shift-pool; in-distribution
windows are drawn from all 2,500).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "monitor"))
import simkit  # noqa: E402

from dlworkflow.monitor.drift import run_checks  # noqa: E402
from dlworkflow.monitor.logread import to_sample  # noqa: E402
from dlworkflow.monitor.reference import load_reference  # noqa: E402
from dlworkflow.runtime import observe  # noqa: E402
from dlworkflow.runtime.bundle import load_bundle  # noqa: E402
from dlworkflow.runtime.versions import champion_folder  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, apply_quick, finish, spread  # noqa: E402

SHIFTS = {
    "in-distribution": lambda im: im,
    "rotated 10 deg": lambda im: simkit.rotated(im, 10),
    "rotated 20 deg": lambda im: simkit.rotated(im, 20),
    "rotated 45 deg": lambda im: simkit.rotated(im, 45),
    "noise sigma 0.05": lambda im: simkit.noisy(im, 0.05),
    "noise sigma 0.1": lambda im: simkit.noisy(im, 0.1),
    "noise sigma 0.3": lambda im: simkit.noisy(im, 0.3),
    "inverted": simkit.inverted,
}
WINDOWS = (50, 100, 200, 500)


def records(bundle, images: np.ndarray) -> list[dict]:
    x, summaries = observe.prepare(bundle, [simkit.png(im) for im in images])
    probs, emb = observe.infer(bundle, x)
    return observe.records(bundle, summaries, probs, emb)


# --quick: the size `make bench-all` runs
QUICK = {"runs": 50, "detection_runs": 5, "shift_pool": 1000}


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200, help="in-distribution windows")
    parser.add_argument("--detection-runs", type=int, default=50, help="windows per shift")
    parser.add_argument(
        "--shift-pool",
        type=int,
        default=2500,
        help="held-out digits shifted per condition (windows are drawn from them; >= 500)",
    )
    parser.add_argument("--quick", action="store_true", help=f"bench-all size: {QUICK}")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK, argv)
    if args.shift_pool < max(WINDOWS):
        parser.error(f"--shift-pool must be at least the largest window, {max(WINDOWS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        project, _, pool = simkit.build_project(Path(tmp))
        built = time.perf_counter() - start
        config = project.config.monitor
        bundle = load_bundle(champion_folder(project.root), threads=2)
        reference = to_sample(load_reference(project, bundle).records)
        rng = np.random.default_rng(0)
        table, seconds, false_alarms = [], [], []
        for name, shift in SHIFTS.items():
            images = pool if name == "in-distribution" else pool[: args.shift_pool]
            live = records(bundle, shift(images))
            runs = args.runs if name == "in-distribution" else args.detection_runs
            row = [name]
            for size in WINDOWS:
                alerts = 0
                for run in range(runs):
                    chosen = [live[i] for i in rng.choice(len(live), size, replace=False)]
                    t = time.perf_counter()
                    drift = run_checks(reference, to_sample(chosen), config=config, seed=run)
                    seconds.append(time.perf_counter() - t)
                    alerts += any(c.alert for c in drift.checks)
                row.append(f"{alerts}/{runs} ({alerts / runs:.1%})")
                if name == "in-distribution":
                    false_alarms.append(alerts / runs)
            table.append(row)
    print(
        f"\nmodel: small_cnn on 2,500 MNIST-5k digits (built in {built:.0f} s); reference: "
        f"{len(reference)} validation records; monitor.alpha {config.alpha}; pool: 2,500 "
        f"held-out digits ({min(args.shift_pool, 2500):,} of them shifted per condition)"
    )
    print("alerting windows (in-distribution: false alarms; shifts: detections), by window size")
    header = ["condition", *[f"n={w}" for w in WINDOWS]]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(
        f"checks per window: median {np.median(seconds) * 1000:.0f} ms, "
        f"p95 {np.percentile(seconds, 95) * 1000:.0f} ms (2 CPU cores)"
    )
    print(spread("false-alarm rate over the window sizes", false_alarms))
    finish(
        [
            Goal(
                f"false-alarm rate, in-distribution windows pooled over n={WINDOWS}",
                float(np.mean(false_alarms)),
                "<=",
                config.alpha,
                detail=f"{args.runs} windows per size; monitor.alpha {config.alpha}",
            )
        ]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
