"""Remote sources (issue 14, item 3), through fsspec's memory:// filesystem (no network):
object names with `..` are refused, a fetch is swapped in whole (objects deleted at the source
disappear locally), a changed object is found by its checksum or ETag (not its size), and the
file count and total size are checked from the listing before anything is downloaded."""

from __future__ import annotations

import hashlib
import json
import uuid

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from dlworkflow.data import remote
from dlworkflow.errors import DataError
from dlworkflow.store import read_manifest


@pytest.fixture
def bucket():
    """A fresh memory:// folder (the memory filesystem is global), removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/b-{uuid.uuid4().hex[:8]}/data"
    yield fs, root
    if fs.exists(root.rsplit("/", 1)[0]):
        fs.rm(root.rsplit("/", 1)[0], recursive=True)


@pytest.fixture
def downloads(monkeypatch):
    """The remote paths fs.get_file was asked for."""
    calls: list[str] = []
    original = MemoryFileSystem.get_file

    def counting(self, rpath, lpath, *args, **kwargs):
        calls.append(str(rpath))
        return original(self, rpath, lpath, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "get_file", counting)
    return calls


@pytest.fixture
def etags(monkeypatch):
    """Give memory:// objects an ETag (the MD5 of their content), as S3 does."""
    original = MemoryFileSystem.find

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        found = original(self, path, maxdepth=maxdepth, withdirs=withdirs, detail=True, **kwargs)
        for name, info in found.items():
            if info.get("type") == "file":
                info["ETag"] = '"' + hashlib.md5(self.cat_file(name)).hexdigest() + '"'
        return found if detail else sorted(found)

    original_info = MemoryFileSystem.info

    def info(self, path, **kwargs):
        out = dict(original_info(self, path, **kwargs))
        if out.get("type") == "file":
            out["ETag"] = '"' + hashlib.md5(self.cat_file(path)).hexdigest() + '"'
        return out

    monkeypatch.setattr(MemoryFileSystem, "find", find)
    monkeypatch.setattr(MemoryFileSystem, "info", info)


def _upload(fs, root, folder):
    for file in sorted(folder.rglob("*.png")):
        fs.pipe(f"{root}/{file.relative_to(folder).as_posix()}", file.read_bytes())


def test_object_names_with_dotdot_are_refused(project, bucket, downloads, tmp_path):
    fs, root = bucket
    fs.pipe(f"{root}/0/a.txt", b"a")
    fs.pipe(f"{root}/0/../../../../../../../escaped.txt", b"evil")
    with pytest.raises(DataError) as info:
        remote.fetch(project, f"memory://{root}")
    assert "'..'" in str(info.value) and "escaped.txt" in info.value.received
    assert downloads == []  # refused from the listing, before any download
    assert not list(tmp_path.rglob("escaped.txt"))


