"""Turn one candidate into one manifest row: decode and describe an image, or hash a text or
a feature row. Privacy scanning and de-identification happen here, per sample."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.data.image_decode import Decoded, decode_file
from dlworkflow.data.previous_rows import previous_rows
from dlworkflow.data.sources import Candidate, SourceScan
from dlworkflow.fileio import sha256_bytes, sha256_file, sha256_json
from dlworkflow.store import ImageDecodeError, decode_image
from dlworkflow.store.images import image_stats
from dlworkflow.store.manifest import FEATURE_PREFIX
from dlworkflow.store.pixel_bank import IngestBanks
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

Quarantined = ImageDecodeError  # one sample that cannot be used; its reason is quarantined


@dataclass
class ImageJob:
    """An image file to decode, with the status read when it was listed."""

    cand: Candidate
    origin: Path
    size: int
    mtime_ns: int


class Reader:
    """Reads candidates of one ingest. `reused` counts files taken from the last manifest."""

    def __init__(self, project: Workspace, *, privacy: Any | None) -> None:
        self.project = project
        self.task = project.config.task
        self.privacy = privacy  # a PrivacyScan, or None when no scan is needed
        self.reused = 0
        self.modality = task_of(self.task).modality
        self.regression = task_of(self.task).kind == "regression"
        self._previous = previous_rows(project.paths.manifest if self.modality == "image" else None)
        self.banks = IngestBanks(project.paths.cache)  # decoded small images, for later steps

    def read(self, cand: Candidate) -> dict[str, Any]:
        if cand.problem:
            raise Quarantined(cand.problem)
        base = {"sample_id": cand.sample_id, "label": cand.label, "group": cand.group}
        if self.regression:
            _check_target(cand.label, self.project.config.data.label_column)
        if self.modality == "image":
            return {**base, **self._image(cand)}
        if self.modality == "sequence":
            from dlworkflow.data.series_source import read_series_candidate

            return {**base, **read_series_candidate(self.project, cand)}
        if self.modality == "audio":
            from dlworkflow.data.audio_source import read_clip_candidate

            return {**base, **read_clip_candidate(self.project, cand)}
        if self.modality == "text":
            data = (cand.text or "").encode("utf-8")
            return {
                **base,
                "content_hash": sha256_bytes(data),
                "bytes": len(data),
                "mtime_ns": 0,
                "text": cand.text,
            }
        features = cand.features or {}
        _check_features(features)
        return {
            **base,
            "content_hash": sha256_json(features),
            "bytes": 0,
            "mtime_ns": 0,
            **{FEATURE_PREFIX + k: v for k, v in features.items()},
        }

    def _image(self, cand: Candidate) -> dict[str, Any]:
        origin, stat, previous = self._status(cand)
        cfg = self.project.config.data
        if self.privacy is None:
            if previous is not None:
                self.reused += 1
                return dict(previous)
            decoded = decode_file(
                origin, max_pixels=cfg.max_image_pixels, max_side=cfg.max_image_side
            )
            return self._image_row(cand, origin, stat.st_size, stat.st_mtime_ns, decoded)
        img = None
        if previous is None:  # decode the original first: its quarantine reason is the real one
            img = decode_image(origin, max_pixels=cfg.max_image_pixels, max_side=cfg.max_image_side)
        path = self.privacy.image(origin, cand.sample_id)
        if previous is not None and path == origin:
            self.reused += 1
            return dict(previous)
        if img is None or path != origin:
            img = decode_image(path, max_pixels=cfg.max_image_pixels, max_side=cfg.max_image_side)
        content_hash = sha256_file(path)
        self.banks.keep(content_hash, img)
        return {
            "path": str(path),
            "origin_path": str(cand.origin or origin),  # a tile's: its source image
            "content_hash": content_hash,
            "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "width": img.width,
            "height": img.height,
            "mode": img.mode,
            **image_stats(img),
        }

    def _status(self, cand: Candidate) -> tuple[Path, Any, dict[str, Any] | None]:
        """The image file, its status, and its row in the last manifest when unchanged."""
        origin = Path(cand.path or "")
        try:
            stat = origin.stat()
        except OSError:
            raise Quarantined("file not found") from None
        return origin, stat, self._previous.get((str(origin), stat.st_size, stat.st_mtime_ns))

    def _image_row(
        self, cand: Candidate, origin: Path, size: int, mtime_ns: int, decoded: Decoded
    ) -> dict[str, Any]:
        if decoded.small is not None:
            self.banks.keep_array(decoded.content_hash, decoded.small)
        return {
            "path": str(origin),
            "origin_path": str(cand.origin or origin),  # a tile's: its source image
            "content_hash": decoded.content_hash,
            "bytes": size,
            "mtime_ns": mtime_ns,
            "width": decoded.width,
            "height": decoded.height,
            "mode": decoded.mode,
            **decoded.stats,
        }

    @property
    def parallel(self) -> bool:
        """Whether images may be decoded in worker processes (`begin` and `complete`): image
        tasks without the privacy scan, whose per-sample work stays in this process."""
        return self.modality == "image" and self.privacy is None

    def begin(self, cand: Candidate) -> dict[str, Any] | ImageJob:
        """`read` up to the decoding: the row when the file is unchanged since the last
        ingest, else the job a worker decodes (Quarantined when the sample is unusable)."""
        if cand.problem:
            raise Quarantined(cand.problem)
        if self.regression:
            _check_target(cand.label, self.project.config.data.label_column)
        origin, stat, previous = self._status(cand)
        base = {"sample_id": cand.sample_id, "label": cand.label, "group": cand.group}
        if previous is not None:
            self.reused += 1
            return {**base, **previous}
        return ImageJob(cand, origin, stat.st_size, stat.st_mtime_ns)

    def complete(self, job: ImageJob, decoded: Decoded) -> dict[str, Any]:
        """The row of a job a worker decoded (in candidate order: the bank keeps it)."""
        cand = job.cand
        base = {"sample_id": cand.sample_id, "label": cand.label, "group": cand.group}
        return {**base, **self._image_row(cand, job.origin, job.size, job.mtime_ns, decoded)}

    def finish(self, dataset_version: str) -> str:
        """Record the privacy scan (if any) for this dataset version; a one-line summary.
        The decoded images kept for the bank are written out."""
        self.banks.flush()
        if self.privacy is None:
            return ""
        return self.privacy.record(dataset_version)


FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max


def _check_features(features: dict[str, Any]) -> None:
    """A numeric feature that is infinite, or that a float32 network input cannot hold, makes
    the row unusable (quarantined, the column named). NaN is a missing value: kept, imputed."""
    for column, value in features.items():
        if not isinstance(value, float) or value != value:
            continue
        if math.isinf(value):
            raise Quarantined(f"non-finite value ({value}) in numeric column {column!r}")
        if abs(value) > FLOAT32_MAX:
            raise Quarantined(
                f"float32 overflow ({value:g}, beyond +-3.4e38) in numeric column {column!r}"
            )


def _check_target(label: str | None, column: str) -> None:
    """A regression target beyond float32's range (the network's) is quarantined."""
    try:
        value = float(label) if label is not None else 0.0
    except ValueError:
        return  # parse_target already refused it
    if math.isfinite(value) and abs(value) > FLOAT32_MAX:
        raise Quarantined(
            f"float32 overflow ({value:g}, beyond +-3.4e38) in target column {column!r}"
        )


def make_reader(project: Workspace, scan: SourceScan, *, deidentify: bool) -> Reader:
    """A reader for this ingest; when the privacy scan is due (privacy.scan, or pii/phi data,
    or --deidentify), it scans every sample and, with --deidentify, reads scrubbed copies."""
    cfg = project.config
    # mandatory for pii / phi data, whatever privacy.scan says
    due = (
        deidentify or cfg.privacy.scan == "always" or cfg.problem.data_sensitivity in ("pii", "phi")
    )
    if not due:
        return Reader(project, privacy=None)
    from dlworkflow.data.privacy_scan import PrivacyScan

    privacy = PrivacyScan(project, deidentify=deidentify)
    if scan.kind.endswith("table"):  # metadata columns of image tables are scanned too
        privacy.table(scan)
    return Reader(project, privacy=privacy)
