"""Benchmark: ingest on all cores, and ingest's peak memory from 10k to 1M images.

Data: distinct 32x32 grayscale PNGs made from real Fashion-MNIST images (70,000, the Debian
package dataset-fashion-mnist): image i is a 32x32 crop of Fashion-MNIST image i % 70,000
padded by 4 pixels, at one of 25 offsets ((i // 70,000) -> (dy, dx)), so up to 1.75M files are
all different. They are written once, in a process pool, as class folders under
/tmp/dlw-ingest-scale/fmnist-<N> (PNG, compress_level=1) and reused by later runs.

Every ingest runs in a fresh subprocess (`dlw init` + `project.ingest`), which reports its wall
time, its CPU time (RUSAGE_SELF + RUSAGE_CHILDREN: this process and its worker processes) and
its peak memory: the process's VmHWM + the largest VmHWM of its pool's processes (the
forkserver and the workers, read from /proc every 0.2 s while the ingest runs). Not ru_maxrss:
Linux counts in a child's ru_maxrss the RSS its parent had when it forked, so the forkserver
(forked from the ingest process when the pool starts, then exec'd) reported the ingest
process's own size at that moment as the "largest worker", about 90 MB, where a worker peaks
at about 40 MB.

Goals:
- CPU-time throughput >= 500 images/s per core of CPU time (images / CPU seconds of the
  ingest with data.workers = 2, median over the pairs);
- wall time scales with cores: wall(1 worker) / wall(2 workers) > 1.5 (median of >= 5
  alternating pairs on the pair size; on an idle 2-core machine);
- peak memory flat: peak(large) / peak(small) <= 1.2 (default 10k vs 100k; --full: 10k vs 1M),
  for a first ingest and for a re-ingest of the same files (all unchanged: rows reused).

    python bench/ingest_scale.py --quick    # bench-all: pairs on 10k, ladder 10k vs 100k
    python bench/ingest_scale.py --smoke    # while developing: pairs on 3k, ladder 3k vs 20k
    python bench/ingest_scale.py --full     # ladder 10k vs 1M (writes 1M files, ~4 GB)

Without a flag it runs the --quick sizes. On an idle 2-core machine --quick takes about 3.5
minutes once the images exist (the first run also writes the 110k images: about a minute).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, alternate, finish, ratios, spread  # noqa: E402

CACHE = Path("/tmp/dlw-ingest-scale")
SIDE, PAD = 32, 4  # a 28x28 image padded by PAD on each side (36x36), cropped to SIDE
BASES = 70_000
GEN_CHUNK = 5_000

CHILD = r"""
import contextlib, json, os, resource, sys, tempfile, threading, time
from pathlib import Path
from dlworkflow.project import Project
source, workers, keep = sys.argv[1], sys.argv[2], sys.argv[3]


def hwm_kb(pid):  # VmHWM: the peak RSS of the process's memory since its exec (or fork)
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def children(pid):
    kids = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                kids += [int(k) for k in listed.read().split()]
    return kids


peaks, done = {}, threading.Event()


def watch():  # the pool's processes (the forkserver's children): their VmHWM before they exit
    while not done.wait(0.2):
        todo = children(os.getpid())
        while todo:
            pid = todo.pop()
            peaks[pid] = max(peaks.get(pid, 0), hwm_kb(pid))
            todo += children(pid)


