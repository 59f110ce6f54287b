"""The UI's login: one token per `dlw ui` start, carried once in the URL, then in a cookie.

Where the token comes from: a new random one each time `dlw ui` starts (32 bytes from
`secrets`, the length `dlw serve` generates), never the serve token file. The serve token is
a long-lived bearer for the prediction API that clients keep; the UI's token has to be printed
in full (the URL a person opens), and a printed secret ends up in terminal scrollback and
logs. A token that dies with the process makes such a leak worthless once the UI stops, and
nothing has to be stored on disk. DLW_UI_TOKEN sets it instead (a fixed URL for a bookmark or
a script), with the same minimum length as DLW_SERVE_TOKEN.

The flow: GET /any/page?token=T with the right T sets the cookie (HttpOnly, SameSite=Strict,
Path=/) and redirects (303) to the same URL without the token, so the token leaves the address
bar and the history; later requests carry the cookie. No token, or a wrong one: 401 with a
short page saying how to get in. GET /health needs none. Tokens are compared in constant time
(secrets.compare_digest on bytes). The cookie's name carries the port: browsers share cookies
between ports of one host, so two UIs on 127.0.0.1 must not overwrite each other's.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dlworkflow.deploy.serve.token import MIN_LENGTH, env_token
from dlworkflow.errors import ConfigError

ENV_VAR = "DLW_UI_TOKEN"
QUERY_PARAM = "token"
OPEN_PATHS = frozenset({"/health"})

#: Every response: no framing (clickjacking), no referrer (a URL never leaves the page), nothing
#: from elsewhere (the pages and the reports are self-contained: the vendored stylesheet,
#: inline styles and data: images, and no scripts).
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'",
}


def new_token() -> str:
    """DLW_UI_TOKEN when set (at least MIN_LENGTH characters), else a new random token."""
    fix = f"unset {ENV_VAR} (a new token is made at each start), or set a longer one"
    return env_token(ENV_VAR, fix=fix) or secrets.token_urlsafe(32)


def cookie_name(port: int | None) -> str:
    return f"dlw_ui_{port}" if port else "dlw_ui"


def same_token(given: str | None, token: bytes) -> bool:
    if not given:
        return False
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token)


UNAUTHORIZED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dlw ui: token needed</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>A token is needed</h1>
<p>{reason}</p>
<p>Open the address <code>dlw ui</code> printed when it started
(<code>http://HOST:PORT/?token=...</code>): it logs this browser in. Each start of
<code>dlw ui</code> makes a new token, so an address from an earlier start no longer works.</p>
</body></html>
"""


def unauthorized(reason: str) -> HTMLResponse:
    return HTMLResponse(
        UNAUTHORIZED_PAGE.format(reason=reason),
        status_code=401,
        headers={"Cache-Control": "no-store", **SECURITY_HEADERS},
    )


class TokenGate:
    """The middleware (`app.middleware("http")(TokenGate(token, cookie))`) in front of every
    route but OPEN_PATHS."""

    def __init__(self, token: str, cookie: str, *, secure: bool = False) -> None:
        if len(token) < MIN_LENGTH:
            raise ConfigError(
                "The UI token is too short.",
                expected=f"at least {MIN_LENGTH} characters",
                received=f"{len(token)} characters",
            )
        self.token = token.encode("utf-8")
        self.cookie = cookie
        self.secure = secure

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await self._gate(request, call_next)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    async def _gate(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path in OPEN_PATHS:
            return await call_next(request)
        given = request.query_params.get(QUERY_PARAM)
        if given is not None:
            if not same_token(given, self.token):
                return unauthorized("The token in this address is not this server's token.")
            return self._login(request)
        cookie = request.cookies.get(self.cookie)
        if cookie is None:
            return unauthorized("This browser is not logged in to this dlw ui.")
        if not same_token(cookie, self.token):
            return unauthorized(
                "This browser's login is for an earlier start of dlw ui (or another one)."
            )
        return await call_next(request)

    def _login(self, request: Request) -> Response:
        """The cookie, and a redirect to the same address without the token."""
        target = request.url.remove_query_params(QUERY_PARAM)
        location = target.path + (f"?{target.query}" if target.query else "")
        response = RedirectResponse(location, status_code=303)
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(
            self.cookie,
            self.token.decode("utf-8"),
            httponly=True,
            samesite="strict",
            path="/",
            secure=self.secure,
        )
        return response
