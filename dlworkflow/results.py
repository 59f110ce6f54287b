"""Typed step results that render themselves in the terminal (rich) and in notebooks (HTML)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any


@dataclass
class StepResult:
    """Base of every step's result: a title and (label, value) rows."""

    def title(self) -> str:
        return type(self).__name__

    def rows(self) -> list[tuple[str, Any]]:
        return []

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
        return f"<table><caption>{html.escape(self.title())}</caption>{body}</table>"
