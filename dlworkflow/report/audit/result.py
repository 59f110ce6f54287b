"""AuditResult: the ML Test Score of a project, rendered in the terminal and as HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from dlworkflow.report.audit.rubric import SECTIONS, level
from dlworkflow.report.audit.scoring import TestScore
from dlworkflow.results import StepResult


def _fmt(points: float) -> str:
    return f"{points:g}"


@dataclass
class AuditResult(StepResult):
    project: str
    tests: list[TestScore]
    sections: dict[str, float]
    final: float
    written: str | None = None  # reports/audit.json
    at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> str:
        return level(self.final)

    @property
    def weakest(self) -> list[str]:
        return [s for s in SECTIONS if self.sections[s] == self.final]

    def title(self) -> str:
        return f"Step 8: ML Test Score {_fmt(self.final)} (the minimum of the four sections)"

    def rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [(s, f"{_fmt(self.sections[s])} / 7") for s in SECTIONS]
        rows.append(
            (
                "final score",
                f"{_fmt(self.final)}: {self.level} (weakest: {', '.join(self.weakest)})",
            )
        )
        if self.written:
            rows.append(("written", self.written))
        return rows

    def missing(self) -> list[TestScore]:
        return [t for t in self.tests if t.points < 1]

    def record(self) -> dict[str, Any]:
        return {
            "format": 1,
            "rubric": "The ML Test Score (Breck et al., 2017)",
            "project": self.project,
            "at": self.at,
            "final": self.final,
            "level": self.level,
            "sections": self.sections,
            "tests": [t.record() for t in self.tests],
        }

    def to_json(self) -> dict[str, Any]:
        """`dlw audit --json`: reports/audit.json (record()), the weakest sections and the
        file written."""
        return {**self.record(), "weakest": self.weakest, "written": self.written}

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        parts: list[Any] = []
        for section in SECTIONS:
            table = Table(
                title=f"{section}: {_fmt(self.sections[section])} / 7",
                title_justify="left",
                show_lines=False,
            )
            for column in ("#", "test", "pts", "from", "evidence / next"):
                table.add_column(column, no_wrap=column in ("#", "pts"))
            for t in (x for x in self.tests if x.test.section == section):
                text = t.evidence
                if t.source == "checklist":
                    text = f"checklist: {t.checklist}"
                if t.next_step:
                    text += f"\n[yellow]next:[/] {t.next_step}"
                table.add_row(
                    str(t.test.number),
                    f"{t.test.title}\n[dim]{t.test.id}[/]",
                    _fmt(t.points),
                    t.source,
                    text,
                )
            parts.append(table)
        parts.append(super().__rich__())
        return Group(*parts)

    def _repr_html_(self) -> str:
        e = html.escape
        out = [
            f"<div class='dlw-audit'><h3>{e(self.title())}</h3>",
            f"<p><b>{_fmt(self.final)}</b>: {e(self.level)}; sections: "
            + ", ".join(f"{e(s)} {_fmt(self.sections[s])}" for s in SECTIONS)
            + "</p>",
        ]
        for section in SECTIONS:
            out.append(
                f"<table><caption>{e(section)}: {_fmt(self.sections[section])} / 7"
                "</caption><tr><th>#</th><th>test</th><th>points</th><th>from</th>"
                "<th>evidence</th><th>next step</th></tr>"
            )
            for t in (x for x in self.tests if x.test.section == section):
                shown = f"checklist: {t.checklist}" if t.source == "checklist" else t.evidence
                out.append(
                    f"<tr><td>{t.test.number}</td><td>{e(t.test.title)}<br><code>"
                    f"{e(t.test.id)}</code></td><td>{_fmt(t.points)}</td>"
                    f"<td>{e(t.source)}</td><td>{e(shown)}</td>"
                    f"<td>{e(t.next_step or '')}</td></tr>"
                )
            out.append("</table>")
        out.append("</div>")
        return "".join(out)
