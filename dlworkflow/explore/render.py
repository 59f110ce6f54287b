"""HTML building blocks of the report: one self-contained page (inline CSS, embedded images,
no scripts, no external links), readable on screen and on paper."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from dlworkflow.style import CSS_BASE

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # no script, no network
CSS = (
    CSS_BASE
    + """
.sev{display:inline-block;min-width:4.5em;text-align:center;border-radius:3px;color:#fff;
font-weight:bold;font-size:.8em;padding:1px 4px;margin-right:.5em}
.high{background:var(--bad)}.medium{background:var(--caution)}.low{background:var(--muted)}
.warnings li{margin:.35em 0}.action{color:#444}
.ok{color:var(--good);font-weight:bold}
.note{color:var(--muted);font-size:.9em;font-style:italic}
.tiles{display:flex;flex-wrap:wrap;gap:6px;margin:.4em 0}
.tile{border:1px solid var(--line);padding:3px;font-size:.75em;width:120px;overflow-wrap:anywhere;
break-inside:avoid}
.tile.wide{width:260px}
.tile img{width:64px;height:64px;object-fit:contain;image-rendering:pixelated;display:block;
background:#eee}
.tile img.plot{width:240px;height:80px;image-rendering:auto}
.pair{display:flex;gap:4px;border:1px solid var(--line);padding:4px;margin:3px;break-inside:avoid}
.conflict{border-color:var(--bad);border-width:2px}
.snippet{font-family:monospace;font-size:.85em;white-space:pre-wrap}
.figs{display:flex;flex-wrap:wrap;gap:8px}.figs img{max-width:100%}
.numbers td:first-child{font-weight:bold}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}.tile,.pair,figure,table
{break-inside:avoid}}
"""
)


class Raw(str):
    """HTML that is already safe (built here); everything else is escaped."""


def esc(value: Any) -> str:
    return value if isinstance(value, Raw) else html.escape(str(value))


def page(title: str, subtitle: str, sections: Iterable[str], *, opening: str = "") -> str:
    """The page; `opening` (style.must_know: the three things to know) right under the title."""
    body = opening + "\n".join(sections)
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><p class='note'>{esc(subtitle)}</p>{body}</body></html>\n"
    )


def section(anchor: str, title: str, *parts: str) -> Raw:
    return Raw(f"<section id='{esc(anchor)}'><h2>{esc(title)}</h2>{''.join(parts)}</section>")


def heading(text: str) -> Raw:
    return Raw(f"<h3>{esc(text)}</h3>")


def para(text: Any, cls: str | None = None) -> Raw:
    attr = f" class='{cls}'" if cls else ""
    return Raw(f"<p{attr}>{esc(text)}</p>")


def notes(lines: Sequence[str] | None) -> Raw:
    return Raw("".join(para(line, "note") for line in (lines or [])))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> Raw:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f" class='{cls}'" if cls else ""
    head_html = f"<tr>{head}</tr>" if headers else ""
    return Raw(f"<table{attr}>{head_html}{body}</table>")


def figure(uri: str | None, alt: str) -> Raw:
    if not uri:
        return Raw("")
    return Raw(f"<figure><img src='{esc(uri)}' alt='{esc(alt)}'></figure>")


def figures(*parts: str) -> Raw:
    return Raw(f"<div class='figs'>{''.join(parts)}</div>")


def tiles(items: Iterable[str]) -> Raw:
    return Raw(f"<div class='tiles'>{''.join(items)}</div>")


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:,.{digits}g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