folder = contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory(prefix="dlw-scale-")
with folder as tmp:
    if (Path(tmp) / "p").exists():  # a kept project: re-ingest (every file unchanged)
        p = Project.load(Path(tmp) / "p")
    else:
        p = Project.init(Path(tmp) / "p", name="bench")
        p.update_config({"data.workers": workers if workers == "auto" else int(workers)})
    def cpu(who):
        u = resource.getrusage(who)
        return u.ru_utime + u.ru_stime
    SELF, KIDS = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    s0, k0, t0 = cpu(SELF), cpu(KIDS), time.perf_counter()
    r = p.ingest(source, progress=False)
    wall, main_s = time.perf_counter() - t0, cpu(SELF) - s0
    done.set()
    watcher.join()
    # the workers are children of the forkserver: once it has exited (and reaped them), their
    # CPU time is in this process's RUSAGE_CHILDREN
    from multiprocessing import forkserver
    forkserver._forkserver._stop()
    cpu_s = main_s + cpu(KIDS) - k0
    # not ru_maxrss: Linux counts in a child's ru_maxrss the RSS its parent had when it forked
    # (the forkserver is forked from this process, then execs), so RUSAGE_CHILDREN's would
    # report this process's size when the pool started, not a worker's
    main_kb, worker_kb = hwm_kb("self"), max(peaks.values(), default=0)
    print(json.dumps({"n": r.n_samples, "quarantined": r.n_quarantined, "wall_s": wall,
                      "cpu_s": cpu_s, "main_cpu_s": main_s, "peak_mb": (main_kb + worker_kb) / 1024,
                      "main_peak_mb": main_kb / 1024, "worker_peak_mb": worker_kb / 1024,
                      "reused": r.n_reused, "version": r.dataset_version}))
