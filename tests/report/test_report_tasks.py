"""Step 8 (report, model card, audit) for the regression and multi-label tasks, on real data:
scikit-learn's diabetes (RMSE <= 70) and the first 800 genes of river's Yeast (macro F1 >=
0.3), each explored, trained and tested once."""

from __future__ import annotations

import html as html_lib
import re
import shutil
from pathlib import Path

import pytest

from dlworkflow.fileio import read_json
from dlworkflow.report.audit import audit
from dlworkflow.report.html import data_uri
from dlworkflow.report.step import report
from task_projects import multilabel_project, regression_project


def _tested(project):
    project.explore(progress=False)
    project.test()
    return project, report(project, pdf=False), audit(project)


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    return _tested(regression_project(tmp_path_factory.mktemp("diabetes")))


@pytest.fixture(scope="module")
def yeast(tmp_path_factory):
    return _tested(multilabel_project(tmp_path_factory.mktemp("yeast"), n=800))


def _section(text: str, key: str) -> str:
    start = text.index(f"id='{key}'")
    end = text.find("<section", start)
    return text[start : end if end > 0 else len(text)]


def _words(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


def _metrics(project) -> dict:
    return read_json(project.paths.reports / "evaluate" / "test" / "metrics.json")


def test_regression_report_shows_rmse_criterion_residuals_and_no_confusion(diabetes):
    project, result, _ = diabetes
    m = _metrics(project)
    text = result.html.read_text(encoding="utf-8")
    summary = _words(_section(text, "summary"))
    assert "rmse <= 70 on the sealed test set" in summary
    results = _words(_section(text, "results"))
    # no confusion matrix: not the key figure, nothing in the results (the audit may say why)
    assert "Confusion matrix" not in text and "confusion" not in results.lower()
    for name in ("rmse", "mae", "mape"):  # lower is better, said so, with their intervals
        item = m["metrics"][name]
        assert (
            f"{name} (lower is better)" in results
            and f"{item['value']:.4f}" in results
            and f"{item['low']:.4f} to {item['high']:.4f}" in results
        ), name
    assert f"r2 {m['metrics']['r2']['value']:.4f}" in results  # higher is better: no note
    assert "rmse (lower is better) (agreed)" in results and "<= 70" in results
    assert "Calibration: not applicable to tabular-regression" in results
    # the residual plot, embedded, and the largest residual of metrics.json first
    assert data_uri(project.root / m["figures"]["residuals"]) in text
    first = m["largest_errors"][0]
    assert f"{first['sample_id']} {first['true']:.4f} {first['predicted']:.4f}" in results
    assert f"simple: {m['baselines']['simple']['model']}" in results
    # the key figure is the residual plot, so no section waits for `dlw test`
    assert "dlw test" not in result.missing
    # strengths / recommendation speak in the metric's direction
    v = project.ledger.latest("test").outputs
    assert v["verdict"] == ("PASS" if v["value"] <= 70 else "FAIL")
    strengths = _words(_section(text, "strengths"))
    if v["verdict"] == "PASS":
        assert f"test rmse {v['value']:.4f} <= 70.0" in strengths
        assert ">= 70" not in text


def test_regression_model_card_says_what_the_model_outputs(diabetes):
    project, result, _ = diabetes
    card = result.model_card.read_text(encoding="utf-8")
    scaling = read_json(_model_json(project))["target"]  # the train split's scaling
    assert set(scaling) >= {"mean", "std"}
    assert "- Outputs (tabular-regression): one number per sample, in the target's units" in card
    assert f"mean {scaling['mean']:.6g} and standard deviation {scaling['std']:.6g}" in card
    assert "the criterion rmse <= 70" in card and "rmse <= 70 on the sealed test set" in card
    assert "- Classes:" not in card and "Value ranges:" in card
    assert "- Residuals (predicted - true): mean" in card
    # the range the model was trained on, from the explore record (diabetes: 25 to 346)
    assert "targets outside the range it was trained on (25 to 346)" in card
    for name in ("rmse", "mae", "r2", "mape"):
        assert f"- {name}" in card


def _model_json(project) -> Path:
    from dlworkflow.store.trained import read_trained_pointer

    pointer = read_trained_pointer(project)
    folder = (
        project.root / pointer["folder_in_project"]
        if pointer.get("folder_in_project")
        else Path(pointer["folder"])
    )
    return folder / "model.json"


def test_regression_audit_marks_classification_checks_not_applicable(diabetes):
    project, result, scored = diabetes
    by_id = {t.test.id: t for t in scored.tests}
    assert len(by_id) == 28 and (project.paths.reports / "audit.json").is_file()
    schema = by_id["feature_schema"]  # a regression schema has the target's range, no classes
    assert schema.points == 1 and "target in [" in schema.evidence
    assert "classes" not in schema.evidence.split(";")[0]
    debug = by_id["model_debuggable"]
    assert debug.points == 0.5
    assert (
        "calibration and confusion matrix: not applicable to tabular-regression" in debug.evidence
    )
    assert "largest residuals" in debug.evidence
    simpler = by_id["simpler_model_not_better"].evidence
    assert _metrics(project)["baselines"]["simple"]["model"] in simpler
    assert "logistic" not in simpler
    # the report's audit section is the same audit, not an error
    assert result.audit_note is None


def test_regression_failed_criterion_is_worded_in_the_metrics_direction(diabetes, tmp_path):
    project, _, _ = diabetes
    copy_root = tmp_path / "strict"
    shutil.copytree(project.root, copy_root)
    from dlworkflow.project import Project

    strict = Project(copy_root)
    strict.define(metric="rmse", target=20.0)  # diabetes' RMSE is about 45-60: fails
    strict.test()
    v = strict.ledger.latest("test").outputs
    assert v["verdict"] == "FAIL" and v["value"] > 20
    result = report(strict, pdf=False)
    text = _words(result.html.read_text(encoding="utf-8"))
    assert f"misses the agreed criterion (rmse {v['value']:.4f} > 20.0)" in result.recommendation
    assert "rmse <= 20 on the sealed test set" in text
    assert f"Fails the agreed criterion: rmse {v['value']:.4f} against target 20.0" in text


def test_multilabel_report_shows_per_label_table_and_no_confusion(yeast):
    project, result, _ = yeast
    m = _metrics(project)
    text = result.html.read_text(encoding="utf-8")
    assert "macro_f1 >= 0.3 on the sealed test set" in _words(_section(text, "summary"))
    results = _words(_section(text, "results"))
    # no confusion matrix: not the key figure, nothing in the results (the audit may say why)
    assert "Confusion matrix" not in text and "confusion" not in results.lower()
    for name, item in m["metrics"].items():
        label = name + (" (lower is better)" if name == "hamming_loss" else "")
        assert f"{label}" in results and f"{item['value']:.4f}" in results, name
    assert "macro_f1 (agreed)" in results and ">= 0.3" in results
    assert "Calibration: not applicable to tabular-multilabel" in results
    for row in m["per_label"]:  # one row per label, with its tuned threshold
        f1 = "n/a" if row["f1"] is None else f"{row['f1']:.3f}"
        assert (
            f"{row['label']} {row['support']} {row['predicted']}" in results
            and f"{f1} {row['threshold']:.2f}" in results
        ), row["label"]
    assert data_uri(project.root / m["figures"]["per_label"]) in text
    worst = m["most_wrong"][0]
    assert f"{worst['sample_id']} {worst['true']} {worst['predicted']}" in results
    strengths = _words(_section(text, "strengths"))
    assert "Weakest labels:" in strengths and "Weakest classes" not in strengths


def test_multilabel_model_card_lists_labels_and_thresholds(yeast):
    project, result, _ = yeast
    card = result.model_card.read_text(encoding="utf-8")
    meta = read_json(_model_json(project))
    names, thresholds = meta["classes"], meta["target"]["thresholds"]
    assert len(names) == len(thresholds) == 14
    tuned = ", ".join(f"{n} {t:g}" for n, t in zip(names, thresholds))
    assert (
        f"a label is predicted where its probability reaches its threshold, tuned on "
        f"validation: {tuned}" in card
    )
    assert "- Outputs (tabular-multilabel): a set of labels out of 14" in card
    assert "the criterion macro_f1 >= 0.3" in card and "- Labels: " in card
    assert "- Weakest labels: " in card and "hamming_loss (lower is better)" in card


def test_multilabel_audit_runs_and_marks_inapplicable_checks(yeast):
    project, result, scored = yeast
    by_id = {t.test.id: t for t in scored.tests}
    assert len(by_id) == 28
    debug = by_id["model_debuggable"].evidence
    assert "calibration and confusion matrix: not applicable to tabular-multilabel" in debug
    assert "per-label precision/recall/F1 of 14 labels" in debug
    assert "not applicable" not in by_id["feature_schema"].evidence  # data.classes applies
    assert result.audit_note is None and 0 <= scored.final <= 7
