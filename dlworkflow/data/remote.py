"""Remote sources (s3://, gs://, az://, https://, memory://, ...) through fsspec: fetched once
into the project (.dlw/remote/<hash of the URI>), then read like a local source."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlworkflow.errors import DataError
from dlworkflow.fileio import atomic_write_json, sha256_bytes

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


def fetch(project: Workspace, uri: str) -> Path:
    """Copy the remote file or folder into the project; files already fetched with the same
    size are not fetched again. Returns the local path."""
    fs, root = _filesystem(uri)
    target = project.paths.state / "remote" / sha256_bytes(uri.encode())[:16]
    name = Path(root.rstrip("/")).name or "source"
    local = target / name
    try:
        if fs.isdir(root):
            files = [f for f in fs.find(root) if not fs.isdir(f)]
            for remote in files:
                rel = Path(remote).relative_to(Path(root.rstrip("/")))
                _get(fs, remote, local / rel)
        else:
            _get(fs, root, local)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"Cannot read remote source {uri}.",
            received=str(exc),
            fix="check the URI and your credentials for that filesystem",
        ) from exc
    atomic_write_json(target / "source.json", {"uri": uri})
    return local


def _get(fs: AbstractFileSystem, remote: str, local: Path) -> None:
    size = fs.size(remote)
    if local.is_file() and local.stat().st_size == size:
        return
    local.parent.mkdir(parents=True, exist_ok=True)
    fs.get_file(remote, str(local))


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
