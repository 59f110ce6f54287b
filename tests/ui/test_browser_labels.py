"""The label-review round trip in a real browser (issue 19): on a copy of planted_root (real
digits with real 0s filed as 1s, explored), the Labels page relabels two candidates and
excludes one by clicking; then `dlw ingest` applies them: a new dataset version, the new labels
in the manifest (the source's in label_given), the excluded sample in the quarantine with its
reason, and the original image files byte for byte as they were."""

from __future__ import annotations

from pathlib import Path

from browserkit import broken_images, login, visible_text
from typer.testing import CliRunner

from conftest import copy_project
from dlworkflow.cli import app
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine
from label_review_data import PLANTED_PREFIX


def _decide(page, sample_id: str, decision: str, label: str | None = None) -> None:
    form = page.locator(f'form[id="review-{sample_id}"]')
    if label is not None:
        form.locator("select[name=label]").select_option(label)
    form.locator(f"button[name=decision][value={decision}]").click()
    page.wait_for_load_state()
    row = page.locator(f'tr[id="candidate-{sample_id}"]')
    assert row.get_attribute("data-decision") == decision


def test_relabel_two_and_exclude_one_in_the_browser_then_ingest(
    live_ui, ui_page, planted_root: Path, tmp_path: Path, snapshot
):
    root = copy_project(planted_root, tmp_path / "proj")
    project = Project.load(root)
    source = Path(project.config.data.source)
    originals = snapshot(source)
    version = project.ledger.latest("ingest").outputs["hash"]
    before = read_manifest(project).set_index("sample_id")
    listed = project.label_candidates().candidates
    planted = [c.sample_id for c in listed if c.sample_id.startswith(PLANTED_PREFIX)]
    other = next(c.sample_id for c in listed if not c.sample_id.startswith(PLANTED_PREFIX))
    assert len(planted) >= 2

    live = live_ui(root)
    login(ui_page, live)
    ui_page.goto(live.url("/labels"))
    assert f"{len(listed)} of {len(listed)} candidate(s) unreviewed" in visible_text(ui_page)
    assert broken_images(ui_page) == []  # every candidate's thumbnail
    a, b = planted[:2]
    _decide(ui_page, a, "relabel", "0")
    _decide(ui_page, b, "relabel", "0")
    _decide(ui_page, other, "exclude")
    assert f"{len(listed) - 3} of {len(listed)} candidate(s) unreviewed" in visible_text(ui_page)
    assert ui_page.watch.unexpected() == []
    runs = Project.load(root).ledger.history("label_review")
    assert [(r.summary["sample"], r.summary["decision"]) for r in runs] == [
        (a, "relabel"),
        (b, "relabel"),
        (other, "exclude"),
    ]
    ui_page.goto(live.url("/"))
    said = ui_page.inner_text("#label-review")
    assert "3 decision(s) wait for the next dlw ingest" in " ".join(said.split())

    out = CliRunner().invoke(app, ["ingest", "-p", str(root)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    project = Project.load(root)
    assert project.ledger.latest("ingest").outputs["hash"] != version
    after = read_manifest(project).set_index("sample_id")
    assert (after.loc[a, "label"], after.loc[a, "label_given"]) == ("0", before.loc[a, "label"])
    assert (after.loc[b, "label"], after.loc[b, "label_given"]) == ("0", before.loc[b, "label"])
    assert other not in after.index
    quarantined = read_quarantine(project).set_index("sample_id")
    assert quarantined.loc[other, "reason"].startswith("excluded in label review ")
    assert snapshot(source) == originals  # the originals: same bytes, untouched

    ui_page.goto(live.url("/"))  # the overview: nothing waits for an ingest any more
    assert "wait for the next" not in ui_page.inner_text("#label-review")
