"""Data sources: folder, CSV/TSV and built-in datasets yield candidates without decoding."""

from __future__ import annotations

import numpy as np
import pytest

from dlworkflow.config import validate_config
from dlworkflow.data.sources import open_source, scan_folder
from dlworkflow.data.tables import scan_table
from dlworkflow.datasets import get_builtin, list_builtins
from dlworkflow.errors import DataError, UnknownKeyError
from dlworkflow.store import read_manifest


def _config(**data):
    return validate_config({"name": "t", "data": data})


def test_folder_scan_labels_from_the_first_folder_level(digits_folder):
    folder = digits_folder(2, classes=(0, 9))
    nested = folder / "9" / "more" / "deep.png"
    nested.parent.mkdir()
    (folder / "9" / "d9-000.png").replace(nested)
    (folder / "0" / "info.txt").write_text("x")
    (folder / "0" / ".hidden.png").write_bytes(b"")
    scan = scan_folder(folder)
    candidates = {c.sample_id: c for c in scan.candidates}
    assert set(candidates) == {"0/d0-000.png", "0/d0-001.png", "9/d9-001.png", "9/more/deep.png"}
    assert candidates["9/more/deep.png"].label == "9"
    assert all(c.problem is None and c.group is None for c in candidates.values())
    assert candidates["0/d0-000.png"].path == folder / "0" / "d0-000.png"
    assert scan.skipped == ["0/info.txt"]


def test_folder_without_class_subfolders_is_a_data_error(tmp_path, save_png, real_digit):
    save_png(tmp_path / "flat" / "a.png", real_digit(0, 0))
    with pytest.raises(DataError) as info:
        scan_folder(tmp_path / "flat")
    assert "no class sub-folders" in str(info.value)
    assert "ROOT/<class name>/<image>" in info.value.fix


def test_missing_source_and_unsupported_file_are_data_errors(project, tmp_path):
    with pytest.raises(DataError) as info:
        open_source(project, str(tmp_path / "nowhere"))
    assert "does not exist" in str(info.value)
    assert "dlw datasets" in info.value.fix
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(DataError) as info:
        open_source(project, str(odd))
    assert "a file ending in .xlsx" in info.value.received


def test_csv_scan_resolves_paths_groups_and_problems(digits_csv):
    table = digits_csv(
        [
            {"label": 0, "k": 0, "group": "p1"},
            {"label": 0, "k": 1, "group": ""},
            {"label": 1, "k": 0, "group": "p2", "label_text": "n/a"},
        ]
    )
    scan = scan_table(table, _config(group_column="group"))
    rows = list(scan.candidates)
    assert [c.sample_id for c in rows] == ["img/d0-000.png", "img/d0-001.png", "img/d1-000.png"]
    assert rows[0].path == (table.parent / "img" / "d0-000.png").resolve()
    assert [c.group for c in rows] == ["p1", None, "p2"]
    assert [c.problem for c in rows][:2] == [None, None]
    assert rows[2].problem == "row 3: no label (empty or NaN label)"
    assert scan.skipped == []
    no_group = scan_table(table, _config())
    assert {c.group for c in no_group.candidates} == {None}


def test_csv_missing_group_column_is_named(digits_csv):
    table = digits_csv([{"label": 0, "k": 0}], header=("path", "label"))
    with pytest.raises(DataError) as info:
        scan_table(table, _config(group_column="patient"))
    assert "'patient'" in str(info.value)
    assert info.value.received == "columns path, label"


def test_tsv_is_read_with_tabs(project, tmp_path, save_png, real_digit):
    folder = tmp_path / "tsv"
    lines = ["path\tlabel"]
    for label in (1, 2):
        for k in range(3):
            save_png(folder / f"{label}-{k}.png", real_digit(label, k))
            lines.append(f"{label}-{k}.png\t{label}")
    (folder / "s.tsv").write_text("\n".join(lines) + "\n")
    result = project.ingest(str(folder / "s.tsv"), progress=False)
    assert result.class_counts == {"1": 3, "2": 3}


def test_builtin_catalogue(tmp_path):
    from PIL import Image

    names = [d.name for d in list_builtins()]
    assert {"digits", "mnist5k"} <= set(names)
    digits = get_builtin("digits")
    assert (digits.n_samples, digits.size, digits.task) == (1797, "8x8", "image-classification")
    folder = digits.materialise(tmp_path)
    files = sorted(folder.rglob("*.png"))
    assert len(files) == 1797
    first = files[0]
    assert first.parent.name == "0"
    first_image = np.asarray(Image.open(folder / "0" / "digits-00000.png"))
    assert first_image.dtype == np.uint8 and first_image.shape == (8, 8)
    from sklearn.datasets import load_digits

    raw = load_digits().images[0]  # 0-16 intensities, scaled to 0-255
    np.testing.assert_array_equal(first_image, np.round(raw * 255 / 16).astype(np.uint8))
    assert first_image.max() > 200
    with pytest.raises(UnknownKeyError) as info:
        get_builtin("digit")
    assert "'digits'" in info.value.fix


def test_unknown_builtin_source_fails_the_ingest(project):
    with pytest.raises(UnknownKeyError):
        project.ingest("builtin:cifar", progress=False)
    assert project.ledger.latest("ingest", status=None).status == "failed"


def test_builtin_mnist5k_ingest_and_reuse(project):
    result = project.ingest("builtin:mnist5k", progress=False)
    assert result.n_samples == 5000
    assert sorted(result.class_counts) == [str(d) for d in range(10)]
    assert sum(result.class_counts.values()) == 5000
    assert min(result.class_counts.values()) > 350  # every digit well represented
    assert result.data_format.startswith("images, 28x28, 1 channel")
    raw = project.paths.raw / "mnist5k"
    marker = raw / ".complete.json"
    stamp = marker.stat().st_mtime_ns
    some_file = sorted((raw / "3").iterdir())[0]
    file_stamp = some_file.stat().st_mtime_ns
    again = project.ingest("builtin:mnist5k", progress=False)  # the PNGs are reused
    assert again.dataset_version == result.dataset_version
    assert marker.stat().st_mtime_ns == stamp
    assert some_file.stat().st_mtime_ns == file_stamp
    assert len(read_manifest(project)) == 5000
