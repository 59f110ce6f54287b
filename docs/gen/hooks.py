"""mkdocs hook (mkdocs.yml `hooks:`): a page line `<!-- dlw:NAME -->` is replaced, at every
build, by the reference section NAME generated from the code (docs/gen/reference.py). An
unknown NAME is a warning, so `mkdocs build --strict` fails on it."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import reference  # noqa: E402  (docs/gen/reference.py, beside this file)

log = logging.getLogger("mkdocs.hooks.dlw")
MARKER = re.compile(r"^<!-- dlw:([\w-]+) -->$", re.MULTILINE)
_cache: dict[str, str] = {}


def on_pre_build(config: Any) -> None:
    _cache.clear()  # `mkdocs serve` rebuilds: generate from the code as it is now


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in reference.GENERATORS:
            log.warning("%s: unknown generated section %r (known: %s)", page.file.src_uri, name,
                        ", ".join(reference.GENERATORS))
            return match.group(0)
        if name not in _cache:
            _cache[name] = reference.GENERATORS[name]()
        return _cache[name]

    return MARKER.sub(fill, markdown)
