"""docs/index.md names the tasks the registry has (no stale count such as "the three tasks")."""

from __future__ import annotations

import re
from pathlib import Path

from dlworkflow.tasks import task_names, task_of

INDEX = Path(__file__).resolve().parents[2] / "docs" / "index.md"
WORDS = {  # a registry word -> how the page says it
    "image": "images",
    "text": "texts",
    "tabular": "tables",
    "sequence": "time series",
    "audio": "audio clips",
    "classification": "classification",
    "regression": "regression",
    "multilabel": "multi-label",
    "detection": "object detection",
    "segmentation": "semantic segmentation",
}
COUNTS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def test_index_names_every_modality_and_target_kind_and_no_stale_count():
    text = " ".join(INDEX.read_text(encoding="utf-8").split())
    for name in task_names():
        task = task_of(name)
        for word in (task.modality, task.kind):
            assert WORDS[word] in text, f"docs/index.md does not mention {WORDS[word]!r}"
    counted = re.findall(rf"\b({'|'.join(COUNTS)}|\d+) tasks\b", text)
    n = len(task_names())
    right = {str(n)} | ({COUNTS[n - 1]} if n <= len(COUNTS) else set())
    assert set(counted) <= right, f"docs/index.md counts {counted} tasks, the registry has {n}"
