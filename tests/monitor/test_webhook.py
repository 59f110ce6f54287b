"""The alert webhook against a real HTTP receiver on 127.0.0.1: JSON body, bearer token from the
environment, failures reported (never raised), no redirects followed, URLs shown redacted."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dlworkflow.monitor.webhook import alert_payload, post_alert, redact


class Receiver:
    """A local HTTP server that records every request and answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.location: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                outer.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as a GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


PAYLOAD = alert_payload(
    project="digits",
    version=3,
    status="ALERT",
    headline="2 of 8 alert",
    checks=[
        {
            "name": "brightness",
            "group": "input",
            "alert": True,
            "p_value": 1e-9,
            "effect": 0.8,
            "threshold": 0.2,
            "test": "KS + PSI",
            "sentence": "darker",
        },
        {"name": "contrast", "alert": False},
    ],
    report="/p/reports/monitor.html",
    n_live=400,
    window=("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00"),
    time="2026-01-01T01:00:05+00:00",
)


def test_posts_the_alert_json_with_the_bearer_token(receiver, monkeypatch):
    monkeypatch.setenv("DLW_TEST_HOOK_TOKEN", "s3cret-token-value")
    delivery = post_alert(
        receiver.url + "/hooks/abc?key=1", PAYLOAD, token_env="DLW_TEST_HOOK_TOKEN"
    )
    assert delivery.ok and delivery.status == 200
    [request] = receiver.requests
    assert request["path"] == "/hooks/abc?key=1"
    assert request["headers"]["Authorization"] == "Bearer s3cret-token-value"
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    assert body["event"] == "dlworkflow.monitor.alert" and body["model_version"] == 3
    assert [c["name"] for c in body["failed_checks"]] == ["brightness"]
    assert body["report"] == "/p/reports/monitor.html" and body["n_live"] == 400
    # the outcome never shows the path (a secret in many chat webhooks) or the token
    assert "abc" not in delivery.describe() and "s3cret" not in json.dumps(delivery.as_dict())


def test_no_token_header_without_token_env(receiver):
    assert post_alert(receiver.url, PAYLOAD).ok
    assert "Authorization" not in receiver.requests[0]["headers"]


def test_missing_token_variable_is_reported_and_nothing_is_sent(receiver, monkeypatch):
    monkeypatch.delenv("DLW_TEST_HOOK_TOKEN", raising=False)
    delivery = post_alert(receiver.url, PAYLOAD, token_env="DLW_TEST_HOOK_TOKEN")
    assert not delivery.ok and "DLW_TEST_HOOK_TOKEN" in delivery.error
    assert receiver.requests == []


def test_server_error_is_reported_not_raised(receiver):
    receiver.status = 500
    delivery = post_alert(receiver.url, PAYLOAD)
    assert not delivery.ok and delivery.status == 500 and "500" in delivery.error


def test_redirects_are_not_followed(receiver):
    receiver.status, receiver.location = 307, receiver.url + "/elsewhere"
    delivery = post_alert(receiver.url + "/hook", PAYLOAD)
    assert not delivery.ok and delivery.status == 307
    assert [r["path"] for r in receiver.requests] == ["/hook"]


def test_unreachable_receiver_is_reported_not_raised():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delivery = post_alert(f"http://127.0.0.1:{port}/hook", PAYLOAD, timeout=2)
    assert not delivery.ok and delivery.status is None and "reach" in delivery.error


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/x",
        "not a url",
        "http://",
        "http://127.0.0.1:99999/x",
    ],
)
def test_only_http_and_https_urls(url):
    delivery = post_alert(url, PAYLOAD)
    assert not delivery.ok and delivery.error


def test_redact_keeps_scheme_host_and_port_only():
    assert (
        redact("https://user:pw@hooks.example.com:8443/T000/B000/XXXX?token=1")
        == "https://hooks.example.com:8443"
    )
    assert redact("http://[::1]:9000/a") == "http://[::1]:9000"
