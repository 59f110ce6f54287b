"""Remote sources (s3://, gs://, az://, https://, memory://, ...) through fsspec, kept in the
project (.dlw/remote/<hash of the URI>/files) and read like a local source.

A folder of class sub-folders of images (an image task without annotations) streams: its
listing gives the candidates, and each file is read through fsspec's caching filesystem
(simplecache) when the ingest reaches it, so decoding starts with the first file, not after a
whole copy. Local copies whose object changed since (by checksum, ETag or modification time,
recorded in index.json), or that no longer exist at the source, are removed first; the others
are not fetched again. Any other remote source (a table, a single file, annotated, series or
audio folders) is fetched whole first (`fetch`).

A fetch lists the source first: object names with `..` are refused, and the file count and
total size are checked against data.remote_max_files and data.remote_max_gb before anything is
downloaded. Every fetch builds a fresh folder (objects unchanged since the last fetch, by
their checksum, ETag or modification time, are linked from it, the others downloaded) and
swaps it in whole, so an object deleted at the source disappears locally. index.json records
what was fetched. An object whose listing has none of those fields is always downloaded."""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DataError
from dlworkflow.fileio import atomic_write_json, read_json, sha256_bytes

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from dlworkflow.data.sources import Candidate, SourceScan
    from dlworkflow.workspace import Workspace

PLUGINS = {
    "s3": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
    "sftp": "paramiko",
    "hf": "huggingface_hub",
}

# fields of a listing entry that change with the content, strongest first (s3fs: ETag,
# gcsfs: md5Hash / crc32c / etag, adlfs: etag, huggingface_hub: blob_id, local: mtime)
CHECKSUM_KEYS = ("md5", "md5Hash", "sha256", "checksum", "crc32c", "ETag", "etag", "blob_id")
MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified")
INDEX = "index.json"
FILES = "files"


def open_remote(project: Workspace, uri: str) -> SourceScan:
    """The scan of a remote source: streamed through the cache when it is a folder of class
    sub-folders of images for an image task without annotations, else fetched whole first."""
    from dlworkflow.data.sources import ANNOTATED, open_path
    from dlworkflow.tasks import task_of

    task = task_of(project.config.task)
    if task.modality == "image" and task.kind not in ANNOTATED:
        fs, root = _filesystem(uri)
        root = root.rstrip("/") or root
        try:
            folder = fs.isdir(root)
        except (OSError, ValueError) as exc:
            raise _unreadable(uri, exc) from exc
        if folder:
            return _stream_folder(project, uri, fs, root)
    scan = open_path(project, fetch(project, uri))
    scan.kind = f"remote {scan.kind}"
    return scan


def _stream_folder(project: Workspace, uri: str, fs: AbstractFileSystem, root: str) -> SourceScan:
    from fsspec.implementations.cached import SimpleCacheFileSystem

    from dlworkflow.data.sources import SourceScan

    try:
        listing = _listing(fs, root)
    except (OSError, ValueError) as exc:
        raise _unreadable(uri, exc) from exc
    _check_limits(project, uri, listing)
    if not any("/" in rel for rel in _visible(listing)):
        raise DataError(
            f"{uri} has no class sub-folders.",
            expected="one sub-folder per class, each holding that class's images",
            received="a folder with no sub-folders",
            fix="arrange the images as ROOT/<class name>/<image>, or ingest a table "
            "with path and label columns",
        )
    target = project.paths.state / "remote" / sha256_bytes(uri.encode())[:16]
    local = target / FILES / (Path(root).name or "source")
    local.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(target)
    kept = _drop_stale(local, listing, _previous_index(target, uri))
    cache = SimpleCacheFileSystem(
        fs=fs,
        cache_storage=str(local),
        cache_mapper=_BelowRoot(root),
        skip_instance_cache=True,
    )
    scan = SourceScan(kind="remote folder", candidates=iter(()), location=str(local))
    stream = _Stream(project, uri, cache, listing, local, target, kept)
    scan.candidates = _Counted(stream.candidates(scan.skipped), len(listing))
    return scan


