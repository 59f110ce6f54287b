"""The documentation site: it builds with `mkdocs build --strict`, documents every CLI command
and option and every config key, and has no broken internal link or anchor.

The command tree and the config keys are walked here independently of the generator
(docs/gen/reference.py), so a bug in the generator that drops something is caught."""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _require_docs_tools() -> None:
    import importlib.util

    missing = [
        m
        for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.fail(
            f"the docs tests need {', '.join(missing)}: make setup-dev "
            "(pip install -r requirements-dev.lock)"
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_docs_tools()
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(out),
            "--config-file",
            str(ROOT / "mkdocs.yml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert not re.search(r"^WARNING", log, re.MULTILINE), log
    return out


class Page(HTMLParser):
    """The ids, links and text of one built page; text also per <h2> section (by its id)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.text: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self._section: list[str] | None = None
        self._skip = 0
        self.headings: list[str] = []  # the text of every <h2>
        self._heading: list[str] | None = None
        self.first_cells: list[str] = []  # the text of the first cell of every table row
        self._cell: list[str] | None = None
        self._cells_in_row = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key) and (key == "id" or tag == "a"):
                self.ids.add(str(a[key]))
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script", "source"):
                self.links.append(str(a[key]))
        if tag == "h2" and a.get("id"):
            self._section = self.sections.setdefault(str(a["id"]), [])
        if tag == "h2":
            self._heading = []
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "tr":
            self._cells_in_row = 0
        if tag == "td":
            self._cells_in_row += 1
            if self._cells_in_row == 1:
                self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag == "h2" and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None
        if tag == "td" and self._cell is not None:
            self.first_cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._section is not None:
            self._section.append(data)

    def all_text(self) -> str:
        return " ".join("".join(self.text).split())

    def section_text(self, section_id: str) -> str:
        return " ".join("".join(self.sections.get(section_id, [])).split())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


# ---- (a) every CLI command, argument and option ---------------------------------------------
def _commands() -> list[tuple[str, Any]]:
    import typer

    from dlworkflow.cli import app

    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(group: Any, ctx: Any, prefix: str) -> None:
        names = group.list_commands(ctx)
        assert names, f"{prefix} has no commands"
        for name in names:
            command = group.get_command(ctx, name)
            sub = type(ctx)(command, info_name=name, parent=ctx)
            if hasattr(command, "list_commands"):
                walk(command, sub, f"{prefix} {name}")
            else:
                found.append((f"{prefix} {name}", command))

    walk(root, type(root).context_class(root, info_name="dlw"), "dlw")
    return found


def test_cli_reference_has_every_command_and_option(site: Path) -> None:
    commands = _commands()
    assert len(commands) > 20 and any(n == "dlw config schema" for n, _ in commands)
    page = parse(site / "reference" / "cli" / "index.html")
    missing = []
    for name, command in commands:
        section_id = name.replace(" ", "-")
        section = page.section_text(section_id)
        if not section.startswith(name):
            missing.append(f"{name}: no section #{section_id}")
            continue
        first_line = " ".join((command.help or "").split("\n\n")[0].replace("`", "").split())
        if first_line[:40] not in section:
            missing.append(f"{name}: help text {first_line[:40]!r}")
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                if opt not in section:
                    missing.append(f"{name}: {opt}")
    assert not missing, "not in the CLI reference:\n" + "\n".join(missing)


# ---- (b) every config key ------------------------------------------------------------------
def _config_keys() -> list[str]:
    from dlworkflow.config import json_schema

    schema = json_schema()
    defs = schema.get("$defs", {})

    def objects(node: dict[str, Any]) -> list[dict[str, Any]]:
        if "$ref" in node:
            return objects(defs[node["$ref"].split("/")[-1]])
        if "properties" in node:
            return [node]
        return [o for option in node.get("anyOf", []) for o in objects(option)]

    keys: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, prop in node["properties"].items():
            keys.append(prefix + key)
            for child in objects(prop):
                walk(child, f"{prefix}{key}.")
            target = defs[prop["$ref"].split("/")[-1]] if "$ref" in prop else prop
            values = target.get("additionalProperties")
            if isinstance(values, dict):
                for child in objects(values):
                    walk(child, f"{prefix}{key}.<name>.")

    walk(schema, "")
    return keys


def test_config_reference_has_every_key(site: Path) -> None:
    keys = _config_keys()
    assert "train.learning_rate" in keys and "tune.space.<name>.type" in keys
    assert "problem.constraints.max_latency_ms" in keys and "audit.feature_cost.done" in keys
    page = parse(site / "reference" / "config" / "index.html")
    documented = set(page.first_cells)  # the key column of the tables
    headings = {h.split("¶")[0].strip() for h in page.headings}  # a section of the file
    missing = [k for k in keys if k not in documented and k not in headings]
    assert not missing, f"config keys not in the configuration reference: {missing}"


# ---- (c) every internal link resolves --------------------------------------------------------
def test_internal_links_and_anchors_resolve(site: Path) -> None:
    pages = {p.relative_to(site).as_posix(): parse(p) for p in site.rglob("*.html")}
    assert len(pages) > 15
    broken = []
    for rel, page in pages.items():
        if rel == "404.html":  # served from any path, so its links are absolute by design
            continue
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:")):
                continue
            if not parts.path:  # "#anchor" on this page
                target_rel = rel
            else:
                joined = posixpath.normpath(
                    posixpath.join(posixpath.dirname(rel), unquote(parts.path))
                )
                target = site / joined
                if target.is_dir() or parts.path.endswith("/"):
                    target = target / "index.html"
                if not target.is_file():
                    broken.append(f"{rel}: {link} (no file)")
                    continue
                target_rel = target.relative_to(site).as_posix()
            if parts.fragment:
                target_page = pages.get(target_rel)
                if target_page is None or unquote(parts.fragment) not in target_page.ids:
                    broken.append(f"{rel}: {link} (no anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_step_pages_show_real_output(site: Path) -> None:
    """The nine generated step pages exist, each with at least one recorded command, and every
    figure they show is in the site."""
    steps = sorted((site / "steps").glob("[1-9]-*/index.html"))
    assert len(steps) == 9, steps
    for path in steps:
        page = parse(path)
        assert "$ dlw " in page.all_text(), f"{path} shows no command"
        for link in page.links:
            if link.startswith("../img/") or link.startswith("img/"):
                assert (path.parent / link).resolve().is_file(), f"{path}: {link}"
