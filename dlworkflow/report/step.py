"""`dlw report`: reports/report.html (self-contained, prints well), reports/report.pdf (headless
Chromium) and reports/model_card.md, all from the project's records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import atomic_write_text, sha256_file
from dlworkflow.report.evidence import gather
from dlworkflow.report.findings import recommendation, verdict
from dlworkflow.report.html import page
from dlworkflow.report.model_card import model_card
from dlworkflow.report.pdf import render_pdf
from dlworkflow.report.sections import all_sections, opening
from dlworkflow.results import StepResult

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

HTML_FILE, PDF_FILE, CARD_FILE = "report.html", "report.pdf", "model_card.md"


@dataclass
class ReportResult(StepResult):
    html: Path
    model_card: Path
    pdf: Path | None
    pdf_note: str | None
    verdict: str
    recommendation: str
    missing: list[str] = field(default_factory=list)  # commands of the steps not run yet
    audit_note: str | None = None

    @property
    def paths(self) -> dict[str, Path]:
        out = {"html": self.html, "model_card": self.model_card}
        if self.pdf is not None:
            out["pdf"] = self.pdf
        return out

    def title(self) -> str:
        return "Step 8: report written"

    def rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("report", self.html),
            ("model card", self.model_card),
            ("pdf", self.pdf if self.pdf else f"not written: {self.pdf_note}"),
            ("verdict", self.verdict),
            ("recommendation", self.recommendation),
        ]
        if self.missing:
            rows.append(("sections waiting for", ", ".join(f"`{c}`" for c in self.missing)))
        if self.audit_note:
            rows.append(("audit", self.audit_note))
        return rows


def report(project: Workspace, *, pdf: bool = True) -> ReportResult:
    ev = gather(project)
    sections = all_sections(ev)
    name = str(ev.config.get("name"))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    text = page(
        f"{name}: model report",
        f"Written by `dlw report` on {now} from the records of {project.root}",
        sections,
        opening=opening(ev),
    )
    folder = project.paths.reports
    html_path, card_path, pdf_path = folder / HTML_FILE, folder / CARD_FILE, folder / PDF_FILE
    v = verdict(ev)
    with project.step("report", inputs={"test": project.upstream_hash("test")}) as run:
        atomic_write_text(html_path, text)
        atomic_write_text(card_path, model_card(ev))
        note = render_pdf(html_path, pdf_path) if pdf else "skipped (pdf=False)"
        run.outputs = {
            "hash": sha256_file(html_path),
            "html": str(html_path),
            "model_card": str(card_path),
            "pdf": str(pdf_path) if note is None else None,
        }
        run.summary = {
            "headline": "report.html, model_card.md"
            + (", report.pdf" if note is None else " (no PDF: see `dlw report`)"),
            "verdict": (v or {}).get("verdict"),
        }
    missing = sorted(
        {
            part.split("data-missing='")[1].split("'")[0]
            for s in sections
            for part in s.body.split("<p class='missing'")[1:]
            if "data-missing='" in part
        }
    )
    return ReportResult(
        html=html_path,
        model_card=card_path,
        pdf=pdf_path if note is None else None,
        pdf_note=note,
        verdict=(v or {}).get("verdict", "not tested (run `dlw test`)"),
        recommendation=recommendation(ev),
        missing=missing,
        audit_note=None
        if ev.audit is not None
        else f"not included: {ev.audit_error}; run `dlw audit`",
    )
