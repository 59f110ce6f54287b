"""One page of a list, for every paged view (the data, labels, cell and study pages)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def paged(items: Sequence[Any], number: int, size: int) -> dict[str, Any]:
    """Page `number` (1-based) of `items`, `size` a page: the page's items, the page count
    (at least 1), the total, the 1-based position of its first item and whether one follows."""
    start = (number - 1) * size
    return {
        "items": list(items[start : start + size]),
        "page_number": number,
        "pages": max(1, -(-len(items) // size)),
        "total": len(items),
        "first": start + 1,
        "has_next": start + size < len(items),
    }
