"""Speed of the evaluation's bootstrap: the vectorised metric report against the resampling
loop it replaced, side by side in one run.

Real predictions: a deliberately weak logistic regression on scikit-learn's digits (1,497
held-out rows, 10 classes), as the tests use. Side by side, for the same four primary metrics
and the same 1,000 seeded resamples (identical intervals, a test checks that): the baseline
draws each resample and computes the metric on it (`bootstrap_interval`); dlw computes every
resample at once from per-resample weights (`metric_interval`); the whole report (every
metric, top-k, calibration) is the third arm. 5 rounds, the three arms rotated each round
(verdict.alternate); the spread (min / median / max) of each arm and of the per-round ratios.
Goal: the whole report (11 metrics) takes less time than the loop takes for its 4 metrics
(median of the per-round ratios >= 1): MET / NOT MET, exit 1 when not met. (This replaces a
timed assertion that lived in the test suite: the report with 1,000 resamples in under 6 s.)

    python bench/bootstrap_report.py [--repeats 5] [--resamples 1000] [--quick]

--quick (what `make bench-all` runs) is the default size (about 30 s on 2 idle cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from dlworkflow.evaluate.bootstrap import bootstrap_interval, metric_interval  # noqa: E402
from dlworkflow.evaluate.report import metric_report  # noqa: E402
from dlworkflow.metrics import METRICS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, alternate, finish, ratios, spread  # noqa: E402

GOAL = 1.0  # loop seconds (4 metrics) / whole report seconds (11 metrics)
LOOP_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "auroc")


def predictions() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(C=1e-4, max_iter=200).fit(x[:300], y[:300])
    return y[300:], model.predict_proba(x[300:])


def loop(y: np.ndarray, proba: np.ndarray, n: int) -> float:
    start = time.perf_counter()
    for name in LOOP_METRICS:
        bootstrap_interval(METRICS.get(name), y, proba, n_resamples=n, confidence=0.95, seed=0)
    return time.perf_counter() - start


def vectorised(y: np.ndarray, proba: np.ndarray, n: int) -> float:
    start = time.perf_counter()
    for name in LOOP_METRICS:
        metric_interval(name, y, proba, n_resamples=n, confidence=0.95, seed=0)
    return time.perf_counter() - start


def whole_report(y: np.ndarray, proba: np.ndarray, n: int) -> tuple[float, int]:
    start = time.perf_counter()
    report = metric_report(
        y, proba, [str(c) for c in range(proba.shape[1])], n_resamples=n, confidence=0.95, seed=0
    )
    return time.perf_counter() - start, len(report["metrics"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rotating rounds (>= 5)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="bench-all size: the defaults")
    args = parser.parse_args(argv)
    y, proba = predictions()
    n_metrics = whole_report(y, proba, 50)[1]  # warm-up too: imports, first allocations
    times = alternate(
        {
            "loop": lambda: loop(y, proba, args.resamples),
            "dlw": lambda: vectorised(y, proba, args.resamples),
            "report": lambda: whole_report(y, proba, args.resamples)[0],
        },
        pairs=args.repeats,
    )
    print(
        f"{args.resamples} resamples, {len(y)} rows, 10 classes; {args.repeats} rounds, the "
        "three arms rotated each round"
    )
    print(spread("resampling loop, 4 metrics", times["loop"], unit=" s"))
    print(spread("dlw vectorised, the same 4 metrics", times["dlw"], unit=" s"))
    print(spread(f"dlw whole report, {n_metrics} metrics", times["report"], unit=" s"))
    same4 = ratios(times["loop"], times["dlw"])
    ratio = ratios(times["loop"], times["report"])
    print(spread("loop / vectorised, same 4 metrics", same4))
    print(spread(f"loop (4 metrics) / whole report ({n_metrics} metrics)", ratio))
    finish(
        [
            Goal(
                f"loop (4 metrics) / whole report ({n_metrics} metrics), median of per-round "
                "ratios",
                statistics.median(ratio),
                ">=",
                GOAL,
                detail=f"same 4 metrics: vectorised {statistics.median(same4):.1f}x faster",
            )
        ]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
