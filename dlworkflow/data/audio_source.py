"""Audio sources (audio-classification): clips read in place, measured and checked, never
copied or changed.

A source is a folder of class sub-folders of clips (ROOT/<class>/.../<clip>; the folder walker
of data/sources.py: hidden files ignored, symlinks followed only inside ROOT, files that are
not regular files quarantined, ids in Unicode NFC), or a table (CSV, TSV, JSONL, Parquet) with
data.path_column and data.label_column (data/tables.py: paths inside the table's folder or
data.root; a built-in dataset's table may point into the package folder it reads from).

In a folder, files whose extension is not .wav, .flac or .ogg are skipped (counted, with a
note); a clip's format is then decided by its content, never its name (store/audio.py), so an
AIFF or MP3 renamed .wav is quarantined. In a table every row is a sample: whatever file it
names is read and, if it is not a usable clip, quarantined.

Each clip is probed once (store.audio.probe_audio with the limits of data.audio) and
quarantined with the reason in words when it cannot be used: unreadable or truncated, a
refused format, too large, too long, silent (RMS below data.audio.silence_dbfs) or clipping
(more than data.audio.max_clipping_share of the samples at full scale). The manifest row holds
the clip's measures on its original samples (store.manifest.AUDIO_COLUMNS).

Silence is judged by level only (RMS and the share of silent 20 ms windows), not by a
voice-activity model such as silero-vad: "no speech" is not a defect of an audio
classification clip (the built-in sonic-pi clips are drums, loops and electronic sounds, none
spoken), and the level check already catches the silent and near-silent files.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.data.sources import TABLE_EXTENSIONS, Candidate, SourceScan, _folder_candidates
from dlworkflow.errors import DataError
from dlworkflow.store.audio import AUDIO_EXTENSIONS as AUDIO_FILES

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

AUDIO_EXTENSIONS = frozenset(AUDIO_FILES)  # store.audio's, shared with `dlw predict`
ALLOWED = "WAV, FLAC or OGG"


def scan_audio(project: Workspace, path: Path) -> SourceScan:
    """The candidates of a folder of class sub-folders of clips, or of a table of clip paths."""
    if path.is_dir():
        return _scan_folder(path)
    if path.suffix.lower() in TABLE_EXTENSIONS:
        return _scan_table(project, path)
    raise DataError(
        f"Cannot read audio source {str(path)!r}.",
        expected="a folder of class sub-folders of clips (.wav, .flac, .ogg), or a table "
        f"({', '.join(sorted(TABLE_EXTENSIONS))}) with a path and a label column",
        received=f"a file ending in {path.suffix or '(no extension)'}",
        fix="arrange the clips as ROOT/<class name>/<clip> and ingest ROOT, or list them in "
        "a CSV with the columns path,label",
    )


def _scan_folder(root: Path) -> SourceScan:
    """root/<class>/.../<clip>: the first folder level is the label."""
    if not any(child.is_dir() and not child.name.startswith(".") for child in root.iterdir()):
        raise DataError(
            f"{root} has no class sub-folders.",
            expected="one sub-folder per class, each holding that class's clips "
            "(.wav, .flac, .ogg)",
            received="a folder with no sub-folders",
            fix="arrange the clips as ROOT/<class name>/<clip>, or ingest a table with path "
            "and label columns",
        )
    scan = SourceScan(kind="folder", candidates=iter(()), location=str(root))
    found = _folder_candidates(root, scan.skipped, extensions=AUDIO_EXTENSIONS)
    scan.candidates = _noting_skipped(found, scan)
    return scan


def _noting_skipped(candidates: Iterator[Candidate], scan: SourceScan) -> Iterator[Candidate]:
    """The candidates; once they are all read, a note on the files skipped (ingest shows the
    source's notes after reading it)."""
    yield from candidates
    if scan.skipped:
        shown = ", ".join(scan.skipped[:3]) + (", ..." if len(scan.skipped) > 3 else "")
        scan.notes.append(
            f"{len(scan.skipped)} file(s) skipped: not {ALLOWED} by their extension "
            f"({', '.join(sorted(AUDIO_EXTENSIONS))}), or not readable as samples: {shown}"
        )


def _scan_table(project: Workspace, path: Path) -> SourceScan:
    from dlworkflow.data.tables import scan_table

    root = _table_root(project, path)
    scan = scan_table(path, project.config, root=root)
    if not project.config.data.id_column:
        scan.candidates = _relative_ids(scan.candidates, path, root)
    return scan


def _table_root(project: Workspace, table: Path) -> Path:
    """The folder every clip of the table must lie in (data/builtin.py table_root)."""
    from dlworkflow.data.builtin import table_root

    return table_root(project, table)


def _relative_ids(candidates: Iterator[Candidate], table: Path, root: Path) -> Iterator[Candidate]:
    """A clip's id is its path relative to `root` as the table spells it, normalised
    (bd/./x.flac and /data/bd/x.flac, with root /data, are both bd/x.flac; not the resolved
    target of a symlink, unless the spelled path is not inside `root`); two rows naming one
    clip keep the first."""
    seen: set[str] = set()
    for cand in candidates:
        if cand.problem is None and cand.path is not None:
            spelled = Path(os.path.normpath(table.parent / cand.sample_id))
            inside = [p for p in (spelled, cand.path) if p.is_relative_to(root)]
            if inside:
                relative = inside[0].relative_to(root).as_posix()
                cand.sample_id = unicodedata.normalize("NFC", relative)
        if cand.problem is None and cand.sample_id in seen:
            cand.problem = f"duplicate id {cand.sample_id!r} (first occurrence kept)"
            cand.sample_id = f"{cand.sample_id}#{len(seen)}"
        seen.add(cand.sample_id)
        yield cand


def read_clip_candidate(project: Workspace, cand: Candidate) -> dict[str, Any]:
    """The manifest columns of one clip (store.manifest.AUDIO_COLUMNS with the content hash,
    size and modification time), or ImageDecodeError with the reason it is quarantined. The
    clip is only read: `path` is the original."""
    from dlworkflow.fileio import sha256_file
    from dlworkflow.store import ImageDecodeError
    from dlworkflow.store.audio import audio_problem, probe_audio
    from dlworkflow.store.clips import ClipSettings

    origin = Path(cand.path or "")
    try:
        status = origin.stat()
    except OSError:
        raise ImageDecodeError("file not found") from None
    limits = ClipSettings.from_config(project.config.data.audio).limits
    stats = probe_audio(origin, limits)
    reason = audio_problem(stats, limits)
    if reason is not None:
        raise ImageDecodeError(reason)
    try:
        content_hash = sha256_file(origin)
    except OSError as exc:
        raise ImageDecodeError(f"unreadable: {exc.strerror or exc}") from None
    return {
        "path": str(origin),
        "origin_path": str(cand.origin or origin),
        "content_hash": content_hash,
        "bytes": status.st_size,
        "mtime_ns": status.st_mtime_ns,
        "format": stats.format,
        "sample_rate": stats.sample_rate,
        "channels": stats.channels,
        "duration_s": stats.duration_s,
        "rms_dbfs": stats.rms_dbfs,
        "peak": stats.peak,
        "silence_share": stats.silence_share,
        "clipping_share": stats.clipping_share,
    }
