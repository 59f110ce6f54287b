"""The signal tasks against their baselines, in one run each, with the demos' settings.

- sequence-classification, on the archive's own train/test division
  (`split.use_source_split: true`), the task's default network (resnet1d) and the vowels
  demo's training settings:
  - `builtin:japanese-vowels` (9 speakers, 12 channels, 7-29 frames): test accuracy of the
    network next to 1-NN DTW (the test's simple model) and 1-NN Euclidean, computed by
    `dlw test` on the same sealed series, with the paired bootstrap interval of network - DTW;
    the archive's published 1-NN figures as a reference column;
  - `builtin:gunpoint` (150 test series) and `builtin:basic-motions` (40 test series): the
    same, reported without a goal (small test sets: wide intervals);
  - the latency of `dlw serve` answering one JapaneseVowels series as JSON (the FastAPI app
    in process, bearer token, ONNX Runtime; 10 warm-up requests, then `--requests` one
    after the other: p50, p95).
- audio-classification, the sonic-pi demo (the demo's clips and settings, the default network
  audio_efficientnet_lite0, frozen under the auto strategy): test accuracy next to the
  majority class and the log-mel logistic regression (the test's simple model); serve
  latency of one 2 s clip (a real Sonic Pi clip's first 2 s as 44.1 kHz WAV, base64 in JSON:
  the server decodes and resamples it).

Training throughput (series or clips per second of epoch wall time, the validation pass
included; over all epochs, and at the median epoch, which one stalled epoch on a shared
machine moves less) is the number to know, with the epochs run (early stopping: the demos'
train.epochs is a maximum) and the best epoch. For the frozen audio network the epochs
train a head on cached backbone features: the `train()` wall time, which includes computing
those features, is printed beside it.

Each project is made with the public API (init, the demo plan's settings, define, ingest,
split, train, test, export). Goals, printed as MET / NOT MET (exit 1 when one is not met):
- japanese-vowels: the network above 1-NN DTW (the difference's paired interval above 0);
- sonic-pi: the network above the majority class (its interval's lower bound above the
  majority class's accuracy, a constant that needs no model);
- serve p95 within the demo problem's latency limit (vowels 50 ms, sonic-pi 200 ms).

    python bench/signal_tasks.py [--only vowels|gunpoint|basic-motions|audio]
        [--folder /tmp/dlw-signal-bench] [--requests 100] [--epochs N] [--quick]

--quick (what `make bench-all` runs): the two data sets with goals (japanese-vowels and the
sonic-pi audio, with the demos' full settings), 50 serve requests; gunpoint and basic-motions
(no goal) are left out. Quality goals on one fixed split: the "pairs" are the paired bootstrap
over the test series that `dlw test` reports (one seeded run, no repeats).

`--epochs` overrides the demos' train.epochs (a quick check that it runs; the results of a
shortened run are not the benchmark's).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from dlworkflow.demo_plans import demo_plan  # noqa: E402
from dlworkflow.project import Project  # noqa: E402

TOKEN = "bench-token-" + "b" * 24
SEQUENCE = "sequence-classification"
AUDIO = "audio-classification"
# The archive's published 1-NN test accuracies (Euclidean, DTW) on its own division. GunPoint:
# the UCR archive (errors 0.087 and 0.093, full-window DTW; tests/evaluate/test_series_knn.py).
# JapaneseVowels: 1-NN DTW 0.949 (the UEA archive, as tests/evaluate/test_series_knn.py cites
# it; the archive's copy is padded to equal length); no Euclidean figure is recorded here.
# BasicMotions: none recorded in this repository.
PUBLISHED: dict[str, tuple[float | None, float | None]] = {
    "gunpoint": (0.913, 0.907),
    "japanese-vowels": (None, 0.949),
    "basic-motions": (None, None),
}
SIZES = {
    "japanese-vowels": "270 train / 370 test utterances",
    "gunpoint": "50 train / 150 test series: SMALL",
    "basic-motions": "40 train / 40 test series: SMALL",
}

FORCED = "bench/signal_tasks.py: serve latency of a shortened run"

Row = tuple[str, str, str]
DATA_SETS = ("vowels", "gunpoint", "basic-motions", "audio")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, finish, work_folder  # noqa: E402


def build(
    root: Path, task: str, source: str | None, epochs: int | None
) -> tuple[Project, dict[str, Any]]:
    """init .. test with the demo's settings (source None: the demo's own data); the project
    and what the table needs."""
    plan = demo_plan(task)
    shutil.rmtree(root, ignore_errors=True)
    project = Project.init(root, task=task)
    settings = dict(plan.settings)
    if task == SEQUENCE:
        settings["split.use_source_split"] = True
    if epochs is not None:
        settings["train.epochs"] = epochs
    project.update_config(settings)
    problem = plan.problem
    project.define(metric=problem["metric"], target=problem["target"], objective="benchmark")
    project.ingest(source or plan.write_source(root.parent / f"{root.name}-data"), progress=False)
    split = project.split()
    trained = project.train(progress=False)
    model = json.loads((Path(trained.folder) / "model.json").read_text())
    history = model["history"]
    epoch_seconds = sum(float(e["seconds"]) for e in history)
    tested = project.test()
    metrics = json.loads((project.paths.reports / "evaluate" / "test" / "metrics.json").read_text())
    return project, {
        "split": split.counts,
        "model": trained.model,
        "transfer": (model.get("transfer") or {}).get("strategy"),
        "epochs": trained.epochs_run,
        "train_seconds": trained.seconds,
        "per_second": split.counts["train"] * len(history) / epoch_seconds,
        # on a shared machine single epochs stall (other processes): the median epoch too
        "median_per_second": split.counts["train"]
        / statistics.median(float(e["seconds"]) for e in history),
        "best_epoch": trained.best_epoch,
        "verdict": tested.verdict.verdict,
        "passed": tested.verdict.passed,
        "baselines": metrics["baselines"],
        "max_latency_ms": problem.get("max_latency_ms"),
    }


def _interval(item: dict[str, Any]) -> str:
    return f"{item['value']:.4f} ({item['low']:.4f} to {item['high']:.4f})"


def _signed(low: float, high: float) -> str:
    return f"{low:+.4f} to {high:+.4f}"


def serve_latency(
    project: Project, body: dict[str, Any], requests: int, *, passed: bool
) -> tuple[float, float]:
    """(p50, p95) milliseconds of POST /v1/predict with this body, one request at a time;
    the export is forced (and promoted by hand) when `dlw test` did not say PASS."""
    from latency import p50_p95

    exported = project.export(force=not passed, reason=None if passed else FORCED)
    if not passed:  # a shortened run (--epochs) may FAIL: latency does not depend on it
        project.promote(exported.version)
    return p50_p95(
        project.root, body, requests, token=TOKEN, force_reason=None if passed else FORCED
    )


def a_series() -> dict[str, Any]:
    """The first JapaneseVowels test utterance, (12 channels, frames), as JSON."""
    from dlworkflow.datasets.ucr import load_ucr

    _, test = load_ucr("JapaneseVowels")
    return {"series": [[[float(v) for v in channel] for channel in test.series[0]]]}


def a_clip() -> tuple[dict[str, Any], str]:
    """The first 2 s of the longest Sonic Pi clip, as a 44.1 kHz 16-bit WAV in base64; its
    name."""
    import soundfile as sf

    from dlworkflow.datasets.sonic_pi import sonic_pi_clips
    from dlworkflow.store.clips import ClipSettings, decode_clip

    path = max((p for p, _ in sonic_pi_clips()), key=lambda p: (p.stat().st_size, p.name))
    rate = 44_100
    wave = decode_clip(path, ClipSettings(sample_rate=rate, duration=2.0, crop="start"))
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return {"clips": [base64.b64encode(buffer.getvalue()).decode()]}, path.name


def verdict(goal: Goal, goals: list[Goal]) -> str:
    """The goal's MET / NOT MET for the table; the goal joins `goals` (the verdict's)."""
    goals.append(goal)
    return "MET" if goal.met else "NOT MET"


def _training(name: str, found: dict[str, Any], unit: str) -> Row:
    return (
        f"{name} training (CPU)",
        f"{found['per_second']:.1f} {unit}/s of epoch time, "
        f"{found['median_per_second']:.1f} at the median epoch ({found['epochs']} epochs, "
        f"best {found['best_epoch']}; train() {found['train_seconds']:.0f} s)",
        "",
    )


def series_rows(
    folder: Path, name: str, epochs: int | None, *, goal: bool, requests: int, goals: list[Goal]
) -> list[Row]:
    started = time.perf_counter()
    project, found = build(folder / name, SEQUENCE, f"builtin:{name}", epochs)
    base = found["baselines"]
    ed, dtw = PUBLISHED[name]
    published = ", ".join(
        f"{k} {v:.3f}" for k, v in (("1-NN ED", ed), ("1-NN DTW", dtw)) if v is not None
    )
    diff = base["difference"]
    point = base["network"]["value"] - base["simple"]["value"]
    above = Goal(
        f"{name}: network - 1-NN DTW accuracy, lower bound of the paired interval",
        diff["low"],
        ">",
        0,
        detail=f"{point:+.4f} ({_signed(diff['low'], diff['high'])}), {found['epochs']} epochs",
    )
    rows: list[Row] = [
        (f"{name} data", SIZES[name], ""),
        (f"{name} split", ", ".join(f"{k} {v}" for k, v in found["split"].items()), ""),
        (
            f"{name} network accuracy",
            f"{found['model']}: {_interval(base['network'])}; dlw test {found['verdict']}",
            "",
        ),
        (f"{name} 1-NN DTW accuracy", _interval(base["simple"]), ""),
        (f"{name} 1-NN Euclidean accuracy", _interval(base["nn_euclidean"]), ""),
        (f"{name} published (archive)", published or "none recorded here", ""),
        (
            f"{name} network - 1-NN DTW",
            f"{point:+.4f} ({_signed(diff['low'], diff['high'])})",
            verdict(above, goals) if goal else "no goal (reported)",
        ),
        _training(name, found, "series"),
    ]
    if goal:
        p50, p95 = serve_latency(project, a_series(), requests, passed=found["passed"])
        limit = float(found["max_latency_ms"] or 50.0)
        rows.append(
            (
                f"{name} serve, one series (JSON)",
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms ({requests} requests)",
                verdict(Goal(f"{name} serve p95, one series", p95, "<=", limit, unit=" ms"), goals)
                + f" (p95 <= {limit:.0f} ms)",
            )
        )
    rows.append((f"{name} wall time", f"{time.perf_counter() - started:.0f} s", ""))
    return rows


def audio_rows(folder: Path, epochs: int | None, requests: int, goals: list[Goal]) -> list[Row]:
    started = time.perf_counter()
    project, found = build(folder / "sonic-pi", AUDIO, None, epochs)
    base = found["baselines"]
    majority = base["majority"]
    above = Goal(
        "sonic-pi: network accuracy's lower bound above the majority class",
        base["network"]["low"],
        ">",
        majority["value"],
        detail=f"network {_interval(base['network'])}",
    )
    body, clip = a_clip()
    p50, p95 = serve_latency(project, body, requests, passed=found["passed"])
    limit = float(found["max_latency_ms"] or 200.0)
    strategy = f", {found['transfer']}" if found["transfer"] else ""
    return [
        ("sonic-pi data", "the demo's clips (2 per class held back for step 9)", ""),
        ("sonic-pi split", ", ".join(f"{k} {v}" for k, v in found["split"].items()), ""),
        (
            "sonic-pi network accuracy",
            f"{found['model']}{strategy}: {_interval(base['network'])}; "
            f"dlw test {found['verdict']}",
            "",
        ),
        (
            "sonic-pi majority accuracy",
            f"{majority['value']:.4f} (always {majority['class']!r})",
            "",
        ),
        (
            "sonic-pi network low > majority",
            f"{base['network']['low']:.4f} vs {majority['value']:.4f}",
            verdict(above, goals),
        ),
        ("sonic-pi log-mel logistic accuracy", _interval(base["simple"]), ""),
        (
            "sonic-pi network - logistic",
            f"{base['network']['value'] - base['simple']['value']:+.4f} "
            f"({_signed(base['difference']['low'], base['difference']['high'])})",
            "no goal (reported)",
        ),
        _training("sonic-pi", found, "clips"),
        (
            "sonic-pi serve, one 2 s clip",
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms ({requests} requests; {clip}, 44.1 kHz "
            "WAV, base64)",
            verdict(Goal("sonic-pi serve p95, one 2 s clip", p95, "<=", limit, unit=" ms"), goals)
            + f" (p95 <= {limit:.0f} ms)",
        ),
        ("sonic-pi wall time", f"{time.perf_counter() - started:.0f} s", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["vowels", "gunpoint", "basic-motions", "audio"])
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="bench-all size: the data sets with a goal (vowels, audio), 50 serve requests",
    )
    args = parser.parse_args(argv)
    if args.quick and "--requests" not in [a.split("=")[0] for a in (argv or sys.argv[1:])]:
        args.requests = 50
    wanted = {args.only} if args.only else {"vowels", "audio"} if args.quick else set(DATA_SETS)
    with work_folder(args.folder, "dlw-signal-bench-") as folder:
        return run(args, folder, wanted)


def run(args: argparse.Namespace, folder: Path, wanted: set[str]) -> int:
    rows: list[Row] = []
    goals: list[Goal] = []
    if "vowels" in wanted:
        rows += series_rows(
            folder, "japanese-vowels", args.epochs, goal=True, requests=args.requests, goals=goals
        )
    for name in ("gunpoint", "basic-motions"):
        if name in wanted:
            rows += series_rows(
                folder, name, args.epochs, goal=False, requests=args.requests, goals=goals
            )
    if "audio" in wanted:
        rows += audio_rows(folder, args.epochs, args.requests, goals)
    epochs = f", train.epochs {args.epochs} (shortened)" if args.epochs is not None else ""
    print(f"\nSignal tasks, {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.2f}{epochs}")
    width = max(len(r[0]) for r in rows)
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value}{'  ' + goal if goal else ''}")
    finish(goals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
