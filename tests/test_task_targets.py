"""Regression and multi-label targets: parsed or quarantined with the reason at ingest,
stratified at split, encoded, and judged with metrics that agree with scikit-learn; on real
data (scikit-learn's diabetes, river's Yeast)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    hamming_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

from dlworkflow.datasets.diabetes import load_table as diabetes
from dlworkflow.datasets.yeast import LABELS
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine
from dlworkflow.tasks import TargetError, task_of
from task_projects import yeast_csv

REGRESSION, MULTILABEL = task_of("tabular-regression"), task_of("tabular-multilabel")


def test_a_regression_target_must_be_a_finite_number():
    assert REGRESSION.parse_target(" 151 ", column="y") == "151.0"
    assert REGRESSION.parse_target(2.5, column="y") == "2.5"
    cases = {
        "abc": "target 'abc' in y is not a number",
        None: "no target value (empty or NaN y)",
        float("nan"): "no target value (empty or NaN y)",
        "inf": "target in y is infinite (inf)",
        "-Infinity": "target in y is infinite (-Infinity)",
    }
    for raw, reason in cases.items():
        with pytest.raises(TargetError) as err:
            REGRESSION.parse_target(raw, column="y")
        assert err.value.reason == reason


def test_bad_targets_are_quarantined_at_ingest_with_their_reason(tmp_path):
    table = diabetes().head(60)
    table["label"] = table["label"].astype(object)
    table.loc[3, "label"], table.loc[7, "label"], table.loc[9, "label"] = "n/a?", "inf", None
    source = tmp_path / "diabetes.csv"
    table.to_csv(source, index=False)
    project = Project.init(tmp_path / "p", task="tabular-regression")
    project.ingest(str(source), progress=False)
    reasons = sorted(read_quarantine(project)["reason"])
    assert reasons == [
        "row 10: no target value (empty or NaN label)",
        "row 4: target 'n/a?' in label is not a number",
        "row 8: target in label is infinite (inf)",
    ]
    manifest = read_manifest(project)
    assert len(manifest) == 57
    assert (
        sorted(manifest["label"].astype(float))[:3]
        == sorted(table["label"].drop([3, 7, 9]).astype(float))[:3]
    )


def test_multi_label_rows_without_a_label_or_with_an_unknown_label_are_quarantined(tmp_path):
    source = yeast_csv(tmp_path / "yeast.csv", n=40)
    table = pd.read_csv(source)
    table.loc[2, "label"] = ""  # no label
    table.loc[5, "label"] = "Class1|Class99"  # not among data.classes
    table.to_csv(source, index=False)
    project = Project.init(tmp_path / "p", task="tabular-multilabel")
    project.update_config({"data.classes": list(LABELS)})
    project.ingest(str(source), progress=False)
    reasons = sorted(read_quarantine(project)["reason"])
    assert reasons == [
        "row 3: no label (empty label): a sample needs at least one",
        f"unknown label value 'Class99' (data.classes allows {sorted(LABELS)})",
    ]
    assert len(read_manifest(project)) == 38


def test_one_hot_label_columns_read_as_the_same_label_sets(tmp_path):
    delimited = pd.read_csv(yeast_csv(tmp_path / "d.csv", n=50))
    one_hot = yeast_csv(tmp_path / "o.csv", n=50, one_hot=True)
    project = Project.init(tmp_path / "p", task="tabular-multilabel")
    project.update_config({"data.label_columns": list(LABELS)})
    project.ingest(str(one_hot), progress=False)
    manifest = read_manifest(project)
    assert manifest["label"].tolist() == [
        "|".join(sorted(s.split("|"))) for s in delimited["label"]
    ]
    assert not any(c.startswith("Class") for c in manifest.columns if c != "label")
    bad = pd.read_csv(one_hot)
    bad.loc[0, "Class3"] = 7
    bad.to_csv(tmp_path / "bad.csv", index=False)
    again = Project.init(tmp_path / "q", task="tabular-multilabel")
    again.update_config({"data.label_columns": list(LABELS)})
    again.ingest(str(tmp_path / "bad.csv"), progress=False)
    assert list(read_quarantine(again)["reason"]) == [
        "row 1: one-hot label column 'Class3' holds '7', not 0/1"
    ]


def test_the_split_keeps_the_value_range_and_rare_labels_in_every_part(tmp_path):
    values = [repr(float(v)) for v in diabetes()["label"]]
    strata = REGRESSION.strata(values)
    assert len(set(strata)) == 10  # 442 samples: 10 quantile bins
    counts = pd.Series(strata).value_counts()
    assert counts.min() >= 40 and counts.max() <= 50
    targets = pd.read_csv(yeast_csv(tmp_path / "y.csv", n=2417))["label"].tolist()
    strata = MULTILABEL.strata(targets)
    support = pd.Series([lab for t in targets for lab in t.split("|")]).value_counts()
    rarest = support.idxmin()
    assert all(s in support.index for s in strata)
    assert strata.count(rarest) == support[rarest]  # every sample of the rarest label


def test_regression_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = diabetes()["label"].to_numpy(dtype=np.float64)
    pred = y + rng.normal(0, 40, size=len(y))
    out = pred[:, None]
    got = {m.name: REGRESSION.score(m.name, y, out, {}) for m in REGRESSION.metrics}
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, pred)))
    assert got["mae"] == pytest.approx(mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(r2_score(y, pred))
    assert got["mape"] == pytest.approx(mean_absolute_percentage_error(y, pred))
    counts = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y))
    resampled = REGRESSION.scores(y, out, counts[None, :].astype(float), {})
    idx = np.repeat(np.arange(len(y)), counts)
    assert resampled["r2"][0] == pytest.approx(r2_score(y[idx], pred[idx]))
    target = REGRESSION.fit_target(y)
    logits = (pred[:, None] - target["mean"]) / target["std"]
    assert np.allclose(REGRESSION.outputs(logits, target), out)  # the scaling is undone


def test_multilabel_metrics_agree_with_scikit_learn(tmp_path):
    targets = pd.read_csv(yeast_csv(tmp_path / "y.csv", n=600))["label"].tolist()
    names = MULTILABEL.output_names(targets)
    y = MULTILABEL.encode(targets, names)
    rng = np.random.default_rng(1)
    out = np.clip(y * 0.6 + rng.uniform(0, 0.5, size=y.shape), 0, 1)
    target = {"thresholds": [0.5] * len(names)}
    pred = out >= 0.5
    got = {m.name: MULTILABEL.score(m.name, y, out, target) for m in MULTILABEL.metrics}
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert got["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert got["hamming_loss"] == pytest.approx(hamming_loss(y, pred))
    assert got["subset_accuracy"] == pytest.approx(float((pred == y).all(axis=1).mean()))
    assert got["map"] == pytest.approx(average_precision_score(y, out, average="macro"))
    tuned = MULTILABEL.fit_on_validation(y, out, {})
    assert len(tuned["thresholds"]) == len(names)
    assert MULTILABEL.score("macro_f1", y, out, tuned) >= got["macro_f1"]
    one = MULTILABEL.prediction(out[0], names, tuned)
    assert one["labels"] == [n for n, p, t in zip(names, out[0], tuned["thresholds"]) if p >= t]


def test_a_target_outside_the_metrics_range_is_refused(tmp_path):
    project = Project.init(tmp_path / "p", task="tabular-regression")
    result = project.define(metric="rmse", target=60.0, objective="visits")
    assert result.criterion == "rmse <= 60 on the sealed test set"
    with pytest.raises(Exception, match="not a possible rmse"):
        project.define(metric="rmse", target=-1.0)
    with pytest.raises(Exception, match="has no metric 'accuracy'"):
        project.define(metric="accuracy", target=0.9)
    assert Path(project.paths.config).read_text().count("tabular-regression") == 1
