"""The privacy scan of one ingest: every sample file (EXIF, PNG text, DICOM header) or every
table column is scanned; with --deidentify, scrubbed copies are written into the project
(.dlw/deid) and read instead of the originals, which are never modified."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.data.deid.scrub import clean_name
from dlworkflow.data.sources import Candidate, SourceScan
from dlworkflow.data.tables import read_chunks
from dlworkflow.data.tables import scan_table as open_table
from dlworkflow.fileio import atomic_write_with
from dlworkflow.store import ImageDecodeError
from dlworkflow.store.privacy import privacy_key, write_privacy
from dlworkflow.tasks import task_of
from dlworkflow.tasks.base import cell_text

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace


class PrivacyScan:
    def __init__(self, project: Workspace, *, deidentify: bool) -> None:
        self.project = project
        self.deidentify = deidentify
        self.findings: list[Any] = []
        self.n_scanned = 0
        self.folder = project.paths.state / "deid"
        self.key = privacy_key(project) if deidentify else None

    def image(self, origin: Path, sample_id: str) -> Path:
        """The file to read for this sample: the original, or its scrubbed copy."""
        from dlworkflow.data.deid import DeidentifyError, deidentify_file, scan_file

        self.n_scanned += 1
        try:
            if not self.deidentify:
                self.findings += scan_file(origin, sample_id=sample_id)
                return origin
            path, found = deidentify_file(origin, self.folder, sample_id, key=self.key)
        except DeidentifyError as exc:
            raise ImageDecodeError(f"de-identification failed: {exc.reason}") from None
        except Exception as exc:  # a file the scanner cannot parse is not silently passed
            raise ImageDecodeError(f"privacy scan failed: {type(exc).__name__}: {exc}") from None
        self.findings += found
        return path

    def table(self, scan: SourceScan) -> None:
        """Scan every column but the label; with --deidentify read a scrubbed copy instead."""
        import pandas as pd

        from dlworkflow.data.deid import scan_table, scrub_table

        data = self.project.config.data
        source = Path(scan.location)
        image = task_of(self.project.config.task).modality == "image"
        keep = {data.label_column} | ({data.path_column} if image else set())
        pseudo = [c for c in (data.group_column, data.id_column) if c]
        scrubbed = []
        ids: dict[str, str] = {}  # image tables: the copy's absolute path -> the table's own
        for chunk in read_chunks(source, string_columns=[]):
            self.n_scanned += len(chunk)
            found = scan_table(chunk, columns=[c for c in chunk.columns if c not in keep])
            if self.deidentify:
                chunk, found = scrub_table(chunk, found, pseudonymise=pseudo, key=self.key)
                if image:  # the copy lives elsewhere: image paths become absolute
                    absolute = []
                    for value in chunk[data.path_column]:
                        absolute.append(str((source.parent / str(value)).resolve()))
                        ids.setdefault(nfc(absolute[-1]), nfc(cell_text(value) or absolute[-1]))
                    chunk[data.path_column] = absolute
                scrubbed.append(chunk)
            self.findings += found
        if not self.deidentify:
            return
        # named by a hash of the source's path: two data.csv files (data.source and an
        # addition) keep a copy each, and the name does not repeat the original's
        copy = self.folder / f"{clean_name(str(source.resolve()))}.parquet"
        table = pd.concat(scrubbed, ignore_index=True)
        atomic_write_with(copy, lambda p: table.to_parquet(p, index=False))
        if task_of(self.project.config.task).modality == "sequence":  # a long or wide table
            from dlworkflow.data.series_tables import scan_series_table

            fresh = scan_series_table(self.project, copy)
            scan.notes = fresh.notes  # what reading the copy counts
        else:
            fresh = open_table(copy, self.project.config, root=Path(scan.root or source.parent))
        scan.candidates = _renamed(fresh.candidates, copy.name, source.name, ids)
        scan.columns, scan.location = fresh.columns, str(copy)

    def record(self, dataset_version: str) -> str:
        from dlworkflow.data.deid import build_record

        mode = "deidentified" if self.deidentify else "scan-only"
        record = build_record(
            self.findings,
            mode=mode,
            dataset_version=dataset_version,
            n_scanned=self.n_scanned,
            sensitivity=self.project.config.problem.data_sensitivity,
            scrubbed_to=str(self.folder) if self.deidentify else None,
        )
        write_privacy(self.project, record, findings=[f.to_dict() for f in self.findings])
        kinds: Counter[str] = Counter()
        for f in self.findings:
            kinds[f.kind] += f.count
        found = ", ".join(f"{k} {v}" for k, v in kinds.most_common()) or "nothing found"
        line = (
            f"{mode}: {self.n_scanned:,} scanned; {found}; "
            f"{record['remaining']} finding(s) remain in the data used"
        )
        if record["remaining"]:  # what a decision to accept them is tied to
            line += f" (dataset version {dataset_version})"
        return line


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _renamed(
    candidates: Iterator[Candidate], copy: str, original: str, ids: dict[str, str]
) -> Iterator[Candidate]:
    """The scrubbed copy's candidates with the ids the original table gives its rows
    ("data.csv:row 3", not the copy's name; an image's path as the table writes it, not made
    absolute): --deidentify does not change sample ids, so a split made before keeps them."""
    for cand in candidates:
        if cand.sample_id.startswith(copy + ":"):
            cand.sample_id = original + cand.sample_id[len(copy) :]
        elif cand.sample_id in ids:
            cand.sample_id = ids[cand.sample_id]
        yield cand
