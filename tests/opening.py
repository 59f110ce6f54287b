"""What a report's opening box ("What to know", dlworkflow/style.py must_know) says: its three
points as plain text, and where it sits (before the first section: the reader's first screen)."""

from __future__ import annotations

import html
import re


def opening(page: str) -> tuple[str, list[str]]:
    """(tone class, the three points) of the page's opening box; fails when it is missing,
    has another number of points or comes after a section."""
    found = re.search(
        r"<section class='must-know ?(\w*)' id='must-know'>(.*?)</section>", page, re.S
    )
    assert found, "no 'What to know' box"
    assert page.index("id='must-know'") < page.index("<section id="), "the box is not first"
    points = [
        html.unescape(re.sub(r"<[^>]+>", "", li))
        for li in re.findall(r"<li>(.*?)</li>", found.group(2), re.S)
    ]
    assert len(points) == 3, points
    return found.group(1), points
