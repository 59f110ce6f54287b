"""The CSRF token of the UI's forms: HMAC-SHA256 of the login cookie under a secret made when
the app is created (32 random bytes, never stored or shown), in a hidden field of each form.

A POST must carry both the cookie (the token gate checks it) and this field; the field is
compared in constant time. A page of another site cannot read the field (no CORS, and the
pages are not framed), so a forged form has the cookie at most; the cookie's SameSite=Strict
already keeps it off cross-site requests in current browsers, and the field stands when it
does not (an older browser, a same-site page on another port of this host). The token changes
with each start of `dlw ui` (a new secret and a new cookie), so a page from an earlier start
cannot post."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse

FIELD = "csrf"
MAX_FORM_BYTES = 4096  # every form of the UI is a few fields


class Csrf:
    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self._secret = secrets.token_bytes(32)

    def token(self, cookie_value: str | None) -> str:
        """The form token for a login cookie ("" when there is none: no form is valid)."""
        if not cookie_value:
            return ""
        digest = hmac.new(self._secret, cookie_value.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()

    def valid(self, cookie_value: str | None, given: str | None) -> bool:
        expected = self.token(cookie_value)
        if not expected or not given:
            return False
        return secrets.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


async def checked_form(
    request: Request, csrf: Csrf, *, unchanged: str, again: str
) -> dict[str, str] | HTMLResponse:
    """A POSTed form's fields (the first value of each, stripped) when it is small enough and
    carries this app's CSRF field for the request's login cookie; else the refusal to send
    (413, or 403 saying `unchanged` and where to go `again`)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return HTMLResponse(
            "<!doctype html><title>refused</title><p>That form is too large.</p>",
            status_code=413,
        )
    fields = {k: v[0].strip() for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if not csrf.valid(request.cookies.get(csrf.cookie), fields.get(FIELD)):
        return HTMLResponse(
            "<!doctype html><title>refused</title><p>This form is not from this dlw ui "
            f"(its CSRF token is missing or wrong): {unchanged}. {again}</p>",
            status_code=403,
            headers={"Cache-Control": "no-store"},
        )
    return fields