def test_objects_deleted_at_the_source_disappear_locally(project, bucket, digits_folder):
    fs, root = bucket
    _upload(fs, root, digits_folder(3, classes=(0, 1)))
    uri = f"memory://{root}"
    assert project.ingest(uri, progress=False).n_samples == 6
    local = remote.fetch(project, uri)
    assert (local / "1" / "d1-002.png").is_file()
    fs.rm(f"{root}/1/d1-002.png")
    result = project.ingest(uri, progress=False)
    assert result.n_samples == 5
    assert not (local / "1" / "d1-002.png").exists()
    assert "1/d1-002.png" not in set(read_manifest(project)["sample_id"])
    leftovers = [p.name for p in local.parent.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the temporary folders are gone


def test_a_changed_object_of_the_same_size_is_fetched_again(project, bucket):
    fs, root = bucket
    fs.pipe(f"{root}/0/a.txt", b"first")
    fs.pipe(f"{root}/1/b.txt", b"other")
    uri = f"memory://{root}"
    local = remote.fetch(project, uri)
    assert (local / "0" / "a.txt").read_bytes() == b"first"
    fs.pipe(f"{root}/0/a.txt", b"FIRST")  # same size, new content
    assert (remote.fetch(project, uri) / "0" / "a.txt").read_bytes() == b"FIRST"


def test_an_unchanged_etag_is_not_fetched_again_a_changed_one_is(project, bucket, downloads, etags):
    fs, root = bucket
    fs.pipe(f"{root}/0/a.txt", b"first")
    fs.pipe(f"{root}/1/b.txt", b"other")
    uri = f"memory://{root}"
    remote.fetch(project, uri)
    assert len(downloads) == 2
    index = json.loads((remote.fetch(project, uri).parent.parent / "index.json").read_text())
    assert len(downloads) == 2  # both ETags unchanged: nothing downloaded again
    assert index["files"]["0/a.txt"]["fingerprint"].startswith("ETag:")
    fs.pipe(f"{root}/0/a.txt", b"FIRST")
    local = remote.fetch(project, uri)
    assert downloads[2:] == [f"{root}/0/a.txt"]
    assert (local / "0" / "a.txt").read_bytes() == b"FIRST"
    assert (local / "1" / "b.txt").read_bytes() == b"other"


def test_file_count_and_size_limits_are_checked_before_downloading(project, bucket, downloads):
    fs, root = bucket
    for i in range(3):
        fs.pipe(f"{root}/c/{i}.txt", b"x" * 600)
    uri = f"memory://{root}"
    project.update_config({"data.remote_max_files": 2})
    with pytest.raises(DataError) as info:
        remote.fetch(project, uri)
    assert "3 files" in str(info.value) and "data.remote_max_files" in info.value.fix
    project.update_config({"data.remote_max_files": 10, "data.remote_max_gb": 0.000001})
    with pytest.raises(DataError) as info:
        remote.fetch(project, uri)
    assert "1,800 bytes" in str(info.value) and "data.remote_max_gb" in info.value.fix
    assert downloads == []


def test_a_single_remote_file_is_swapped_and_indexed_too(project, bucket, downloads, etags):
    fs, root = bucket
    fs.pipe(f"{root}/texts.csv", b"text,label\nhello,a\n")
    uri = f"memory://{root}/texts.csv"
    first = remote.fetch(project, uri)
    assert remote.fetch(project, uri) == first and len(downloads) == 1
    fs.pipe(f"{root}/texts.csv", b"text,label\nHELLO,a\n")
    assert remote.fetch(project, uri).read_bytes() == b"text,label\nHELLO,a\n"
    assert len(downloads) == 2


def _tail(path) -> str:
    return "/".join(str(path).rsplit("/", 2)[-2:])


def test_a_remote_folder_is_read_file_by_file_through_the_cache(
    project, bucket, digits_folder, monkeypatch, downloads, etags
):
    """Each object is fetched through fsspec's caching filesystem when the ingest reaches it
    (fetch, decode, fetch, decode, ...), not after a whole copy; a re-ingest fetches only the
    object whose ETag changed."""
    from pathlib import Path

    from fsspec.implementations.cached import SimpleCacheFileSystem

    import dlworkflow.data.image_decode as image_decode

    fs, root = bucket
    _upload(fs, root, digits_folder(3, classes=(0, 1)))
    events: list[str] = []
    real_open, real_decode = SimpleCacheFileSystem._open, image_decode.decode_image

    def cached_open(self, path, *args, **kwargs):
        events.append(f"fetch {_tail(path)}")
        return real_open(self, path, *args, **kwargs)

    def decode(path, **kwargs):
        events.append(f"decode {_tail(path)}")
        return real_decode(path, **kwargs)

    monkeypatch.setattr(SimpleCacheFileSystem, "_open", cached_open)
    monkeypatch.setattr(image_decode, "decode_image", decode)
    uri = f"memory://{root}"
    first = project.ingest(uri, progress=False)
    assert first.n_samples == 6 and len(downloads) == 6
    names = ["0/d0-000.png", "0/d0-001.png", "0/d0-002.png", "1/d1-000.png"]
    assert events[:8] == [f"{kind} {name}" for name in names for kind in ("fetch", "decode")]
    paths = read_manifest(project)["path"]
    assert all(Path(p).is_file() and str(project.paths.state / "remote") in p for p in paths)
    fs.pipe(f"{root}/1/d1-001.png", fs.cat_file(f"{root}/0/d0-000.png"))
    again = project.ingest(uri, progress=False)
    assert downloads[6:] == [f"{root}/1/d1-001.png"]  # the only changed ETag
    assert again.n_reused == 5 and again.dataset_version != first.dataset_version
