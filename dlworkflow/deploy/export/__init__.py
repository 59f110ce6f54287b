"""Export (`dlw export`), version pointer moves (`dlw promote`, `dlw rollback`) and batch
prediction through the exported model (`dlw predict`)."""

from dlworkflow.deploy.export.step import (
    ExportRefusedError,
    ExportResult,
    ParityError,
    current_verdict,
    export,
)

__all__ = ["ExportRefusedError", "ExportResult", "ParityError", "export", "current_verdict"]
