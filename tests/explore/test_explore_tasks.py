"""Step 3 on the regression and multi-label tasks, on real data: scikit-learn's diabetes (442
patients, a disease-progression score) and the first 800 genes of river's Yeast (14 labels)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlworkflow.explore import explore
from dlworkflow.project import Project
from task_projects import multilabel_project, regression_project, yeast_csv


def _section(html: str, anchor: str) -> str:
    start = html.index(f"<section id='{anchor}'>")
    return html[start : html.index("</section>", start)]


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    project = regression_project(tmp_path_factory.mktemp("diabetes"), until="split")
    # after a split explore leaves the sealed test set out unless asked: all 442 here
    return project, explore(project, include_test=True, progress=False)


@pytest.fixture(scope="module")
def yeast(tmp_path_factory):
    project = multilabel_project(tmp_path_factory.mktemp("yeast"), until="split", n=800)
    return project, explore(project, include_test=True, progress=False)  # all 800 genes


def test_regression_target_section_matches_pandas_describe(diabetes):
    from sklearn.datasets import load_diabetes

    project, result = diabetes
    truth = load_diabetes(as_frame=True).frame["target"]
    expected = truth.describe()
    summary = project.ledger.latest("explore").summary["target"]
    assert summary["count"] == expected["count"] == result.n_samples == 442
    for key in ("mean", "std", "min", "25%", "50%", "75%", "max"):
        assert summary[key] == pytest.approx(expected[key], rel=1e-9), key
    assert summary["skew"] == pytest.approx(truth.skew(), rel=1e-9)
    assert summary["zeros"] == 0.0 and summary["distinct"] == truth.nunique()

    html = Path(result.report).read_text(encoding="utf-8")
    target = _section(html, "classes")
    assert "3. Target" in target and "data:image/png;base64," in target  # the histogram
    words = _text(target)
    assert f"mean {expected['mean']:,.4g}" in words and f"std {expected['std']:,.4g}" in words
    # each feature's correlation with the target, strongest first: bmi (0.586) on diabetes
    frame = load_diabetes(as_frame=True, scaled=False).frame
    bmi = frame["bmi"].corr(frame["target"])
    assert f"bmi {bmi:+.3f}" in words
    first = re.search(r"rows (\w+) ([+-]\d\.\d{3})", words)
    assert first is not None and first.group(1) == "bmi"


def test_regression_skips_class_sections_and_colours_the_map_by_value(diabetes):
    project, result = diabetes
    html = Path(result.report).read_text(encoding="utf-8")
    assert "not applicable to tabular-regression" in _section(html, "label-issues")
    assert "Colour: the target value" in _section(html, "map")
    assert result.label_issues is None and result.class_counts == {}
    assert not any("class" in w.text for w in result.warnings)  # no class imbalance, no small
    assert dict(result.rows())["samples"] == "442"
    assert project.ledger.latest("explore").summary["imbalance_ratio"] is None
    assert "leaks the target" not in " ".join(w.text for w in result.warnings)


def test_regression_flags_a_column_that_copies_the_target(tmp_path):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "label"})
    rng = np.random.default_rng(0)
    frame["lab_score"] = frame["label"] * 0.5 + rng.normal(0, 2, len(frame))  # r about 0.998
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    project = Project.init(tmp_path / "proj", task="tabular-regression")
    project.ingest(str(tmp_path / "diabetes.csv"), progress=False)
    result = explore(project, progress=False)
    leaks = [w for w in result.warnings if "leaks the target" in w.text]
    assert [w.text.split("'")[1] for w in leaks] == ["lab_score"]
    assert leaks[0].severity == "high" and "correlation +0.99" in leaks[0].text


def test_multilabel_supports_are_the_one_hot_column_sums(yeast, tmp_path):
    project, result = yeast
    one_hot = pd.read_csv(yeast_csv(tmp_path / "one_hot.csv", n=800, one_hot=True))
    flags = one_hot[[c for c in one_hot.columns if c.startswith("Class")]]
    summary = project.ledger.latest("explore").summary["target"]
    assert result.n_samples == 800
    assert summary["support"] == {c: int(n) for c, n in flags.sum().items()}
    assert summary["labels"] == 14
    assert summary["cardinality"] == pytest.approx(flags.sum(axis=1).mean(), rel=1e-12)
    rare = [c for c, n in flags.sum().items() if n < 30]
    assert summary["rare"] == rare and rare  # Class14: 12 of the first 800 genes

    html = Path(result.report).read_text(encoding="utf-8")
    labels = _text(_section(html, "classes"))
    assert "3. Labels" in labels and f"{flags.sum(axis=1).mean():.2f} on average" in labels
    both = int((flags["Class12"] & flags["Class13"]).sum())
    assert f"Class12 Class13 {both:,}" in labels  # the most frequent pair comes first
    assert labels.index("Most frequent label pairs") < labels.index(f"Class12 Class13 {both:,}")
    assert _section(html, "classes").count("data:image/png;base64,") >= 3  # + co-occurrence


def test_multilabel_warns_about_rare_labels_not_classes(yeast):
    project, result = yeast
    texts = [w.text for w in result.warnings]
    assert any(t.startswith("1 label with fewer than 30 samples: Class14 (12)") for t in texts)
    assert not any("class" in t for t in texts)
    html = Path(result.report).read_text(encoding="utf-8")
    assert "not applicable to tabular-multilabel" in _section(html, "label-issues")
    assert dict(result.rows())["labels"] == "14"
    support = project.ledger.latest("explore").summary["target"]["support"]
    assert result.imbalance_ratio == pytest.approx(max(support.values()) / min(support.values()))
    assert "<section id='leakage'>" in html and "No duplicates between splits" in html
