"""Step 2: find and remove identifying information (PHI / PII) before anything else.

Per sample (ingest calls these once per file):
    scan_file(path, sample_id=None) -> list[Finding]
    deidentify_file(path, dst_folder, sample_id, key=None) -> (path to use, findings)
Per table (CSV / JSONL / Parquet sources, metadata columns, free text):
    scan_table(df, columns=None) -> list[Finding]
    scrub_table(df, findings, columns="drop", pseudonymise=(), key=None) -> (df, findings)
The record:
    build_record(findings, mode=..., dataset_version=..., n_scanned=..., sensitivity=...)
    -> dict for dlworkflow.store.privacy.write_privacy.
Findings carry masked details only: raw values never leave this package.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dlworkflow.data.deid.dicom import PROFILE, is_dicom, scan_dicom, scrub_dicom
from dlworkflow.data.deid.exif import clean_suffix, scan_image, scrub_image, strip_jpeg
from dlworkflow.data.deid.findings import (
    KINDS,
    DeidentifyError,
    Finding,
    hashed_uid,
    mask,
    pseudonym,
)
from dlworkflow.data.deid.scrub import deidentify_file, scan_file
from dlworkflow.data.deid.tabular import mask_text, scan_table, scrub_table
from dlworkflow.store.privacy import make_record


def build_record(
    findings: Iterable[Finding],
    *,
    mode: str,
    dataset_version: str,
    n_scanned: int,
    sensitivity: str,
    scrubbed_to: str | None = None,
) -> dict[str, Any]:
    """The privacy record (see dlworkflow.store.privacy) for these findings."""
    return make_record(
        [f.to_dict() for f in findings],
        mode=mode,
        dataset_version=dataset_version,
        n_scanned=n_scanned,
        sensitivity=sensitivity,
        scrubbed_to=scrubbed_to,
    )


__all__ = [
    "KINDS",
    "PROFILE",
    "DeidentifyError",
    "Finding",
    "build_record",
    "clean_suffix",
    "deidentify_file",
    "hashed_uid",
    "is_dicom",
    "mask",
    "mask_text",
    "pseudonym",
    "scan_dicom",
    "scan_file",
    "scan_image",
    "scan_table",
    "scrub_dicom",
    "scrub_image",
    "scrub_table",
    "strip_jpeg",
]
