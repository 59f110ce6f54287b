"""Remote sources (s3://, gs://, az://, https://, memory://, ...) through fsspec: fetched into
the project (.dlw/remote/<hash of the URI>/files), then read like a local source.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DataError
from dlworkflow.fileio import atomic_write_json, read_json, sha256_bytes

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

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
