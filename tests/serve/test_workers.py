"""`dlw serve --workers 2`: two processes on one port (SO_REUSEPORT), connections spread over
both, one prediction log per process merged by `dlw monitor`, /metrics summed over both,
the token still required, and every process gone after SIGINT; plus the log slots."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from servekit import b64, free_port, load, server_process

from dlworkflow.runtime.prediction_logs import Slot, log_chains, log_path

TOKEN = "workers-test-token-" + "w" * 16
N_REQUESTS, CONCURRENCY = 400, 16


def _command(root: Path, port: int, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "dlworkflow", "serve", "-p", str(root), "--port", str(port)] + [
        "--workers",
        str(workers),
    ]


def _workers(pid: int) -> list[int]:
    """The spawned worker processes of `pid` (not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_worker_processes_share_the_port_the_logs_and_the_metrics(
    project_root, digit_pngs, tmp_path
):
    from dlworkflow.monitor.logread import read_log

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DLW_SERVE_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    with server_process(
        _command(project_root, port), log=tmp_path / "serve.log", port=port, env=env
    ) as parent:
        workers = [pid for pid in _workers(parent.pid) if _alive(pid)]
        assert httpx.get(f"{base}/v1/model").status_code == 401
        bodies = [
            json.dumps({"images": [b64(digit_pngs[i % len(digit_pngs)])]}).encode()
            for i in range(N_REQUESTS)
        ]
        _, _, statuses = load(port, TOKEN, bodies, CONCURRENCY)
        # the port is taken: a second server says so instead of joining it
        second = subprocess.run(
            _command(project_root, port), env=env, capture_output=True, text=True, timeout=120
        )
        metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert statuses.count(200) == N_REQUESTS
    assert second.returncode != 0 and f"Cannot listen on 127.0.0.1:{port}" in second.stdout
    assert "in 2 processes" in (tmp_path / "serve.log").read_text()

    # both processes served (16 connections hashed over 2 sockets), each into its own log
    chains = log_chains(project_root)
    assert [c[-1].name for c in chains] == ["predictions.jsonl", "predictions.w1.jsonl"]
    per_process = [sum(1 for _ in c[-1].open()) for c in chains]
    assert sum(per_process) == N_REQUESTS and min(per_process) > 0, per_process
    # /metrics, whichever process answered, counts both
    assert f'dlw_requests_total{{route="/v1/predict",status="200"}} {N_REQUESTS}.0' in metrics
    count = float(re.search(r"^dlw_batch_size_count (\S+)", metrics, re.M).group(1))
    assert 0 < count <= N_REQUESTS
    assert re.search(r"^dlw_model_version 1\.0", metrics, re.M)

    # the monitor merges the processes' logs by time: the newest 300 of all, in order
    everything = [json.loads(line) for c in chains for line in c[-1].open()]
    version = everything[0]["model_version"]
    newest = sorted(everything, key=lambda r: r["ts"])[-300:]
    read = read_log(project_root, version=version, window=300)
    assert [r["ts"] for r in read.records] == [r["ts"] for r in newest]  # ties: same ts
    from_each = {r["id"] for r in read.records}
    assert all(from_each & {json.loads(line)["id"] for line in c[-1].open()} for c in chains)
    assert {str(p) for p in read.files} == {str(c[-1]) for c in chains}

    # SIGINT stopped the parent and both workers
    assert parent.returncode == 0 and len(workers) == 2
    assert not [pid for pid in workers if _alive(pid)]


def test_each_process_takes_the_lowest_free_slot(tmp_path):
    first, second = Slot(tmp_path), Slot(tmp_path)
    assert (first.number, second.number) == (0, 1)
    first.release()
    third = Slot(tmp_path)  # a restarted worker takes the freed slot back
    assert third.number == 0
    assert log_path(tmp_path, 0).name == "predictions.jsonl"
    assert log_path(tmp_path, 1).name == "predictions.w1.jsonl"
    second.release()
    third.release()


def test_log_chains_list_each_slot_oldest_file_first(tmp_path):
    folder = tmp_path / ".dlw" / "serve"
    folder.mkdir(parents=True)
    names = [
        "predictions.jsonl",
        "predictions.jsonl.1",
        "predictions.jsonl.2",
        "predictions.w1.jsonl.1",
        "predictions.w3.jsonl",
        "predictions.jsonl.bak",  # not a log
        "forced.jsonl",
    ]
    for name in names:
        (folder / name).write_text("{}\n")
    chains = [[p.name for p in chain] for chain in log_chains(tmp_path)]
    assert chains == [
        ["predictions.jsonl.2", "predictions.jsonl.1", "predictions.jsonl"],
        ["predictions.w1.jsonl.1"],
        ["predictions.w3.jsonl"],
    ]


@pytest.mark.parametrize("workers", [0, 65])
def test_workers_out_of_range_is_a_config_error(workers):
    from pydantic import ValidationError

    from dlworkflow.config import Serve

    with pytest.raises(ValidationError):
        Serve(workers=workers)


def test_workers_stop_when_their_parent_is_killed(project_root, tmp_path):
    """SIGKILL leaves the parent no time to stop its workers: they stop themselves (Linux
    PR_SET_PDEATHSIG), and the port is free again."""
    import signal
    import socket
    import time

    port = free_port()
    env = {**os.environ, "DLW_SERVE_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    with server_process(
        _command(project_root, port), log=tmp_path / "serve.log", port=port, env=env
    ) as parent:
        workers = [pid for pid in _workers(parent.pid) if _alive(pid)]
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 20
        while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
    assert len(workers) == 2 and not [pid for pid in workers if _alive(pid)]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # nothing holds the port
