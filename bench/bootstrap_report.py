"""Speed of the evaluation's bootstrap: the vectorised metric report against the resampling
loop it replaced, side by side in one run.

Real predictions: a deliberately weak logistic regression on scikit-learn's digits (1,497
held-out rows, 10 classes), as the tests use. Side by side, for the same four primary metrics
and the same 1,000 seeded resamples (identical intervals, a test checks that): the baseline
draws each resample and computes the metric on it (`bootstrap_interval`); dlw computes every
resample at once from per-resample weights (`metric_interval`). Repeated, interleaved A B B A;
medians. The whole report (every metric, top-k, calibration) is timed too, for reference.
Goal: the whole report (11 metrics) takes less time than the loop takes for its 4 metrics:
MET / NOT MET. (This replaces a timed assertion that lived in the test suite: the report with
1,000 resamples in under 6 s.)

    python bench/bootstrap_report.py [--repeats 2] [--resamples 1000]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    y, proba = predictions()
    whole_report(y, proba, 50)  # warm-up: imports and first allocations
    times: dict[str, list[float]] = {"loop": [], "dlw": []}
    for _ in range(args.repeats):
        for which in ("loop", "dlw", "dlw", "loop"):
            run = loop if which == "loop" else vectorised
            times[which].append(run(y, proba, args.resamples))
    report_s, n_metrics = whole_report(y, proba, args.resamples)
    base, ours = statistics.median(times["loop"]), statistics.median(times["dlw"])
    ratio = base / report_s
    print(
        f"{args.resamples} resamples, {len(y)} rows, 10 classes; medians of "
        f"{len(times['loop'])} runs each"
    )
    print(f"{'resampling loop, 4 metrics':36s} {base:7.2f} s")
    print(f"{'dlw vectorised, the same 4 metrics':36s} {ours:7.2f} s")
    print(f"{'dlw whole report, ' + str(n_metrics) + ' metrics':36s} {report_s:7.2f} s")
    print(f"same 4 metrics: vectorised {base / ours:.1f}x faster than the loop")
    print(
        f"loop (4 metrics) / whole report ({n_metrics} metrics): {ratio:.2f}; goal >= "
        f"{GOAL:.1f}: {'MET' if ratio >= GOAL else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
