"""Paths stay inside the data (issue 14, items 3 and 8): a table's paths may not escape its
folder (or data.root), only regular files are read, the folder scan does not follow symlinks
out of the source, image and text tables are read for the columns they need, a file name that
is not valid UTF-8 is quarantined, and sample ids are Unicode NFC."""

from __future__ import annotations

import os
import sys
import threading
import unicodedata

import pytest

from dlworkflow.config import validate_config
from dlworkflow.data import tables
from dlworkflow.data.sources import scan_folder
from dlworkflow.data.tables import scan_table
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file system features")


def _config(**data):
    return validate_config({"name": "t", "data": data})


def _write_csv(path, rows, header=("path", "label")):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _in_thread(fn, timeout=20.0):
    """Run fn in a daemon thread; fail (instead of hanging the suite) when it blocks."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "ingest blocked (did it open a named pipe?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- item 3: a table's paths stay inside its folder or data.root -----------------------------


def test_table_paths_outside_the_folder_are_quarantined(tmp_path, save_png, real_digit):
    outside = save_png(tmp_path / "secret" / "x.png", real_digit(1, 0))
    table_dir = tmp_path / "table"
    for label in (0, 1):
        for k in range(3):
            save_png(table_dir / "img" / f"d{label}-{k}.png", real_digit(label, k))
    rows = [(f"img/d{label}-{k}.png", label) for label in (0, 1) for k in range(3)]
    rows += [("../secret/x.png", 1), (str(outside), 1)]
    table = _write_csv(table_dir / "samples.csv", rows)
    project = Project.init(tmp_path / "proj")
    result = project.ingest(str(table), progress=False)
    assert result.n_samples == 6
    quarantine = read_quarantine(project)
    reasons = list(quarantine["reason"])
    assert len(reasons) == 2
    assert all("outside the data folder" in r for r in reasons)
    assert "'../secret/x.png'" in reasons[0] and repr(str(outside)) in reasons[1]
    assert all(str(table_dir) in r for r in reasons)  # the allowed folder is named
    assert str(outside) not in set(read_manifest(project)["path"])


def test_a_symlink_inside_the_table_folder_pointing_outside_is_outside(
    tmp_path, save_png, real_digit
):
    outside = save_png(tmp_path / "secret" / "x.png", real_digit(1, 0))
    table_dir = tmp_path / "table"
    save_png(table_dir / "img" / "a.png", real_digit(0, 0))
    (table_dir / "img" / "link.png").symlink_to(outside)
    table = _write_csv(table_dir / "samples.csv", [("img/a.png", 0), ("img/link.png", 1)])
    rows = list(scan_table(table, _config()).candidates)
    assert rows[0].problem is None
    assert rows[1].problem is not None and "outside the data folder" in rows[1].problem


def test_data_root_allows_a_folder_beside_the_table(tmp_path, save_png, real_digit):
    shared = tmp_path / "shared"
    for label in (0, 1):
        for k in range(2):
            save_png(shared / "img" / f"d{label}-{k}.png", real_digit(label, k))
    save_png(tmp_path / "elsewhere" / "e.png", real_digit(0, 5))
    rows = [(f"../img/d{label}-{k}.png", label) for label in (0, 1) for k in range(2)]
    rows.append(("../../elsewhere/e.png", 0))
    table = _write_csv(shared / "tables" / "samples.csv", rows)
    project = Project.init(tmp_path / "proj")
    project.update_config({"data.root": "../shared"})  # relative: to the project's root
    result = project.ingest(str(table), progress=False)
    assert result.n_samples == 4
    (reason,) = read_quarantine(project)["reason"]
    assert "outside the data folder" in reason and str(shared) in reason


# --- item 3: only regular files are read ---------------------------------------------------


@posix_only
def test_a_named_pipe_in_a_table_is_quarantined_not_opened(tmp_path, save_png, real_digit):
    table_dir = tmp_path / "table"
    for label in (0, 1):
        for k in range(2):
            save_png(table_dir / f"d{label}-{k}.png", real_digit(label, k))
    os.mkfifo(table_dir / "pipe.png")
    rows = [(f"d{label}-{k}.png", label) for label in (0, 1) for k in range(2)]
    table = _write_csv(table_dir / "samples.csv", [*rows, ("pipe.png", 1)])
    project = Project.init(tmp_path / "proj")
    result = _in_thread(lambda: project.ingest(str(table), progress=False))
    assert result.n_samples == 4
    (reason,) = read_quarantine(project)["reason"]
    assert "not a regular file" in reason and "pipe.png" in reason


@posix_only
def test_a_named_pipe_in_a_folder_is_quarantined_not_opened(tmp_path, digits_folder):
    folder = digits_folder(2, classes=(0, 1))
    os.mkfifo(folder / "1" / "pipe.png")
    project = Project.init(tmp_path / "proj")
    result = _in_thread(lambda: project.ingest(str(folder), progress=False))
    assert result.n_samples == 4
    quarantine = read_quarantine(project)
    assert list(quarantine["sample_id"]) == ["1/pipe.png"]
    assert "not a regular file" in quarantine["reason"].iloc[0]


# --- item 3: the folder scan does not follow symlinks out of the source ----------------------


@posix_only
def test_folder_scan_does_not_follow_symlinks_out_of_the_source(tmp_path, digits_folder):
    folder = digits_folder(2, classes=(0, 1))
    outside = digits_folder(2, classes=(7,), name="outside")
    (folder / "0" / "stolen").symlink_to(outside / "7", target_is_directory=True)
    (folder / "1" / "stolen.png").symlink_to(outside / "7" / "d7-000.png")
    (folder / "1" / "inside.png").symlink_to(folder / "0" / "d0-000.png")
    (folder / "1" / "loop").symlink_to(folder, target_is_directory=True)  # inside, a cycle
    scan = scan_folder(folder)
    candidates = {c.sample_id: c for c in scan.candidates}
    assert not any(sid.startswith("0/stolen/") for sid in candidates)
    assert candidates["1/stolen.png"].problem is not None
    assert "outside the source folder" in candidates["1/stolen.png"].problem
    assert candidates["1/inside.png"].problem is None  # a link inside is fine
    assert any("0/stolen" in s and "outside the source folder" in s for s in scan.skipped)
    assert len([s for s in candidates if s.endswith("d0-000.png")]) <= 2  # no endless loop


@posix_only
def test_a_link_inside_stays_inside_when_the_source_is_reached_through_a_symlink(
    tmp_path, digits_folder
):
    folder = digits_folder(2, classes=(0, 1))
    (folder / "1" / "inside.png").symlink_to(folder / "0" / "d0-000.png")
    alias = tmp_path / "alias"
    alias.symlink_to(folder, target_is_directory=True)
    candidates = {c.sample_id: c for c in scan_folder(alias).candidates}
    assert candidates["1/inside.png"].problem is None


# --- item 8: image and text tables are read for the columns they need ----------------------


def test_image_and_text_tables_read_only_the_columns_they_need(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    original = tables.read_chunks

    def spy(*args, **kwargs):
        for chunk in original(*args, **kwargs):
            seen.append([str(c) for c in chunk.columns])
            yield chunk

    monkeypatch.setattr(tables, "read_chunks", spy)
    wide = ",".join(f"extra{i}" for i in range(20))
    body = "\n".join(f"a text {i},{'pos' if i % 2 else 'neg'},p{i % 3},{wide}" for i in range(6))
    table = tmp_path / "texts.csv"
    table.write_text(f"text,label,group,{wide}\n{body}\n", encoding="utf-8")
    config = validate_config(
        {"name": "t", "task": "text-classification", "data": {"group_column": "group"}}
    )
    rows = list(scan_table(table, config).candidates)
    assert len(rows) == 6 and rows[0].group == "p0"
    assert seen and all(set(cols) <= {"text", "label", "group"} for cols in seen)

    seen.clear()
    image_table = _write_csv(
        tmp_path / "img.csv", [("a.png", 0, 1, 2)], ("path", "label", "x", "y")
    )
    list(scan_table(image_table, _config()).candidates)
    assert seen and all(set(cols) <= {"path", "label"} for cols in seen)

    seen.clear()
    tabular = _write_csv(tmp_path / "tab.csv", [(1, 2, "a")], ("f1", "f2", "label"))
    config = validate_config({"name": "t", "task": "tabular-classification"})
    (row,) = scan_table(tabular, config).candidates
    assert row.features == {"f1": 1.0, "f2": 2.0}  # tabular tasks keep reading the features


# --- item 8: a file name that is not valid UTF-8 ---------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="Linux allows any bytes in file names")
def test_a_file_name_that_is_not_utf8_is_quarantined(tmp_path, digits_folder):
    folder = digits_folder(2, classes=(0, 1))
    good = (folder / "1" / "d1-000.png").read_bytes()
    bad = os.path.join(os.fsencode(folder / "1"), b"bad\xff.png")
    with open(bad, "wb") as handle:
        handle.write(good)
    project = Project.init(tmp_path / "proj")
    result = project.ingest(str(folder), progress=False)
    assert result.n_samples == 4
    quarantine = read_quarantine(project)
    assert len(quarantine) == 1
    assert "not valid UTF-8" in quarantine["reason"].iloc[0]
    assert "bad" in quarantine["sample_id"].iloc[0]


# --- item 8: sample ids are NFC -------------------------------------------------------------


def test_sample_ids_are_nfc_whatever_the_file_system_wrote(tmp_path, digits_folder):
    nfc = unicodedata.normalize("NFC", "café.png")
    nfd = unicodedata.normalize("NFD", "café.png")
    assert nfc != nfd
    ids = []
    for form in (nfc, nfd):
        folder = digits_folder(2, classes=(0, 1), name=f"images-{len(form)}")
        (folder / "1" / "d1-000.png").rename(folder / "1" / form)
        project = Project.init(tmp_path / f"proj-{len(form)}")
        project.ingest(str(folder), progress=False)
        ids.append(sorted(read_manifest(project)["sample_id"]))
    assert ids[0] == ids[1] and f"1/{nfc}" in ids[0]

    both = digits_folder(2, classes=(0, 1), name="both")  # one folder holding both forms
    (both / "1" / "d1-000.png").rename(both / "1" / nfc)
    (both / "1" / "d1-001.png").rename(both / "1" / nfd)
    candidates = list(scan_folder(both).candidates)
    named = [c for c in candidates if c.sample_id.startswith(f"1/{nfc}")]
    assert len({c.sample_id for c in candidates}) == len(candidates)  # ids stay unique
    assert [c.problem is None for c in named].count(True) == 1
    table = _write_csv(tmp_path / "t" / "samples.csv", [(nfd, 0)])
    (row,) = scan_table(table, _config()).candidates
    assert row.sample_id == nfc
