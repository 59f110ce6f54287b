"""The UI's pages on a real trained and exported project: the overview shows the steps and
figures that `dlw status` and the ledger hold, the runs page the MLflow store's runs, and the
reports route serves the reports folder and nothing outside it."""

from __future__ import annotations

import html
import os
import re
import shutil

import pytest
from pagekit import logged_in
from pagekit import text as _text

from dlworkflow.project import Project


def _rows(page: str, css: str) -> list[str]:
    return [_text(r) for r in re.findall(rf'<tr class="{css}".*?</tr>', page, flags=re.S)]


def test_the_overview_shows_the_nine_steps_as_status_has_them(client, ui_root):
    status = Project.load(ui_root).status()
    page = logged_in(client).get("/").text
    rows = _rows(page, "step")
    assert len(rows) == 9
    for row, step in zip(rows, status.steps, strict=True):
        assert row.startswith(f" {step.number} {step.title}")
        assert f" {step.state} " in row
        assert " ".join(step.detail.split()) in row
        assert " ".join(step.command.split()) in row
    assert status.next_command and html.escape(status.next_command) in page
    # this project: trained, exported and explored, never defined nor tested
    states = {s.ledger_step: s.state for s in status.steps}
    assert states["train"] == "done" and states["explore"] == "done"
    assert states["define"] == "not run" and states["test"] == "not run"


def test_the_overview_shows_each_steps_recorded_figures(client, ui_root):
    ledger = Project.load(ui_root).ledger
    train = ledger.latest("train").summary
    explore = ledger.latest("explore").summary
    rows = _rows(logged_in(client).get("/").text, "step")
    train_row, explore_row = rows[5], rows[2]
    assert f"val accuracy {train['val_accuracy']:.4g}" in train_row
    assert f"model {train['model']}" in train_row
    assert f"epochs run {train['epochs_run']}" in train_row
    assert train["mlflow_run_id"] not in train_row  # an id, not a figure
    assert f"n samples {explore['n_samples']:,}" in explore_row
    assert f"label issues {explore['label_issues']}" in explore_row


def test_the_overview_links_a_step_to_its_report_and_the_link_serves_it(client, ui_root):
    c = logged_in(client)
    page = c.get("/").text
    explore_row = re.findall(r'<tr class="step" id="step-3">.*?</tr>', page, flags=re.S)[0]
    assert 'href="/reports/eda.html"' in explore_row
    assert 'href="/reports/eda.html"' in page.split("<h2>Reports</h2>")[1]
    report = c.get("/reports/eda.html")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert report.content == (ui_root / "reports" / "eda.html").read_bytes()


def test_the_runs_page_lists_the_stores_train_runs_with_their_metrics(client, ui_root):
    train = Project.load(ui_root).ledger.latest("train")
    page = logged_in(client).get("/runs").text
    rows = _rows(page, "run")
    assert len(rows) == 2  # the train run and `dlw evaluate`'s run (newest first)
    assert " evaluate FINISHED " in rows[0]
    row = rows[1]
    assert train.summary["mlflow_run_id"] in row
    assert f"{train.summary['model']}-run{train.id}" in row
    assert " train FINISHED " in row
    header = _text(page.split("<tbody>")[0])
    assert "best_val_accuracy" in header and "val_loss" in header
    assert f"{train.summary['val_accuracy']:.4g}" in row
    assert 'rel="next"' not in page and 'rel="prev"' not in page


def test_the_runs_page_takes_tune_runs_newest_first_50_a_page(client, ui_root, tmp_path):
    """Real runs written to the project's store as tune writes them (tracked_run, the tune
    tags); a run of another step is not listed."""
    from dlworkflow.train import tracking
    from dlworkflow.train.tune.trial import TRIAL_TAG

    root = tmp_path / "proj"
    shutil.copytree(ui_root, root, ignore=shutil.ignore_patterns("mlartifacts"))
    project = Project.load(root)
    for i in range(52):
        tags = {"dlw.step": "tune", TRIAL_TAG: str(i)}
        with tracking.tracked_run(project, run_name=f"trial-{i}", tags=tags) as run:
            run.log_metrics({"val_accuracy": i / 100, "train_loss": 1.0}, step=1)
    with tracking.tracked_run(project, run_name="not-a-step-run", tags={"dlw.step": "x"}):
        pass
    c = logged_in(client, root)
    first = c.get("/runs").text
    rows = _rows(first, "run")
    assert len(rows) == 50
    assert "trial-51" in rows[0] and "trial-50" in rows[1]  # newest first
    assert all(" tune trial FINISHED " in r for r in rows)
    assert "0.51" in rows[0]
    assert "train_loss" not in first  # validation metrics only
    assert 'rel="next" href="/runs?page=2"' in first
    second = c.get("/runs", params={"page": 2}).text
    rows = _rows(second, "run")
    assert len(rows) == 4  # trial-1, trial-0, `dlw evaluate`'s run and the train run
    assert "trial-1" in rows[0] and "trial-0" in rows[1]
    assert " evaluate " in rows[2] and " train " in rows[3]
    assert "not-a-step-run" not in first + second
    assert 'rel="prev" href="/runs?page=1"' in second and 'rel="next"' not in second
    assert c.get("/runs", params={"page": 0}).status_code == 422


