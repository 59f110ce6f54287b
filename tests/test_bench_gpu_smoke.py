"""bench/gpu.py --smoke: the GPU throughput benchmark runs end to end on a CPU at tiny sizes
(its real run needs a GPU): every arm trains, each gets a throughput, the ratios print."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_smoke_run_measures_every_arm():
    out = subprocess.run(
        [sys.executable, "bench/gpu.py", "--smoke", "--rounds", "1", "--datasets", "synthetic"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout
    assert "precision fp32, channels_last False, compile False" in text  # dlw's CPU defaults
    for arm in ("dlw", "raw", "raw-eager"):
        rate = re.search(rf"^\s+{re.escape(arm)}\s*: min ([0-9.e+-]+) ", text, re.M)
        assert rate and float(rate.group(1)) > 0, text
    assert re.search(r"dlw / raw\s*: min [0-9.]+ / median [0-9.]+", text)
    assert "(would be) " in text and "synthetic dlw / raw images/s" in text
    assert "FAILED" not in text and "could not be built" not in text
