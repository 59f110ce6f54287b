"""Step 8: the report decision makers read (reports/report.html + .pdf) and the model card
(reports/model_card.md), written from the project's records by `dlw report`."""

from dlworkflow.report.step import ReportResult, report

__all__ = ["ReportResult", "report"]
