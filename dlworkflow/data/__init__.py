"""Step 2: get data into the project as a manifest, quarantining what cannot be used."""

from dlworkflow.data.ingest import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