"""


def _fmnist() -> tuple[object, object]:
    import numpy as np

    from dlworkflow.datasets.fashion_mnist import find_idx_file, read_idx

    images = [read_idx(find_idx_file(f"{p}-images-idx3-ubyte")) for p in ("train", "t10k")]
    labels = [read_idx(find_idx_file(f"{p}-labels-idx1-ubyte")) for p in ("train", "t10k")]
    return np.concatenate(images), np.concatenate(labels)


_DATA: tuple[object, object] | None = None


def _write_range(args: tuple[str, int, int]) -> int:
    """Write images start..stop-1 into root (a worker of the generating pool)."""
    import numpy as np
    from PIL import Image

    from dlworkflow.datasets.fashion_mnist import CLASSES

    global _DATA
    if _DATA is None:
        _DATA = _fmnist()
    images, labels = _DATA
    root, start, stop = Path(args[0]), args[1], args[2]
    for i in range(start, stop):
        base, variant = i % BASES, i // BASES
        dy, dx = divmod(variant % 25, 5)
        padded = np.pad(images[base], PAD)  # type: ignore[index]
        tile = np.ascontiguousarray(padded[dy : dy + SIDE, dx : dx + SIDE])
        folder = root / CLASSES[int(labels[base])]  # type: ignore[index]
        Image.fromarray(tile).save(folder / f"{i:07d}.png", compress_level=1)
    return stop - start


def images(n: int) -> Path:
    """The folder of the first n generated images (made once, then reused)."""
    from concurrent.futures import ProcessPoolExecutor

    from dlworkflow.datasets.fashion_mnist import CLASSES

    root = CACHE / f"fmnist-{n}"
    if (root / ".complete").is_file():
        return root
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ranges = [(str(root), s, min(n, s + GEN_CHUNK)) for s in range(0, n, GEN_CHUNK)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        written = sum(pool.map(_write_range, ranges))
    (root / ".complete").write_text(str(written))
    print(f"generated {written:,} images in {root} in {time.perf_counter() - t0:.0f} s")
    return root


def ingest(source: Path, workers: int | str, *, keep: Path | None = None) -> dict:
    """One ingest in a fresh process: into a temporary project, or into `keep`'s (made by the
    first call, re-ingested by the next)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(workers), str(keep or "")],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"ingest of {source} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="bench-all: 10k pairs, 10k vs 100k")
    parser.add_argument("--smoke", action="store_true", help="pairs on 3k, ladder 3k vs 20k")
    parser.add_argument("--full", action="store_true", help="memory ladder 10k vs 1M images")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    pair_n, small_n, large_n = (3_000, 3_000, 20_000) if args.smoke else (10_000, 10_000, 100_000)
    if args.full:
        large_n = 1_000_000
    pair_source = images(pair_n)
    print(f"{pair_n:,} images, {args.pairs} alternating pairs of data.workers 1 vs 2 ...")
    runs = alternate(
        {"1 worker": lambda: ingest(pair_source, 1), "2 workers": lambda: ingest(pair_source, 2)},
        pairs=args.pairs,
    )
    one, two = runs["1 worker"], runs["2 workers"]
    versions = {r["version"] for r in one + two}
    print(spread("wall, 1 worker", [r["wall_s"] for r in one], unit=" s"))
    print(spread("wall, 2 workers", [r["wall_s"] for r in two], unit=" s"))
    speedup = ratios([r["wall_s"] for r in one], [r["wall_s"] for r in two])
    print(spread("wall 1 worker / 2 workers", speedup))
    per_core = {name: [r["n"] / r["cpu_s"] for r in rs] for name, rs in (("1", one), ("2", two))}
    print(spread("images/s per CPU second, 1 worker", per_core["1"]))
    print(spread("images/s per CPU second, 2 workers", per_core["2"]))
    main = [r["main_cpu_s"] / r["cpu_s"] for r in two]
    print(spread("share of the CPU time in the main process, 2 workers", main))
    print(f"dataset versions over all {len(one + two)} runs: {len(versions)} distinct")

    ladder = {small_n: sorted(two, key=lambda r: r["peak_mb"])[len(two) // 2]}  # median peak
    again: dict[int, dict] = {}  # re-ingests: every file unchanged, its row reused
    with tempfile.TemporaryDirectory(prefix="dlw-scale-keep-") as keep:
        for n in (small_n, large_n):
            (Path(keep) / str(n)).mkdir()
            first = ingest(images(n), 2, keep=Path(keep) / str(n))
            if n == large_n:
                ladder[n] = first
            again[n] = ingest(images(n), 2, keep=Path(keep) / str(n))
    for what, runs in (("ingest", ladder), ("re-ingest", again)):
        for n, r in runs.items():
            print(
                f"{what:>9} {n:>9,} images, 2 workers: wall {r['wall_s']:.1f} s, "
                f"CPU {r['cpu_s']:.1f} s ({r['n'] / r['cpu_s']:.0f} img/s per CPU second), "
                f"{r['reused']:,} reused, peak {r['peak_mb']:.0f} MB "
                f"(main {r['main_peak_mb']:.0f}, largest worker {r['worker_peak_mb']:.0f})"
            )
    memory = ladder[large_n]["peak_mb"] / ladder[small_n]["peak_mb"]
    memory_again = again[large_n]["peak_mb"] / again[small_n]["peak_mb"]
    finish(
        [
            Goal(
                "ingest images/s per core of CPU time (2 workers)",
                statistics.median(per_core["2"]),
                ">=",
                500,
                detail=f"{pair_n:,} 32x32 PNGs",
            ),
            Goal(
                "wall 1 worker / 2 workers",
                statistics.median(speedup),
                ">",
                1.5,
                detail=f"{len(speedup)} pairs; an idle 2-core machine",
            ),
            Goal(
                f"peak memory {large_n:,} / {small_n:,} images",
                memory,
                "<=",
                1.2,
                detail=f"{ladder[small_n]['peak_mb']:.0f} -> {ladder[large_n]['peak_mb']:.0f} MB",
            ),
            Goal(
                f"re-ingest peak memory {large_n:,} / {small_n:,} images",
                memory_again,
                "<=",
                1.2,
                detail=f"{again[small_n]['peak_mb']:.0f} -> {again[large_n]['peak_mb']:.0f} MB; "
                f"{sum(r['reused'] for r in again.values()):,} of "
                f"{sum(r['n'] for r in again.values()):,} rows reused",
            ),
            Goal("one dataset version whatever the workers", len(versions), "<=", 1),
        ]
    )


if __name__ == "__main__":
    main()
