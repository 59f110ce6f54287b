"""mkdocs hook (mkdocs.yml `hooks:`).

- A page line `<!-- dlw:NAME -->` is replaced, at every build, by the reference section NAME
  generated from the code (docs/gen/reference.py). An unknown NAME is a warning, so
  `mkdocs build --strict` fails on it.
- Pages written by others that may or may not exist yet (OPTIONAL_PAGES) join the nav when
  they exist; a page left out of the nav would fail the strict build."""

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


OPTIONAL_PAGES = {"Reference": [("JSON output", "reference/json-output.md")]}


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    for item in config["nav"] or []:
        if not isinstance(item, dict):
            continue
        for section, entries in item.items():
            for title, path in OPTIONAL_PAGES.get(section, []):
                listed = [v for e in entries for v in (e.values() if isinstance(e, dict) else [e])]
                if (docs / path).is_file() and path not in listed:
                    entries.append({title: path})
    return config


def on_pre_build(config: Any) -> None:
    _cache.clear()  # `mkdocs serve` rebuilds: generate from the code as it is now


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in reference.GENERATORS:
            log.warning(
                "%s: unknown generated section %r (known: %s)",
                page.file.src_uri,
                name,
                ", ".join(reference.GENERATORS),
            )
            return match.group(0)
        if name not in _cache:
            try:
                _cache[name] = reference.GENERATORS[name]()
            except reference.UndocumentedError as exc:
                log.warning("%s: %s", page.file.src_uri, exc)
                return match.group(0)
        return _cache[name]

    return MARKER.sub(fill, markdown)
