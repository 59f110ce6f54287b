"""The dense vision tasks against their baselines, in one run each, with the demo's settings.

- trees (object-detection; builtin:trees, deepforest's four NEON images tiled to 400 px, the
  split grouped by 1,200 px blocks, as `dlw demo --task object-detection` sets it): test
  mAP@.5 of `efficientnet_lite0_detector` next to the box-prior baseline (boxes of the
  training mean size on a grid, one constant score), with the paired bootstrap interval of
  the difference over test images, as `dlw test` reports them; CPU training throughput
  (training tiles per second of epoch wall time, the validation pass included); and the
  latency of `dlw serve` answering one 400x400 tile (the FastAPI app in process, bearer token,
  ONNX Runtime; 10 warm-up requests, then `--requests` one after the other: p50, p95).
- digit-masks (semantic-segmentation; 1,250 MNIST mosaics with DERIVED masks, the demo's
  settings): test mIoU of `efficientnet_lite0_unet` next to the per-pixel majority class of
  the training masks, with the paired interval.

Each project is made with the public API (init, the demo plan's settings, define, ingest,
split, train, test, export). Goals, printed as MET / NOT MET (exit 1 when one is not met):
- trees: the network's mAP@.5 above the box prior (the difference's interval above 0);
- trees: serve p95 for one tile within the demo problem's latency limit (500 ms);
- digit-masks: the network's mIoU above the majority mask (the interval above 0).
Throughput has no goal: it is the number to know. Quality goals on one fixed split: the
"pairs" are the paired bootstrap over the test images that `dlw test` reports (one seeded
run, no repeats).

    python bench/dense_tasks.py [--only trees|digit-masks] [--folder /tmp/dlw-dense-bench]
                                [--trees-epochs N] [--masks-epochs N] [--requests 100] [--quick]

--quick (what `make bench-all` runs): trees 30 epochs as the demo (CenterNet's heatmaps take
~12 epochs of 32 tiles to start finding crowns: at 16 the network was still below the box
prior, -0.008 (-0.027 to +0.011), 2026-12-04), digit-masks 3 (the demo: 15; 1 epoch already
clears the majority mask), 50 serve requests. The demo's full settings are the default.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from dlworkflow.demo_plans import demo_plan  # noqa: E402
from dlworkflow.project import Project  # noqa: E402

TOKEN = "bench-token-" + "b" * 24
FORCED = "bench/dense_tasks.py: serve latency of a model dlw test did not pass"
QUICK = {"trees_epochs": 30, "masks_epochs": 3, "requests": 50}  # what `make bench-all` runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, apply_quick, finish, work_folder  # noqa: E402

Row = tuple[str, str, Goal | None]


def build(
    root: Path, task: str, source: str, epochs: int | None = None
) -> tuple[Project, dict[str, Any]]:
    """init .. test with the demo's settings (epochs: train.epochs instead of the demo's); the
    project and what the table needs."""
    plan = demo_plan(task)
    shutil.rmtree(root, ignore_errors=True)
    project = Project.init(root, task=task)
    settings = dict(plan.settings)
    if epochs is not None:
        settings["train.epochs"] = epochs
    project.update_config(settings)
    problem = plan.problem
    project.define(metric=problem["metric"], target=problem["target"], objective="benchmark")
    project.ingest(source, progress=False)
    split = project.split()
    trained = project.train(progress=False)
    history = json.loads((Path(trained.folder) / "model.json").read_text())["history"]
    epoch_seconds = sum(float(e["seconds"]) for e in history)
    tested = project.test()
    metrics = json.loads((project.paths.reports / "evaluate" / "test" / "metrics.json").read_text())
    return project, {
        "split": split.counts,
        "epochs": trained.epochs_run,
        "train_seconds": trained.seconds,
        "images_per_second": split.counts["train"] * len(history) / epoch_seconds,
        "baselines": metrics["baselines"],
        "max_latency_ms": problem.get("max_latency_ms"),
        "passed": tested.verdict.passed,
    }


def _interval(item: dict[str, Any]) -> str:
    return f"{item['value']:.4f} ({item['low']:.4f} to {item['high']:.4f})"


def serve_latency(
    project: Project, tile: bytes, requests: int, *, passed: bool
) -> tuple[float, float]:
    """(p50, p95) milliseconds of POST /v1/predict with one tile, one request at a time; the
    export is forced (and promoted by hand) when `dlw test` did not say PASS."""
    from latency import p50_p95

    exported = project.export(force=not passed, reason=None if passed else FORCED)
    if not passed:  # latency does not depend on the verdict
        project.promote(exported.version)
    return p50_p95(
        project.root,
        {"images": [base64.b64encode(tile).decode()]},
        requests,
        token=TOKEN,
        force_reason=None if passed else FORCED,
    )


def a_tile() -> bytes:
    """The first 400x400 px of deepforest's OSBS_029 image (a real tile), as PNG."""
    from PIL import Image

    from dlworkflow.datasets.trees import data_folder

    with Image.open(data_folder() / "OSBS_029.png") as img:
        buffer = io.BytesIO()
        img.convert("RGB").crop((0, 0, 400, 400)).save(buffer, format="PNG")
    return buffer.getvalue()


