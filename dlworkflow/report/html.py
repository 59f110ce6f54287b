"""The HTML of the report: one self-contained page (images inlined as data: URIs, styles
inline, no script, no network), with print CSS so it prints and converts to PDF well."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlworkflow.style import CSS_BASE

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # no script, no network
CSS = (
    CSS_BASE
    + """
.sub { color: var(--muted); margin: 0 0 16px; }
.first { border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px;
         background: var(--soft); }
.first h2 { margin-top: 0; }
.first .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; align-items: start; }
.verdict { font-size: 22px; font-weight: 700; padding: 10px 14px; border-radius: 6px;
           border: 2px solid currentColor; margin: 8px 0; display: block; }
.verdict.PASS { color: var(--good); } .verdict.FAIL { color: var(--bad); }
.verdict.NONE { color: var(--warn); }
.recommendation { font-weight: 600; border-left: 4px solid var(--ink); padding-left: 10px; }
.missing { color: var(--warn); background: var(--soft); border: 1px solid var(--line);
           padding: 8px 12px; border-radius: 6px; }
.missing code { font-weight: 700; }
ul.findings li { margin: 4px 0; } .src { color: var(--muted); font-size: 12px; }
pre { background: var(--soft); padding: 10px; overflow-x: auto; white-space: pre-wrap; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 760px) { .first .grid, .two { grid-template-columns: 1fr; } }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  @page { size: A4; margin: 16mm 14mm; }
  .first { break-after: page; background: none; }
  h2 { break-after: avoid; } figure, table, .verdict { break-inside: avoid; }
  pre { white-space: pre-wrap; }
  a { color: inherit; text-decoration: none; }
}
"""
)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    body: str


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def code(text: str) -> str:
    return f"<code>{esc(text)}</code>"


def missing(what: str, command: str) -> str:
    """A section whose step has not run: say so, and name the command that runs it."""
    return (
        f"<p class='missing' data-missing='{esc(command)}'>{esc(what)}: run "
        f"<code>{esc(command)}</code></p>"
    )


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def table(
    header: Sequence[str] | None, rows: Iterable[Sequence[Any]], *, numeric: bool = True
) -> str:
    head = ("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>") if header else ""
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i == 0 and not header:
                cells.append(f"<th>{esc(cell)}</th>")
            else:
                cls = " class='num'" if numeric and _is_number(cell) else ""
                cells.append(f"<td{cls}>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def bullet_list(items: Iterable[str], cls: str = "") -> str:
    lis = "".join(f"<li>{esc(item)}</li>" for item in items)
    return f"<ul class='{cls}'>{lis}</ul>" if lis else ""


def data_uri(path: Path) -> str | None:
    """A PNG/JPEG/SVG file as a data: URI (the report must not depend on other files)."""
    mime = {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".svg": "image/svg+xml",
    }.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def figure(path: Path, caption: str, *, alt: str | None = None) -> str:
    uri = data_uri(path)
    if uri is None:
        return f"<p class='missing'>figure not found: {esc(path.name)}</p>"
    return (
        f"<figure><img src='{uri}' alt='{esc(alt or caption)}'>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def png_figure(png: bytes, caption: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (
        f"<figure><img src='{uri}' alt='{esc(caption)}'>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def page(title: str, subtitle: str, sections: list[Section], *, opening: str = "") -> str:
    """The page; `opening` (style.must_know: the three things to know) right under the title."""
    toc = "".join(
        f"<li><a href='#{s.key}'>{esc(s.title)}</a></li>" for s in sections if s.key != "summary"
    )
    parts = [
        f"<section id='{s.key}'{' class=first' if s.key == 'summary' else ''}>"
        f"<h2>{esc(s.title)}</h2>\n{s.body}</section>"
        for s in sections
    ]
    nav = f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>"
    body = "\n".join(parts[:1] + [nav] + parts[1:])
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class='sub'>{esc(subtitle)}</p></header>\n{opening}"
        f"{body}\n</body></html>\n"
    )


def _is_number(value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    try:
        float(str(value).replace(",", ""))
    except ValueError:
        return False
    return True
