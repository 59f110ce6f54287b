"""Real-browser machinery for the UI tests: live `dlw ui` servers and one Chromium per session.

Fixtures (registered by tests/ui/conftest.py, usable from any tests/ui test file):

- `live_ui(root) -> Live`: the UI app of the project at `root` (create_app(root, token=TOKEN),
  the login cookie named after its port, as `dlw ui` does) under uvicorn in a thread on a free
  127.0.0.1 port. One server per root for the whole session (a per-test root such as
  deploy_root gets its own); all are stopped at the end of the session.
- `browser`: Playwright (sync API) driving the system Chromium (`shutil.which("chromium")`,
  installed by `make system-deps`; Playwright never downloads a browser here). Missing: the
  test FAILS with the command that installs it, never skips. Launched by the first test that
  needs it and closed after the last of a run of such tests (Chromium below): one launch per
  session while the browser tests run one after the other.
- `ui_page`: a fresh context and page per test, with a `Watch` on it (`ui_page.watch`) that
  collects console errors, page errors and Content-Security-Policy violations; the test fails
  at teardown when any were seen (call `ui_page.watch.allow(...)` first to expect one).

    def test_x(live_ui, ui_page, ui_root):
        live = live_ui(ui_root)
        login(ui_page, live)                       # /?token=... -> the cookie -> "/"
        ui_page.goto(live.url("/runs"))
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from uikit import TOKEN

from system_deps import missing_system_package

CHROMIUM = "chromium"
VIEWPORT = {"width": 1280, "height": 800}
START_TIMEOUT_S = 20.0
NAV_TIMEOUT_MS = 15_000


@dataclass
class Live:
    """A running UI server: its base URL, its token and its login URL."""

    root: Path
    port: int
    token: str
    server: Any
    thread: threading.Thread

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    @property
    def login_url(self) -> str:
        return f"{self.base}/?token={self.token}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(root: Path, *, token: str = TOKEN) -> Live:
    """create_app(root) under uvicorn in a daemon thread; returns once it accepts requests."""
    import uvicorn

    from dlworkflow.ui.app import create_app
    from dlworkflow.ui.auth import cookie_name

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(root, token=token, cookie=cookie_name(port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"dlw-ui-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the ui server for {root} did not start on port {port}")
        time.sleep(0.01)
    return Live(Path(root), port, token, server, thread)


@pytest.fixture(scope="session")
def live_ui() -> Iterator[Callable[[Path], Live]]:
    servers: dict[Path, Live] = {}

    def serve(root: Path) -> Live:
        key = Path(root).resolve()
        if key not in servers:
            servers[key] = start_server(key)
        return servers[key]

    yield serve
    for live in servers.values():
        live.stop()


def chromium_path() -> str:
    """The system Chromium; a test that needs it fails (never skips) when it is missing."""
    found = shutil.which(CHROMIUM)
    if found is None:
        missing_system_package(CHROMIUM)
    return found


class Chromium:
    """The one Chromium of the session, launched by the first test that needs it and closed
    as soon as the next test does not (pytest_runtest_teardown below). Closed early because
    Playwright's sync API holds an event loop on the main thread while it runs: asyncio.run()
    in a later test (the serve tests use it) would fail with "cannot be called from a running
    event loop". The browser tests run one after the other, so the session launches it once."""

    def __init__(self) -> None:
        self.playwright: Any = None
        self.browser: Any = None
        self.launches = 0

    def get(self) -> Any:
        if self.browser is None:
            from playwright.sync_api import sync_playwright

            executable = chromium_path()
            self.playwright = sync_playwright().start()
            try:
                # Playwright's default chromium_sandbox=False passes --no-sandbox: Chromium's
                # sandbox fails when it runs as root (containers, CI); explicit so it stays so.
                self.browser = self.playwright.chromium.launch(
                    executable_path=executable,
                    headless=True,
                    chromium_sandbox=False,
                    args=["--disable-dev-shm-usage", "--disable-gpu"],
                )
            except Exception:
                self.close()
                raise
            self.launches += 1
        return self.browser

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None
        if self.playwright is not None:
            self.playwright.stop()
            self.playwright = None


CHROMIUM_SESSION = Chromium()


@pytest.fixture
def browser() -> Any:
    """The session's Chromium (a Playwright Browser): make a context per test from it."""
    return CHROMIUM_SESSION.get()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a test's fixtures are torn down: close the browser unless the next test uses it.
    (Registered by tests/ui/conftest.py, which imports it.)"""
    try:
        return (yield)
    finally:
        if nextitem is None or "browser" not in getattr(nextitem, "fixturenames", ()):
            CHROMIUM_SESSION.close()


#: Chromium asks every site for /favicon.ico on its own; the UI has none (a 404 in the console
#: that no page of the UI caused).
ALWAYS_ALLOWED = (re.compile(r"status of 404 .*\(http://127\.0\.0\.1:\d+/favicon\.ico\)$"),)
CSP_MESSAGE = re.compile(r"Content Security Policy|Content-Security-Policy", re.I)


@dataclass
class Watch:
    """What a page reported: console errors (CSP violations among them) and uncaught errors."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect messages matching `pattern` (e.g. the 401 a test asks for on purpose)."""
        self.allowed.append(re.compile(pattern))

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" or CSP_MESSAGE.search(text):
            where = message.location.get("url", "") if message.location else ""
            self.errors.append(f"console {message.type}: {text} ({where})")

    def unexpected(self) -> list[str]:
        allowed = [*self.allowed, *ALWAYS_ALLOWED]
        return [e for e in self.errors if not any(p.search(e) for p in allowed)]

    def csp_violations(self) -> list[str]:
        return [e for e in self.errors if CSP_MESSAGE.search(e)]


@pytest.fixture
def ui_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=True)
    context.set_default_timeout(NAV_TIMEOUT_MS)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.watch = watch
    try:
        yield page
    finally:
        context.close()
    problems = watch.unexpected()
    assert not problems, "the browser reported errors:\n" + "\n".join(problems)


def login(page: Any, live: Live) -> None:
    """Open the login URL: the server sets the cookie and redirects to "/" without the token."""
    response = page.goto(live.login_url)
    assert response is not None and response.ok, response and response.status
    assert page.url == live.url("/"), page.url  # the token left the address bar
    cookies = {c["name"]: c for c in page.context.cookies()}
    cookie = cookies[f"dlw_ui_{live.port}"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


#: Loads every image of the page (lazy ones too: they are made eager) and returns the src of
#: each that did not load (a 404, not an image).
BROKEN_IMAGES = """() => Promise.all(Array.from(document.images).map(i => {
  i.loading = 'eager';
  return i.complete ? null : new Promise(done => { i.onload = i.onerror = done; });
})).then(() => Array.from(document.images)
  .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')))"""


def broken_images(page: Any) -> list[str]:
    """The src of every image of the page that does not load (lazy ones are loaded first)."""
    return page.evaluate(BROKEN_IMAGES)


def visible_text(page: Any) -> str:
    """The page's rendered text, whitespace folded."""
    return re.sub(r"\s+", " ", page.inner_text("body"))
