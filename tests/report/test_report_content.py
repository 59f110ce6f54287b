"""`dlw report`: the content of reports/report.html and reports/model_card.md, from records."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project
from dlworkflow.report.model_card import SECTIONS
from opening import opening


def test_report_of_a_tested_project_is_self_contained(reported):
    project, result = reported
    html = result.html.read_text(encoding="utf-8")
    test = project.ledger.latest("test").outputs
    # first screen: problem, agreed criterion, verdict with its CI, key figure, recommendation
    first = html.split("<nav>")[0]
    assert "read handwritten digits on scanned forms" in first
    target = project.config.problem.target
    assert f"balanced_accuracy &gt;= {target} on the sealed test set" in first
    lo, hi = test["interval"]
    assert f"PASS: test balanced_accuracy {test['value']:.4f}" in first
    assert f"95% CI {lo:.4f} to {hi:.4f}" in first
    assert "data-verdict='PASS'" in first and "<img src='data:image/png;base64," in first
    simple_as_good = project.ledger.latest("test").summary["simple_as_good"]
    expected = (
        "Deploy the simpler model instead"
        if simple_as_good  # derived from baselines
        else "Deploy: the model meets the agreed criterion"
    )
    assert f"id='recommendation'>{expected}" in first and result.recommendation.startswith(expected)
    # the opening box: verdict, recommendation, main limitation
    tone, (said, recommended, limit) = opening(html)
    assert tone == "good" and said.startswith(f"PASS: test balanced_accuracy {test['value']:.4f}")
    assert recommended == result.recommendation
    assert limit.startswith(("Main limitation: ", "No limitation found"))
    # every image inlined; no resource fetched from anywhere
    images = re.findall(r"<img\b[^>]*\bsrc='([^']*)'", html)
    assert len(images) >= 5 and all(src.startswith("data:image/") for src in images)
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert not re.search(r"<(script|link|iframe)\b", html)
    assert "@media print" in html
    # sections from the records
    for heading in (
        "The data",
        "The approach",
        "The results",
        "Strengths and limitations",
        "Deployment",
        "Next steps",
        "Appendix: reproducibility",
    ):
        assert f">{heading}</h2>" in html
    ingest = project.ledger.latest("ingest")
    assert ingest.outputs["hash"] in html  # dataset version
    assert project.ledger.latest("split").outputs["seal"] in html
    assert "torch" in html and ingest.env["packages"]["torch"] in html
    assert "v1 (champion)" in html and "100.0%" in html  # parity agreement
    assert "label-issue candidates" in html.lower()
    assert "Weakest classes:" in html and "Drift risk" in html
    assert result.pdf is not None or "chromium" in (result.pdf_note or "")
    # the audit section renders dlworkflow.report.audit's result (not written to reports/audit.json)
    audit = html.split("id='audit'>")[1].split("</section>")[0]
    assert result.audit_note is None and "ML Test Score" in audit and "data-missing" not in audit
    assert "ML Test Score" in html.split("id='strengths'>")[1].split("</section>")[0]
    assert not (project.paths.reports / "audit.json").exists()
    assert result.missing == []


def test_report_of_an_untested_project_names_the_commands(untested: Project, monkeypatch):
    monkeypatch.setattr("dlworkflow.report.pdf.shutil.which", lambda name: None)
    out = CliRunner().invoke(app, ["report", "-p", str(untested.root)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "apt-get install chromium" in out.output  # a clear note, not a crash
    reports = untested.paths.reports
    assert (reports / "report.html").is_file() and (reports / "model_card.md").is_file()
    assert not (reports / "report.pdf").exists()
    html = (reports / "report.html").read_text(encoding="utf-8")
    assert "not tested yet: run <code>dlw test</code>" in html
    assert "data-verdict='NONE'" in html
    tone, points = opening(html)
    assert tone == "warn" and points[0].startswith("Not tested yet")
    assert points[1].startswith("No decision yet") and "dlw test" in points[1]
    assert "no model trained yet: run <code>dlw train</code>" in html
    assert "no model exported yet: run <code>dlw export</code>" in html
    assert "not split yet: run `dlw split`" in html
    assert ">60</td>" in html  # the data section is there: ingest ran (60 samples)
    card = (reports / "model_card.md").read_text(encoding="utf-8")
    assert "Not tested yet: run `dlw test`." in card


def test_model_card_has_the_nine_sections_filled(reported):
    project, result = reported
    card = result.model_card.read_text(encoding="utf-8")
    assert "more information needed" not in card.lower()
    bodies = re.split(r"^## ", card, flags=re.M)[1:]
    titles = [b.splitlines()[0] for b in bodies]
    assert titles == list(SECTIONS) and len(titles) == 9
    for body in bodies:
        lines = [line for line in body.splitlines()[1:] if line.startswith("- ")]
        assert lines, body
    test = project.ledger.latest("test").outputs
    assert f"balanced_accuracy {test['value']:.4f}" in card
    assert "read handwritten digits on scanned forms" in card
    assert "form processing team" in card
    assert "small_cnn" in card and "Source: " in card
    assert project.ledger.latest("ingest").outputs["hash"] in card
    # the test set's automatic slices are named; inclusion is said to be unmeasured
    sliced = [
        e["column"]
        for e in json.loads(
            (project.paths.reports / "evaluate" / "test" / "metrics.json").read_text()
        )["slices"]
    ]
    assert sliced and f"the slices {', '.join(sliced)} (chosen from the data" in card
    assert "no column is marked as concerning inclusion (data.sensitive_columns)" in card


def test_reuse_and_forced_export_change_the_recommendation(reported, tmp_path: Path):
    project, _ = reported
    copy = Project.load(shutil.copytree(project.root, tmp_path / "copy", symlinks=True))
    copy.update_config({"problem.target": 0.9999})
    assert copy.test().verdict.verdict == "FAIL"  # a second read of the sealed test set
    copy.export(force=True, reason="pilot for the forms team")
    result = copy.report(pdf=False)
    html = result.html.read_text(encoding="utf-8")
    assert "data-verdict='FAIL'" in html and "Do not deploy" in result.recommendation
    assert "test set was reused 1 time(s)" in result.recommendation
    assert "--force" in result.recommendation
    assert "reused 1 time(s) after its first read" in html
    assert "pilot for the forms team" in html
    card = result.model_card.read_text(encoding="utf-8")
    assert "Deployments overriding the test gate (--force): 1" in card