def test_a_project_without_a_store_has_no_runs_and_gets_no_store(client, tmp_path):
    root = tmp_path / "fresh"
    Project.init(root, task="image-classification")
    page = logged_in(client, root).get("/runs").text
    assert "No MLflow store yet" in page
    assert not (root / "mlruns.db").exists()
    overview = _rows(logged_in(client, root).get("/").text, "step")
    assert len(overview) == 9 and " not run " in overview[1]


@pytest.mark.parametrize(
    "path",
    [
        "/reports/%2e%2e/dlworkflow.yaml",
        "/reports/..%2fdlworkflow.yaml",
        "/reports/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/reports//etc/passwd",
        "/reports/outside.txt",  # a symbolic link out of the folder
        "/reports/",
        "/reports/missing.html",
    ],
)
def test_nothing_outside_the_reports_folder_is_served(client, ui_root, path):
    link = ui_root / "reports" / "outside.txt"
    if not link.is_symlink():
        os.symlink(ui_root / "dlworkflow.yaml", link)
    c = logged_in(client)
    response = c.get(path)
    assert response.status_code == 404
    assert "task:" not in response.text and "root:" not in response.text


def test_a_broken_config_is_shown_as_its_error(client, tmp_path):
    root = tmp_path / "proj"
    Project.init(root, task="image-classification")
    c = logged_in(client, root)
    config = root / "dlworkflow.yaml"
    config.write_text(config.read_text() + "\nno_such_key: 1\n")
    response = c.get("/")
    assert response.status_code == 500
    assert "no_such_key" in response.text


def test_step_seven_links_the_evaluation_on_validation(client, ui_root):
    page = logged_in(client).get("/").text
    row = re.findall(r'<tr class="step" id="step-7">.*?</tr>', page, flags=re.S)[0]
    assert 'href="/reports/evaluate/val/metrics.json"' in row
    response = logged_in(client).get("/reports/evaluate/val/metrics.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.json()["split"] == "val"


def test_report_links_take_the_files_a_record_names_inside_the_reports_folder(tmp_path):
    """The shapes the steps record: tune's summary.report, report's outputs.html/pdf/
    model_card (absolute or relative to the project), and a path out of the folder."""
    from dlworkflow.ledger import RunRecord
    from dlworkflow.ui.overview import report_links

    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("tune.html", "report.html", "model_card.md"):
        (reports / name).write_text("x")
    (tmp_path / "secret.html").write_text("x")

    def record(step: str, outputs: dict, summary: dict) -> RunRecord:
        return RunRecord(1, step, "done", "", "", "", {}, outputs, summary, {}, None, None)

    tune = record("tune", {"storage": "sqlite:///x.db"}, {"report": "reports/tune.html"})
    assert [link.path for link in report_links(tune, reports, "tune")] == ["tune.html"]
    report = record(
        "report",
        {
            "html": str(reports / "report.html"),
            "model_card": str(reports / "model_card.md"),
            "pdf": None,
        },
        {"headline": "report.html, model_card.md"},
    )
    assert [link.path for link in report_links(report, reports, "report")] == [
        "report.html",
        "model_card.md",
    ]
    outside = record("explore", {"report": str(tmp_path / "secret.html")}, {})
    assert report_links(outside, reports, "explore") == []
    escape = record("explore", {"report": "reports/../secret.html"}, {})
    assert report_links(escape, reports, "explore") == []
    elsewhere = record("explore", {"report": "/somewhere/reports/../../secret.html"}, {})
    assert report_links(elsewhere, reports, "explore") == []
    moved = record("explore", {"report": "/old/place/reports/tune.html"}, {})
    assert [link.path for link in report_links(moved, reports, "explore")] == ["tune.html"]


def test_a_moved_project_keeps_its_report_links(client, ui_root, tmp_path):
    """Records keep the absolute paths of where the project ran; a copy links its own."""
    root = tmp_path / "moved"
    shutil.copytree(ui_root, root, ignore=shutil.ignore_patterns("mlartifacts"))
    recorded = Project.load(root).ledger.latest("explore").outputs["report"]
    assert recorded.startswith(str(ui_root))  # the original's path
    page = logged_in(client, root).get("/").text
    row = re.findall(r'<tr class="step" id="step-3">.*?</tr>', page, flags=re.S)[0]
    assert 'href="/reports/eda.html"' in row
