"""A new serve token is shown by its file and its first 4 characters, never in full; error
details (server problems, `--json` errors) never carry memory addresses or temporary paths."""

from __future__ import annotations

import gc
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def _fake_app() -> SimpleNamespace:
    bundle = SimpleNamespace(
        version=3, modality="image", metadata={"model": "tiny-cnn", "verdict": "PASS"}
    )
    holder = SimpleNamespace(bundle=bundle, forced=None)
    return SimpleNamespace(state=SimpleNamespace(server=SimpleNamespace(holder=holder)))


def _serve_output(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `dlw serve` prints at start (the app and uvicorn replaced by stand-ins)."""
    import uvicorn

    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve import app as app_module
    from dlworkflow.deploy.serve.run import serve

    monkeypatch.setattr(app_module, "create_app", lambda *a, **k: _fake_app())
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    said: list[str] = []
    try:
        serve(root, Serve(workers=1), say=said.append)  # the app stand-in: one process
    finally:
        gc.unfreeze()
    return "\n".join(said)


def test_a_new_token_is_written_0600_and_shown_only_by_its_path_and_first_4_characters(
    tmp_path, monkeypatch
):
    from dlworkflow.deploy.serve.token import token_path

    monkeypatch.delenv("DLW_SERVE_TOKEN", raising=False)
    output = _serve_output(tmp_path, monkeypatch)
    path = token_path(tmp_path)
    token = path.read_text().strip()
    assert len(token) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert token not in output, "the full token was printed"
    assert token[4:12] not in output
    assert f"{token[:4]}…" in output and str(path) in output
    again = _serve_output(tmp_path, monkeypatch)  # the stored token: not printed either
    assert token not in again and str(path) in again


def test_problem_responses_carry_no_memory_address_or_temporary_path():
    import json

    from dlworkflow.deploy.serve.problems import ApiError
    from dlworkflow.runtime.bundle import InputError

    temp = tempfile.gettempdir()
    exc = InputError(
        "cannot identify image file <_io.BytesIO object at 0x7f3a2c1b2e80>",
        received=f"{temp}/tmpab12cd34/upload.png",
        fix="see /tmp/dlw-xyz/server.log",
    )
    problem = ApiError.from_dlw(exc)
    text = json.dumps(problem.body()) + problem.response().body.decode()
    assert not ADDRESS.search(text), text
    assert temp not in text and "/tmp/" not in text, text
    assert "cannot identify image file" in text and "upload.png" in text  # still useful
    direct = ApiError(400, "bad", f"{object()!r} in {temp}/x/y.bin").body()["message"]
    assert not ADDRESS.search(direct) and temp not in direct, direct


def test_dlw_error_json_carries_no_memory_address_or_temporary_path():
    import json

    from dlworkflow.errors import DataError

    temp = tempfile.gettempdir()
    exc = DataError(
        f"Cannot read <function load at 0x7ffd1234abcd> from {temp}/tmpq1w2e3r4/part.csv.",
        expected="a CSV file",
        received=f"{object()!r}",
        fix=f"delete {temp}/dlw-cache-9f8e/ and retry",
        context={"path": f"{temp}/tmpq1w2e3r4/part.csv", "n": 3},
    )
    out = exc.to_json()
    text = json.dumps(out)
    assert not ADDRESS.search(text), text
    assert temp not in text and "/tmp/" not in text, text
    assert "part.csv" in out["what"] and out["context"]["n"] == 3
    assert out["message"].startswith("Cannot read")
