"""One entry point per sample for ingest: scan a file, or write its de-identified copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dlworkflow.data.deid.dicom import is_dicom, scan_dicom, scrub_dicom
from dlworkflow.data.deid.exif import clean_suffix, scan_image, scrub_image
from dlworkflow.data.deid.findings import DeidentifyError, Finding


def scan_file(path: str | Path, *, sample_id: str | None = None) -> list[Finding]:
    """Findings in one sample file: DICOM ('DICM' at byte 128, or .dcm) by the PS3.15 profile,
    anything else as an image (EXIF, PNG text, comments, XMP, IPTC). Never modifies the file."""
    if is_dicom(path):
        return scan_dicom(path, sample_id=sample_id)
    return scan_image(path, sample_id=sample_id)


def deidentify_file(
    path: str | Path, dst_folder: str | Path, sample_id: str, *, key: bytes | None = None
) -> tuple[Path, list[Finding]]:
    """(path of the file to use, findings with the action taken).

    Nothing to remove: the ORIGINAL path and its findings (none, or only ones that remain such
    as burned-in DICOM annotations). Otherwise a scrubbed copy in dst_folder, written
    atomically, named by a hash of the source file's resolved path (`clean_name`: two files
    with the same name in different folders keep a copy each, and file names that hold a
    person's name do not leak into the copy's name); the original is only read.
    Raises DeidentifyError (quarantine the sample with its .reason) when the file cannot be
    scrubbed. `key`: the project's secret (store.privacy.privacy_key), used
    for pseudonyms and UID hashes.
    """
    path = Path(path)
    findings = scan_file(path, sample_id=sample_id)
    if not any(f.action == "found" for f in findings):
        return path, findings
    dicom = is_dicom(path)
    try:
        suffix = ".dcm" if dicom else clean_suffix(path)
        dst = Path(dst_folder) / (clean_name(str(path.resolve())) + suffix)
        done = scrub_dicom(path, dst, key=key) if dicom else scrub_image(path, dst)
    except DeidentifyError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise DeidentifyError(f"cannot write a de-identified copy: {exc}") from None
    return dst, [f.with_sample(sample_id) for f in done]


def clean_name(source: str) -> str:
    """The stem of a scrubbed copy: 'deid-' + 20 hex digits of sha256 of its source (the
    original's resolved path)."""
    return "deid-" + hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:20]
