"""Typed step results that render themselves in the terminal (rich) and in notebooks (HTML)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class StepResult:
    """Base of every step's result: a title and (label, value) rows."""

    def title(self) -> str:
        return type(self).__name__

    def rows(self) -> list[tuple[str, Any]]:
        return []

    def figures(self) -> list[tuple[str, str | Path]]:
        """(caption, PNG file or data: URI) shown inline under the table in a notebook."""
        return []

    def to_json(self) -> dict[str, Any]:
        """The result as `dlw ... --json` prints it (through dlworkflow.jsonout): the title
        and the dataclass fields (those hidden from repr left out). Results whose step writes
        a JSON record override this with that record's shape."""
        return {
            "title": self.title(),
            **{f.name: getattr(self, f.name) for f in fields(self) if f.repr},
        }

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title=self.title(), show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for label, value in self.rows():
            table.add_row(label, str(value))
        return table

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td>{html.escape(str(value))}</td></tr>"
            for label, value in self.rows()
        )
        table = f"<table><caption>{html.escape(self.title())}</caption>{body}</table>"
        return table + figures_html(self.figures())


def png_data_uri(source: str | Path | bytes) -> str | None:
    """A PNG (a file, its bytes, or already a data: URI) as a data: URI; None if unreadable."""
    if isinstance(source, str) and source.startswith("data:"):
        return source
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figures_html(figures: list[tuple[str, str | Path]]) -> str:
    """Inline <figure>s (data: URIs, so the notebook keeps them); missing files are named."""
    parts = []
    for caption, source in figures:
        uri = png_data_uri(source)
        cap = html.escape(caption)
        if uri is None:
            parts.append(f"<p><em>{cap}: {html.escape(str(source))} not found</em></p>")
        else:
            parts.append(
                f"<figure style='display:inline-block;margin:4px'><img src='{uri}' "
                f"alt='{cap}' style='max-width:480px'/><figcaption>{cap}"
                "</figcaption></figure>"
            )
    return f"<div>{''.join(parts)}</div>" if parts else ""


class FigurePath(type(Path())):  # type: ignore[misc]
    """A Path to a PNG that a notebook shows as the image itself."""

    def _repr_html_(self) -> str:
        return f"<p><code>{html.escape(str(self))}</code></p>" + figures_html(
            [(self.name, Path(self))]
        )