class _Counted(Iterator["Candidate"]):
    """Candidates that say how many there are at most (`operator.length_hint`): the ingest
    then knows whether to start its worker pool without reading ahead (which would fetch)."""

    def __init__(self, candidates: Iterator[Candidate], at_most: int) -> None:
        self._candidates = candidates
        self._at_most = at_most

    def __next__(self) -> Candidate:
        return next(self._candidates)

    def __length_hint__(self) -> int:
        return self._at_most

    def close(self) -> None:
        close = getattr(self._candidates, "close", None)
        if close is not None:
            close()


class _BelowRoot:
    """fsspec cache mapper: a remote object is kept under its name below the source's root
    (class/image.png), so the cached copy is the path the manifest records."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def __call__(self, path: str) -> str:
        return path[len(self.root) :].lstrip("/")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _BelowRoot) and other.root == self.root

    def __hash__(self) -> int:
        return hash((type(self), self.root))


def _visible(listing: dict[str, tuple[str, dict[str, Any]]]) -> list[str]:
    """Object names in the order a local folder is walked (sorted folder by folder); hidden
    files and folders (.DS_Store, .git) are not samples."""
    names = [rel for rel in listing if not any(p.startswith(".") for p in rel.split("/"))]
    return sorted(names, key=lambda rel: rel.split("/"))


def _drop_stale(
    local: Path, listing: dict[str, tuple[str, dict[str, Any]]], previous: dict[str, Any]
) -> dict[str, Any]:
    """Remove the local copies that are not the listed object's current version (changed,
    deleted at the source, without a fingerprint, or left by an interrupted fetch); return
    the index entries of the copies kept."""
    kept: dict[str, Any] = {}
    for file in [p for p in local.rglob("*") if p.is_file() or p.is_symlink()]:
        rel = file.relative_to(local).as_posix()
        before = previous.get(rel) or {}
        mark = fingerprint(listing[rel][1]) if rel in listing else None
        if (
            mark is not None
            and before.get("fingerprint") == mark
            and not file.is_symlink()
            and file.stat().st_size == before.get("size")
        ):
            kept[rel] = before
        else:
            file.unlink()
    return kept


class _Stream:
    """The candidates of a streamed remote folder: each file is fetched through the cache
    as the ingest reaches it; index.json records what the cache holds."""

    def __init__(
        self,
        project: Workspace,
        uri: str,
        cache: AbstractFileSystem,
        listing: dict[str, tuple[str, dict[str, Any]]],
        local: Path,
        target: Path,
        kept: dict[str, Any],
    ) -> None:
        self.uri, self.cache, self.listing = uri, cache, listing
        self.local, self.target, self.files = local, target, dict(kept)
        self.limit = int(project.config.data.remote_max_gb * 1e9)
        self.total = 0
        self.fetched = 0  # objects fetched (not already cached)

    def candidates(self, skipped: list[str]) -> Iterator[Candidate]:
        from dlworkflow.data.id_set import SeenIds
        from dlworkflow.data.sources import IMAGE_EXTENSIONS, Candidate

        seen = SeenIds()
        try:
            for rel in _visible(self.listing):
                name = unicodedata.normalize("NFC", rel)
                if Path(rel).suffix.lower() not in IMAGE_EXTENSIONS:
                    skipped.append(name)
                    continue
                parts = name.split("/")
                label = parts[0] if len(parts) > 1 else None
                problem = None
                if name in seen:
                    problem = f"duplicate id {name!r} (a name in another Unicode form)"
                    name = f"{name}#{len(seen)}"
                seen.add(name)
                if label is None:
                    problem = problem or "no label: not inside a class sub-folder"
                else:
                    self._read_through(rel)
                yield Candidate(name, label, path=self.local / rel, problem=problem)
        finally:
            atomic_write_json(self.target / INDEX, {"uri": self.uri, "files": self.files})
            atomic_write_json(self.target / "source.json", {"uri": self.uri})

    def _read_through(self, rel: str) -> None:
        """Open the object through the cache: fetched now unless its copy is current."""
        remote, info = self.listing[rel]
        cached = rel in self.files
        try:
            (self.local / rel).parent.mkdir(parents=True, exist_ok=True)
            with self.cache.open(remote, "rb"):
                pass
            size = (self.local / rel).stat().st_size
        except (OSError, ValueError) as exc:
            raise _unreadable(self.uri, exc) from exc
        self.fetched += not cached
        self.files[rel] = {"fingerprint": fingerprint(info), "size": size}
        self.total += size
        if self.total > self.limit:
            raise DataError(
                f"The remote source grew past data.remote_max_gb ({self.limit:,} bytes) while "
                "it was fetched.",
                expected=f"at most {self.limit:,} bytes",
                received=f"more than {self.total:,} bytes",
                fix="raise data.remote_max_gb in dlworkflow.yaml if this is intended",
            )


def fetch(project: Workspace, uri: str) -> Path:
    """Copy the remote file or folder into the project; returns the local path."""
    fs, root = _filesystem(uri)
    target = project.paths.state / "remote" / sha256_bytes(uri.encode())[:16]
    root = root.rstrip("/") or root
    name = Path(root).name or "source"
    try:
        listing = _listing(fs, root)
    except (OSError, ValueError) as exc:
        raise _unreadable(uri, exc) from exc
    _check_limits(project, uri, listing)
    target.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(target)
    previous = _previous_index(target, uri)
    fresh = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target))
    try:
        limit = int(project.config.data.remote_max_gb * 1e9)
        files = _download(fs, listing, fresh / name, target / FILES / name, previous, limit)
        _swap(fresh, target / FILES)
    except (OSError, ValueError) as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        raise _unreadable(uri, exc) from exc
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    atomic_write_json(target / INDEX, {"uri": uri, "files": files})
    atomic_write_json(target / "source.json", {"uri": uri})
    return target / FILES / name


def _listing(fs: AbstractFileSystem, root: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """relative name ('' for a single file) -> (remote path, listing entry); names with
    `..` (or an empty or '.' part) are refused."""
    if not fs.isdir(root):
        return {"": (root, fs.info(root))}
    found = fs.find(root, detail=True)
    entries: dict[str, tuple[str, dict[str, Any]]] = {}
    for remote, info in sorted(found.items()):
        if info.get("type", "file") != "file":
            continue
        remote = str(remote)
        rel = remote[len(root) :].lstrip("/") if remote.startswith(root) else ""
        parts = rel.replace("\\", "/").split("/")
        if not rel or any(part in ("", ".", "..") for part in parts):
            raise DataError(
                "A remote object's name contains '..' (or an empty or '.' part): refused, "
                "it could be written outside the project.",
                expected=f"object names below {root} without '..', '.' or '//'",
                received=remote,
                fix="rename or remove that object at the source",
            )
        entries[rel] = (remote, info)
    return entries


def _check_limits(
    project: Workspace, uri: str, listing: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    data = project.config.data
    if len(listing) > data.remote_max_files:
        raise DataError(
            f"The remote source {uri} holds {len(listing):,} files, more than "
            f"data.remote_max_files ({data.remote_max_files:,}).",
            expected=f"at most {data.remote_max_files:,} files",
            received=f"{len(listing):,} files",
            fix="raise data.remote_max_files in dlworkflow.yaml if this is intended, "
            "or point at a smaller folder",
        )
    total = sum(int(info.get("size") or 0) for _, info in listing.values())
    limit = int(data.remote_max_gb * 1e9)
    if total > limit:
        raise DataError(
            f"The remote source {uri} holds {total:,} bytes, more than data.remote_max_gb "
            f"({data.remote_max_gb:g} GB).",
            expected=f"at most {limit:,} bytes",
            received=f"{total:,} bytes in {len(listing):,} files",
            fix="raise data.remote_max_gb in dlworkflow.yaml if this is intended, "
            "or point at a smaller folder",
        )


def fingerprint(info: dict[str, Any]) -> str | None:
    """What identifies this version of an object: a checksum or ETag, else the modification
    time (with the size); None when the listing has neither: always download it."""
    for key in (*CHECKSUM_KEYS, *MTIME_KEYS):
        value = info.get(key)
        if value not in (None, "") and not isinstance(value, (dict, list)):
            return f"{key}:{value}|size:{info.get('size')}"
    return None


def _previous_index(target: Path, uri: str) -> dict[str, Any]:
    try:
        index = read_json(target / INDEX)
    except (OSError, ValueError):
        return {}
    if not isinstance(index, dict) or index.get("uri") != uri:
        return {}
    files = index.get("files")
    return files if isinstance(files, dict) else {}


def _download(
    fs: AbstractFileSystem,
    listing: dict[str, tuple[str, dict[str, Any]]],
    fresh: Path,
    current: Path,
    previous: dict[str, Any],
    limit: int,
) -> dict[str, Any]:
    """Fill the fresh folder: unchanged objects are linked (or copied) from the current
    local copy, the others downloaded. Returns the new index's files. The bytes actually
    fetched are checked too (a listing may not give every size)."""
    files: dict[str, Any] = {}
    total = 0
    for rel, (remote, info) in listing.items():
        mark = fingerprint(info)
        local, old = (fresh / rel, current / rel) if rel else (fresh, current)
        local.parent.mkdir(parents=True, exist_ok=True)
        before = previous.get(rel or ".") or {}
        if mark is not None and before.get("fingerprint") == mark and _keep(old, local, before):
            pass
        else:
            fs.get_file(remote, str(local))
        size = local.stat().st_size
        files[rel or "."] = {"fingerprint": mark, "size": size}
        total += size
        if total > limit:
            raise DataError(
                f"The remote source grew past data.remote_max_gb ({limit:,} bytes) while it "
                "was fetched.",
                expected=f"at most {limit:,} bytes",
                received=f"more than {total:,} bytes",
                fix="raise data.remote_max_gb in dlworkflow.yaml if this is intended",
            )
    return files


def _keep(old: Path, local: Path, before: dict[str, Any]) -> bool:
    """Link (or copy) the file of the last fetch when it is still the one recorded."""
    try:
        if not old.is_file() or old.is_symlink() or old.stat().st_size != before.get("size"):
            return False
        try:
            os.link(old, local)
        except OSError:
            shutil.copy2(old, local)
    except OSError:
        return False
    return True


def _swap(fresh: Path, files: Path) -> None:
    """Put the fresh folder in place of the last fetch's, whole (os.replace of a folder)."""
    old = None
    if files.exists():
        old = files.with_name(f".old-{fresh.name}")
        os.replace(files, old)
    os.replace(fresh, files)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _clean_leftovers(target: Path) -> None:
    """Folders of an interrupted fetch (.fetch-*, .old-*). An interrupted swap may leave the
    last fetch only as .old-*: it is put back first."""
    leftovers = sorted(p for p in target.iterdir() if p.name.startswith((".fetch-", ".old-")))
    for path in leftovers:
        if path.name.startswith(".old-") and not (target / FILES).exists():
            os.replace(path, target / FILES)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _unreadable(uri: str, exc: BaseException) -> DataError:
    return DataError(
        f"Cannot read remote source {uri}.",
        received=str(exc)[:300],
        fix="check the URI and your credentials for that filesystem",
    )


def _filesystem(uri: str) -> tuple[AbstractFileSystem, str]:
    try:
        import fsspec
    except ModuleNotFoundError:
        raise DataError(
            "Remote sources need fsspec.",
            received=uri,
            fix="pip install fsspec (and the filesystem package, e.g. s3fs)",
        ) from None
    protocol = uri.split("://", 1)[0]
    try:
        return fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        package = PLUGINS.get(protocol, f"the fsspec plugin for {protocol}://")
        raise DataError(
            f"No filesystem installed for {protocol}:// URIs.",
            expected=f"{package} installed",
            received=str(exc),
            fix=f"pip install {package}, or copy the data locally and ingest the folder",
        ) from None
