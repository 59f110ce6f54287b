"""The JSON Schema of dlworkflow.yaml inside the project, for editors.

`dlw init` writes dlworkflow.schema.json next to dlworkflow.yaml and starts dlworkflow.yaml with

    # yaml-language-server: $schema=./dlworkflow.schema.json

so editors with the YAML language server (VS Code's YAML extension, Neovim, JetBrains, ...)
validate and complete the file. The schema is the one `dlw config schema` prints (pydantic's,
of dlworkflow.config.ProjectConfig). Loading a project refreshes the file when the installed
dlworkflow's schema differs from it; every rewrite of dlworkflow.yaml keeps the first line.
"""

from __future__ import annotations

import contextlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = "dlworkflow.schema.json"
SCHEMA_LINE = f"# yaml-language-server: $schema=./{SCHEMA_FILE}"
_LINE_PREFIX = "# yaml-language-server:"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


@lru_cache(maxsize=1)
def schema_text() -> str:
    """The schema as `dlw config schema` prints it and dlworkflow.schema.json holds it."""
    from dlworkflow.config import json_schema

    return json.dumps({"$schema": DRAFT, **json_schema()}, indent=2) + "\n"


def schema_path(root: str | Path) -> Path:
    return Path(root) / SCHEMA_FILE


def write_schema(root: str | Path) -> bool:
    """Write dlworkflow.schema.json into the project unless it already holds this version's
    schema; True when the file was written."""
    from dlworkflow.fileio import atomic_write_text

    path = schema_path(root)
    text = schema_text()
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


def refresh_schema(root: str | Path, config_path: str | Path) -> None:
    """On project load: rewrite the schema file when the config points to it and it is
    missing or out of date. A project on a read-only filesystem is left as it is."""
    try:
        with open(config_path, encoding="utf-8") as handle:
            first = handle.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return
    if first != SCHEMA_LINE:
        return
    with contextlib.suppress(OSError):
        write_schema(root)


def has_schema_line(text: str) -> bool:
    """Whether the YAML text starts with a yaml-language-server modeline (ours or the user's)."""
    return text.startswith(_LINE_PREFIX)


def with_schema_line(text: str) -> str:
    """`text` starting with our modeline; a modeline the user wrote is kept as it is."""
    return text if has_schema_line(text) else f"{SCHEMA_LINE}\n{text}"


def keep_schema_line(before: str, after: str) -> str:
    """`after` (a rewrite of the YAML text `before`) with the modeline `before` started with."""
    if not has_schema_line(before) or has_schema_line(after):
        return after
    return before.split("\n", 1)[0] + "\n" + after


def write_schema_and_line(project: Any) -> tuple[Path, bool]:
    """`dlw config schema --write`: the project's schema file brought up to date, and the
    modeline added to dlworkflow.yaml when it has none (a project made before either
    existed). (schema file, whether anything changed)."""
    from dlworkflow.fileio import atomic_write_text

    changed = write_schema(project.root)
    config = Path(project.paths.config)
    text = config.read_text(encoding="utf-8")
    if not has_schema_line(text):
        atomic_write_text(config, with_schema_line(text))
        changed = True
    return schema_path(project.root), changed
