"""The drift simulation's pieces (a uniquely named module; bench/monitor.py imports it too):
real MNIST-5k digits split into a project and a held-out "production" pool, the shifts
(rotation, noise, inversion), and `dlw serve` as a real process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

TOKEN = "simulation-token-" + "s" * 24
PROJECT_SAMPLES = 2500  # the rest of MNIST-5k (2,500) is the production pool
CONFIG = {
    "model.name": "small_cnn",
    "train.epochs": 3,
    "train.batch_size": 64,
    "train.threads": 2,
    "explore.backbone": "pixels",
    "evaluate.bootstrap_samples": 200,
    "evaluate.baselines": False,
}


def mnist() -> tuple[np.ndarray, np.ndarray]:
    """(labels as str, uint8 images (5000, 28, 28)) in a fixed shuffled order."""
    from dlworkflow.datasets.digits import _mnist5k_rows

    rows = list(_mnist5k_rows())
    order = np.random.default_rng(7).permutation(len(rows))
    labels = np.array([rows[i][0] for i in order])
    images = np.stack([rows[i][1] for i in order])
    return labels, images


def build_project(root: Path) -> tuple[object, np.ndarray, np.ndarray]:
    """A trained, tested (PASS) and exported MNIST project on the first 2,500 digits; returns
    it with the held-out pool (labels, images) it never saw."""
    from dlworkflow.datasets.digits import write_png_folder
    from dlworkflow.project import Project

    labels, images = mnist()
    folder = write_png_folder(
        root / "images", zip(labels[:PROJECT_SAMPLES], images[:PROJECT_SAMPLES]), "mnist"
    )
    project = Project.init(root / "proj", name="drift-simulation")
    project.define(metric="accuracy", target=0.8)
    project.update_config(CONFIG)
    project.ingest(str(folder), progress=False)
    project.split()
    project.train(progress=False)
    assert project.test().verdict.passed
    project.export()
    return project, labels[PROJECT_SAMPLES:], images[PROJECT_SAMPLES:]


# ---- shifts ------------------------------------------------------------------------------
def rotated(images: np.ndarray, degrees: float) -> np.ndarray:
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(im).rotate(degrees, resample=Image.BILINEAR)) for im in images]
    )


def noisy(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Gaussian noise with standard deviation `sigma` x 255."""
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, sigma * 255, images.shape), 0, 255).astype(np.uint8)


def inverted(images: np.ndarray) -> np.ndarray:
    return 255 - images


SHIFTS = {
    "rotated 45 deg": lambda im: rotated(im, 45),
    "noisy sigma 0.3": lambda im: noisy(im, 0.3),
    "inverted": inverted,
}


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


# ---- the server ------------------------------------------------------------------------------
@contextlib.contextmanager
def served(root: Path, log: Path) -> Iterator[int]:
    """`dlw serve` on a free 127.0.0.1 port (token TOKEN) until the block ends; yields the port."""
    import httpx

    from dlworkflow.deploy.serve.loadgen import free_port

    port = free_port()
    env = {**os.environ, "DLW_SERVE_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dlworkflow", "serve", "-p", str(root), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dlw serve did not start: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGINT)  # flushes the prediction log
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def send(port: int, images: np.ndarray, *, per_request: int = 8, concurrency: int = 4) -> int:
    """POST the images (base64 PNG, `per_request` per request); how many were predicted."""
    import base64

    from dlworkflow.deploy.serve.loadgen import predict_request, run_load

    bodies = []
    for start in range(0, len(images), per_request):
        chunk = [base64.b64encode(png(im)).decode() for im in images[start : start + per_request]]
        bodies.append(predict_request(port, json.dumps({"images": chunk}).encode(), TOKEN))
    _, _, statuses = run_load(port, bodies, concurrency)
    assert set(statuses) == {200}, f"the server answered {sorted(set(statuses))}"
    return len(images)


def clear_log(root: Path) -> None:
    for path in (root / ".dlw" / "serve").glob("predictions*.jsonl*"):
        path.unlink()
