"""The UI's token gate: 401 without the token, the login cookie and its flags, /health open,
constant-time comparison of bytes, and the token's source (DLW_UI_TOKEN or a new one)."""

from __future__ import annotations

import pytest
from uikit import TOKEN

from dlworkflow.errors import ConfigError
from dlworkflow.ui.auth import ENV_VAR, new_token
from dlworkflow.ui.run import login_url


@pytest.mark.parametrize("path", ["/", "/runs", "/reports/eda.html", "/static/ui.css"])
def test_every_page_but_health_needs_the_token(client, path):
    response = client().get(path)
    assert response.status_code == 401
    assert "text/html" in response.headers["content-type"]
    assert "?token=" in response.text  # says how to get in
    assert "explore" not in response.text  # nothing of the project


def test_health_needs_no_token(client):
    response = client().get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_wrong_token_is_refused_and_sets_no_cookie(client):
    c = client()
    for wrong in ("x" * len(TOKEN), TOKEN[:-1], TOKEN + "z", "é" * 20):
        response = c.get("/", params={"token": wrong}, follow_redirects=False)
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
    c.cookies.set("dlw_ui", "x" * len(TOKEN))
    assert c.get("/").status_code == 401


def test_the_token_sets_a_strict_httponly_cookie_and_leaves_the_address(client):
    c = client()
    response = c.get("/runs", params={"token": TOKEN, "page": "1"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/runs?page=1"  # the token gone, the rest kept
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert cookie.startswith(f"dlw_ui={TOKEN};")
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=strict"
    assert flags["path"] == "Path=/"
    assert "max-age" not in flags and "expires" not in flags  # a session cookie
    # later requests: the cookie alone
    page = c.get("/")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'none'" in page.headers["content-security-policy"]


def test_the_cookie_name_carries_the_port(ui_root):
    from fastapi.testclient import TestClient

    from dlworkflow.ui import create_app
    from dlworkflow.ui.auth import cookie_name

    app = create_app(ui_root, token=TOKEN, cookie=cookie_name(8765))
    response = TestClient(app).get("/?token=" + TOKEN, follow_redirects=False)
    assert response.headers["set-cookie"].startswith("dlw_ui_8765=")


def test_the_token_is_new_at_each_start_unless_set(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    first, second = new_token(), new_token()
    assert first != second and len(first) >= 40
    monkeypatch.setenv(ENV_VAR, "a-fixed-token-of-enough-length")
    assert new_token() == "a-fixed-token-of-enough-length"
    monkeypatch.setenv(ENV_VAR, "short")
    with pytest.raises(ConfigError, match="too short"):
        new_token()


def test_a_short_token_is_refused_by_the_app(ui_root):
    from dlworkflow.ui import create_app

    with pytest.raises(ConfigError, match="too short"):
        create_app(ui_root, token="short")


def test_the_login_url():
    assert login_url("127.0.0.1", 8765, "abc") == "http://127.0.0.1:8765/?token=abc"
    assert login_url("::1", 80, "abc") == "http://[::1]:80/?token=abc"
    assert login_url("0.0.0.0", 8765, "abc") == "http://127.0.0.1:8765/?token=abc"


def test_dlw_ui_prints_the_address_and_warns_off_loopback(ui_root, monkeypatch):
    """`dlw ui` as the CLI runs it, up to uvicorn (recorded instead of run)."""
    import uvicorn
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    monkeypatch.delenv(ENV_VAR, raising=False)
    runner = CliRunner()
    local = runner.invoke(app, ["ui", "-p", str(ui_root), "--port", "9123"], env={"COLUMNS": "200"})
    assert local.exit_code == 0, local.output
    assert "http://127.0.0.1:9123/?token=" in local.output
    assert "WARNING" not in local.output
    assert started[-1][1]["host"] == "127.0.0.1" and started[-1][1]["port"] == 9123
    token = local.output.split("?token=")[1].split()[0]
    assert len(token) >= 40
    wide = runner.invoke(app, ["ui", "-p", str(ui_root), "--host", "0.0.0.0"])
    assert wide.exit_code == 0, wide.output
    assert "WARNING: bound to 0.0.0.0" in wide.output
    assert wide.output.split("?token=")[1].split()[0] != token  # new at each start
    missing = runner.invoke(app, ["ui", "-p", str(ui_root / "nowhere")])
    assert missing.exit_code != 0 and "No dlworkflow project" in missing.output
