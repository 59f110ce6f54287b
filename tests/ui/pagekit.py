"""What the evaluation, deployment and monitor page tests share: a logged-in client, a page's
text without tags, and the hidden CSRF field of a confirmation page."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from uikit import TOKEN


def logged_in(client: Any, root: Path | None = None) -> Any:
    c = client(root)
    assert c.get("/", params={"token": TOKEN}).status_code == 200
    return c


def text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def rows(page: str, css: str) -> list[str]:
    return re.findall(rf'<tr class="{css}[^"]*".*?</tr>', page, flags=re.S)


def csrf_field(page: str) -> str:
    found = re.findall(r'<input type="hidden" name="csrf" value="([^"]*)">', page)
    assert len(found) == 1, page
    return found[0]