def above_baseline(name: str, base: dict[str, Any], epochs: int) -> Goal:
    """The paired interval of network - baseline above 0 (its lower bound > 0)."""
    return Goal(
        f"{name}: network - baseline, lower bound of the paired interval",
        base["difference"]["low"],
        ">",
        0,
        detail=f"difference {_interval(base['difference'])}, {epochs} epochs",
    )


def trees(folder: Path, requests: int, epochs: int | None) -> list[Row]:
    started = time.perf_counter()
    project, found = build(folder / "trees", "object-detection", "builtin:trees", epochs)
    base = found["baselines"]
    p50, p95 = serve_latency(project, a_tile(), requests, passed=found["passed"])
    limit = float(found["max_latency_ms"] or 500.0)
    return [
        ("trees split (tiles)", ", ".join(f"{k} {v}" for k, v in found["split"].items()), None),
        ("trees network mAP@.5", _interval(base["network"]), None),
        ("trees box prior mAP@.5", _interval(base["simple"]), None),
        (
            "trees network - box prior",
            _interval(base["difference"]),
            above_baseline("trees mAP@.5", base, found["epochs"]),
        ),
        (
            "trees training (CPU)",
            f"{found['images_per_second']:.2f} tiles/s ({found['epochs']} epochs, "
            f"{found['train_seconds']:.0f} s)",
            None,
        ),
        (
            "trees serve, one 400 px tile",
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms ({requests} requests)",
            Goal("trees serve p95, one 400 px tile", p95, "<=", limit, unit=" ms"),
        ),
        ("trees wall time", f"{time.perf_counter() - started:.0f} s", None),
    ]


def digit_masks(folder: Path, epochs: int | None) -> list[Row]:
    started = time.perf_counter()
    _, found = build(folder / "digit-masks", "semantic-segmentation", "builtin:digit-masks", epochs)
    base = found["baselines"]
    return [
        ("digit-masks split", ", ".join(f"{k} {v}" for k, v in found["split"].items()), None),
        ("digit-masks network mIoU", _interval(base["network"]), None),
        ("digit-masks majority mIoU", _interval(base["simple"]), None),
        (
            "digit-masks network - majority",
            _interval(base["difference"]),
            above_baseline("digit-masks mIoU", base, found["epochs"]),
        ),
        (
            "digit-masks training (CPU)",
            f"{found['images_per_second']:.1f} images/s ({found['epochs']} epochs, "
            f"{found['train_seconds']:.0f} s)",
            None,
        ),
        ("digit-masks wall time", f"{time.perf_counter() - started:.0f} s", None),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["trees", "digit-masks"])
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--trees-epochs", type=int, default=None, help="default: the demo's")
    parser.add_argument("--masks-epochs", type=int, default=None, help="default: the demo's")
    parser.add_argument("--quick", action="store_true", help=f"bench-all size: {QUICK}")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK, argv)
    with work_folder(args.folder, "dlw-dense-bench-") as folder:
        return run(args, folder)


def run(args: argparse.Namespace, folder: Path) -> int:
    rows: list[Row] = []
    if args.only in (None, "trees"):
        rows += trees(folder, args.requests, args.trees_epochs)
    if args.only in (None, "digit-masks"):
        rows += digit_masks(folder, args.masks_epochs)
    print(f"\nDense tasks, {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.2f}")
    width = max(len(r[0]) for r in rows)
    for name, value, goal in rows:
        mark = f"  {'MET' if goal.met else 'NOT MET'}" if goal else ""
        print(f"{name:<{width}}  {value}{mark}")
    finish([goal for _, _, goal in rows if goal is not None])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
