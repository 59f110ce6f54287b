"""`dlw serve` as a real process on 127.0.0.1: torch-free, token generated once, and a bounded
load test (2,000 requests at concurrency 16) with zero errors."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from servekit import b64, free_port, load, server_process

N_REQUESTS, CONCURRENCY = 2000, 16


def _command(root: Path, port: int) -> list[str]:
    # -X importtime lists every module the server process ever imports (on stderr)
    return [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "dlworkflow",
        "serve",
        "-p",
        str(root),
        "--port",
        str(port),
    ]


def test_dlw_serve_process_is_torch_free_and_serves_2000_requests(
    project_root, digit_pngs, tmp_path, capsys
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"  # stdout and stderr (-X importtime writes to stderr)
    env = {k: v for k, v in os.environ.items() if k != "DLW_SERVE_TOKEN"}
    with server_process(
        _command(project_root, port), log=log, port=port, env={**env, "OMP_NUM_THREADS": "1"}
    ):
        token_file = project_root / ".dlw" / "serve" / "token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert httpx.get(f"{base}/v1/model").status_code == 401
        bodies = [
            json.dumps({"images": [b64(digit_pngs[i % len(digit_pngs)])]}).encode()
            for i in range(N_REQUESTS)
        ]
        elapsed, latencies, statuses = load(port, token, bodies, CONCURRENCY)
        metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    ms = np.array(latencies) * 1000
    count = float(re.search(r"dlw_batch_size_count (\S+)", metrics).group(1))
    with capsys.disabled():  # shown even without -s
        print(
            f"\nload test on 127.0.0.1: {N_REQUESTS} requests, concurrency {CONCURRENCY}: "
            f"{N_REQUESTS / elapsed:.0f} req/s, p50 {np.percentile(ms, 50):.1f} ms, "
            f"p99 {np.percentile(ms, 99):.1f} ms; {count:.0f} ONNX calls (micro-batches)"
        )
    errors = len(statuses) - statuses.count(200)
    assert len(statuses) == N_REQUESTS and errors == 0, f"{errors} errors"
    assert 'dlw_requests_total{route="/v1/predict",status="200"} 2000.0' in metrics

    output = log.read_text()
    assert token not in output  # never printed in full: its file and first 4 characters
    assert f"{token[:4]}…" in output and str(token_file) in output
    assert "127.0.0.1" in output
    imported = re.findall(r"\|\s+([\w.]+)\s*$", output, flags=re.M)
    assert "dlworkflow.deploy.serve.app" in imported and "onnxruntime" in imported
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")], (
        "the server process imported torch"
    )


def test_serve_refuses_a_model_that_failed_unless_forced_with_a_reason():
    from dlworkflow.deploy.serve import ServeError, check_servable

    for verdict in ("FAIL", "UNTESTED", None):
        with pytest.raises(ServeError, match="--force"):
            check_servable({"version": 3, "verdict": verdict, "forced": None}, force_reason=None)
        assert check_servable({"version": 3, "verdict": verdict}, force_reason="demo") == "demo"
    assert check_servable({"verdict": "PASS"}, force_reason=None) is None
    forced = {"verdict": "FAIL", "forced": {"reason": "pilot", "by": "x", "at": "t"}}
    assert "pilot" in check_servable(forced, force_reason=None)


def test_cli_force_needs_a_reason(project_root):
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    result = CliRunner().invoke(app, ["serve", "-p", str(project_root), "--force"])
    assert result.exit_code == 2 and "--force needs a reason" in result.output


def test_token_from_env_config_or_generated_0600(tmp_path, monkeypatch):
    from dlworkflow.deploy.serve.token import resolve_token
    from dlworkflow.errors import ConfigError

    monkeypatch.delenv("DLW_SERVE_TOKEN", raising=False)
    first = resolve_token(tmp_path, None)
    assert first.is_new and len(first.value) >= 32
    assert first.path.stat().st_mode & 0o777 == 0o600
    again = resolve_token(tmp_path, None)
    assert again.value == first.value and not again.is_new
    monkeypatch.setenv("DLW_SERVE_TOKEN", "from-the-environment-123")
    assert resolve_token(tmp_path, None).value == "from-the-environment-123"
    assert resolve_token(tmp_path, "from-the-config-file-1234").source == "config"
    monkeypatch.setenv("DLW_SERVE_TOKEN", "short")
    with pytest.raises(ConfigError, match="too short"):
        resolve_token(tmp_path, None)
    monkeypatch.delenv("DLW_SERVE_TOKEN")
    first.path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        resolve_token(tmp_path, None)


def test_an_unpassed_champion_is_served_only_with_a_recorded_reason(project_root):
    import json
    import shutil

    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve import ServeError
    from dlworkflow.deploy.serve.app import create_app
    from dlworkflow.fileio import atomic_write_json
    from dlworkflow.runtime.versions import promote, version_folder

    failed = version_folder(project_root, 5)
    shutil.copytree(version_folder(project_root, 1), failed)
    meta = json.loads((failed / "metadata.json").read_text())
    atomic_write_json(
        failed / "metadata.json", {**meta, "version": 5, "verdict": "FAIL", "forced": None}
    )
    promote(project_root, 5)
    with pytest.raises(ServeError, match="verdict FAIL"):
        create_app(project_root, Serve(), token="t" * 20)
    app = create_app(project_root, Serve(), token="t" * 20, force_reason="pilot on 10 users")
    try:
        assert app.state.server.holder.forced == "pilot on 10 users"
    finally:
        app.state.server.close()
    record = json.loads((project_root / ".dlw/serve/forced.jsonl").read_text().splitlines()[-1])
    assert record["version"] == 5 and record["verdict"] == "FAIL"
    assert record["reason"] == "pilot on 10 users" and record["by"]
