"""Step 3 on text and tabular data ingested from CSV tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlworkflow.explore import explore
from dlworkflow.explore.tabular import tabular_evidence
from dlworkflow.project import Project

REVIEWS = {
    "pos": [
        "a wonderful film with a moving story",
        "great acting and a beautiful score",
        "I loved every minute of this movie",
        "brilliant direction, superb cast",
        "a joyful, warm and funny picture",
        "the best film I have seen this year",
    ],
    "neg": [
        "a boring film with a weak story",
        "terrible acting and an awful script",
        "I hated every minute of this movie",
        "dull direction and a wasted cast",
        "a tedious, cold and joyless picture",
        "the worst film I have seen this year",
    ],
}


def _text_table(folder: Path) -> Path:
    rows = [
        {"text": f"{t} ({k})", "label": label}
        for label, texts in REVIEWS.items()
        for k in range(5)
        for t in texts
    ]
    rows += [
        {"text": "an average film", "label": "pos"},  # the same text, both labels
        {"text": "an average film", "label": "neg"},
        {"text": "An   AVERAGE film", "label": "pos"},
    ]  # the same after normalising
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "reviews.csv", index=False)
    return folder / "reviews.csv"


def test_text_report_lists_vocabulary_tokens_and_conflicts(tmp_path):
    project = Project.init(tmp_path / "proj", task="text-classification")
    project.update_config({"explore.backbone": "pixels"})
    project.ingest(str(_text_table(tmp_path / "data")), progress=False)
    result = explore(project, progress=False)
    text = Path(result.report).read_text(encoding="utf-8")
    section = text[text.index("<section id='text'>") :]
    assert "vocabulary" in section and "film" in section
    assert "an average film" in text  # shown as a duplicate snippet
    assert result.exact_conflicting == 1 and result.near_conflicting >= 1
    assert result.warnings[0].severity == "high"
    assert "TF-IDF" in text and "data:image/png;base64" in text
    assert project.ledger.latest("explore").status == "done"


def _iris_table(folder: Path) -> Path:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["label"] = iris.target_names[frame.pop("target")]
    frame["row_id"] = np.arange(len(frame)) * 7 + 1000  # id-like
    frame["leak"] = frame["label"].map({"setosa": 1.0, "versicolor": 5.0, "virginica": 9.0})
    frame.loc[::4, "sepal_width"] = np.nan  # 25% missing
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "iris.csv", index=False)
    return folder / "iris.csv"


def test_tabular_report_flags_leaky_columns_and_missing_values(tmp_path):
    project = Project.init(tmp_path / "proj", task="tabular-classification")
    project.ingest(str(_iris_table(tmp_path / "data")), progress=False)
    result = explore(project, progress=False)
    leaks = {
        w.text.split("'")[1]
        for w in result.warnings
        if w.severity == "high" and "leaks the target" in w.text
    }
    assert leaks == {"row_id", "leak"}
    assert any("missing values" in w.text and "sepal_width" in w.text for w in result.warnings)
    text = Path(result.report).read_text(encoding="utf-8")
    assert "<section id='tabular'>" in text and "Correlation of numeric columns" in text
    assert result.label_issues is not None


def test_tabular_evidence_survives_nan_and_infinite_values():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "sample_id": [f"r{i}" for i in range(60)],
            "label": ["a", "b", "c"] * 20,
            "f:x": rng.normal(size=60),
            "f:word": ["u", "v"] * 30,
        }
    )
    frame.loc[3, "f:x"] = np.inf
    frame.loc[4:10, "f:x"] = np.nan
    evidence = tabular_evidence(frame, seed=0)
    assert evidence.n_nonfinite == 1
    assert [c.kind for c in evidence.columns] == ["number", "category"]
    assert evidence.leaks == []
