"""Every page of `dlw ui` in a real browser (the system Chromium through Playwright, one launch
for the session: browserkit.py) against a live server on the UI test projects: each page loads
after the login URL, shows what the project's records hold, loads all its images, and logs no
console error, page error or Content-Security-Policy violation. A click on a confusion-matrix
cell opens its samples; promote and rollback go click, confirmation page, submit, and move the
project's champion; without the token a browser and a plain HTTP request both get 401.

A new page is one line in PAGES: its address, the project fixture it is shown on (from
tests/ui/conftest.py) and what it must show, computed from that project's records."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from browserkit import broken_images, login, visible_text

from dlworkflow.project import Project
from dlworkflow.runtime import versions as V
from dlworkflow.ui.overview import shown


def _overview(root: Path) -> list[str]:
    project = Project.load(root)
    train = project.ledger.latest("train").summary
    return [
        project.config.name,
        *(step.title for step in project.status().steps),
        f"{train['val_accuracy']:.4g}",
    ]


def _runs(root: Path) -> list[str]:
    train = Project.load(root).ledger.latest("train")
    return [train.summary["mlflow_run_id"], f"{train.summary['model']}-run{train.id}"]


def _metrics(root: Path, split: str) -> dict:
    return json.loads((root / "reports" / "evaluate" / split / "metrics.json").read_text())


def _evaluation(root: Path) -> list[str]:
    m = _metrics(root, "val")
    primary = m["metrics"][m["primary_metric"]]["value"]
    return [f"{m['n']} samples", f"{m['primary_metric']} (primary)", shown(primary)]


def _largest_cell(root: Path) -> tuple[int, int, int]:
    confusion = _metrics(root, "val")["confusion"]
    return max(
        ((i, j, n) for i, row in enumerate(confusion) for j, n in enumerate(row)),
        key=lambda c: c[2],
    )


def _cell_path(root: Path) -> str:
    i, j, _ = _largest_cell(root)
    return f"/evaluation/val/cell?true={i}&predicted={j}"


def _cell(root: Path) -> list[str]:
    i, j, n = _largest_cell(root)
    classes = _metrics(root, "val")["classes"]
    return [f"True {classes[i]}, predicted {classes[j]}", f"{n} sample(s) in this cell"]


def _test_verdict(root: Path) -> list[str]:
    test = Project.load(root).ledger.latest("test")
    return [test.summary["headline"], "read 2 times"]


def _versions(root: Path) -> list[str]:
    reason = V.read_metadata(root, 2)["forced"]["reason"]
    return ["Champion: none yet", "v2", "v1", reason]


def _confirm(root: Path) -> list[str]:
    return ["Confirm: promote v1", "v1 becomes the champion", "Current champion: none"]


def _monitor(root: Path) -> list[str]:
    record = Project.load(root).ledger.latest("monitor")
    return ["ALERT", *record.outputs["alerts"]]


def _labels(root: Path) -> list[str]:
    issues = root / "reports" / "explore" / "records" / "label_issues.csv"
    lines = issues.read_text().splitlines() if issues.is_file() else []
    if len(lines) > 1:
        return ["Label review", "candidate(s) unreviewed"]
    return ["Label review", "label-issue candidates"]


def _explanations(root: Path) -> list[str]:
    return ["Explanations", "Nothing explained on this split yet", "dlw explain"]


def _eda_report(root: Path) -> list[str]:
    n = Project.load(root).ledger.latest("explore").summary["n_samples"]
    return [f"{n:,}"]


def _data(root: Path) -> list[str]:
    n = Project.load(root).ledger.latest("explore").summary["n_samples"]
    return ["What explore and ingest recorded", f"{n:,}"]


def _map(root: Path) -> list[str]:
    rows = (root / "reports" / "explore" / "records" / "map.csv").read_text().splitlines()
    return ["2-D map", rows[1].split(",")[0]]  # a mapped sample's id (its point's title)


def _first_class(root: Path) -> str:
    from dlworkflow.store import read_manifest

    label = sorted(read_manifest(Project.load(root))["label"].astype(str))[0]
    return f"/data/samples?class={label}"


def _samples(root: Path) -> list[str]:
    return [f"Samples of class {_first_class(root).rsplit('=', 1)[1]}"]


def _duplicates(root: Path) -> list[str]:
    return ["Duplicate pairs"]


def _quarantine(root: Path) -> list[str]:
    return ["Quarantine"]


def _train_runs(root: Path) -> list[str]:
    runs = Project.load(root).ledger.history("train")
    return [r.summary["mlflow_run_id"] for r in runs[-2:]]


def _compare_path(root: Path) -> str:
    return "/runs/compare?" + "&".join(f"run={r}" for r in _train_runs(root))


def _compare(root: Path) -> list[str]:
    return ["Compare runs", "Validation metrics", "Curves", *_train_runs(root)]


def _study(root: Path) -> list[str]:
    return ["Tune study", "Best trial", "Optimisation history"]


def _health(root: Path) -> list[str]:
    return ['"status":"ok"']


@dataclass(frozen=True)
class Page:
    path: str | Callable[[Path], str]  # the address, or how to make it from the project
    root: str  # the project fixture (tests/ui/conftest.py) it is shown on
    shows: Callable[[Path], list[str]]  # texts the page must show, from the project's records


PAGES = (
    Page("/", "ui_root", _overview),
    Page("/runs", "ui_root", _runs),
    Page("/data", "ui_root", _data),
    Page(_first_class, "ui_root", _samples),
    Page("/data/map", "ui_root", _map),
    Page("/data/duplicates", "planted_root", _duplicates),
    Page("/data/quarantine", "ui_root", _quarantine),
    Page("/labels", "ui_root", _labels),
    Page("/labels", "planted_root", _labels),
    Page(_compare_path, "compared_root", _compare),
    Page("/runs/study", "compared_root", _study),
    Page("/evaluation", "ui_root", _evaluation),
    Page(_cell_path, "ui_root", _cell),
    Page("/evaluation?split=test", "tested_root", _test_verdict),
    Page("/explanations", "ui_root", _explanations),
    Page("/deployment", "versions_root", _versions),
    Page("/deployment/confirm?action=promote&version=1", "versions_root", _confirm),
    Page("/monitor", "monitored_root", _monitor),
    Page("/reports/eda.html", "ui_root", _eda_report),
    Page("/health", "ui_root", _health),
)


def _page_id(page: Page) -> str:
    return page.path if isinstance(page.path, str) else page.path.__name__.strip("_")


@pytest.mark.parametrize("spec", PAGES, ids=_page_id)
def test_every_page_loads_and_shows_the_projects_records(spec, request, live_ui, ui_page):
    root = request.getfixturevalue(spec.root)
    live = live_ui(root)
    login(ui_page, live)
    path = spec.path if isinstance(spec.path, str) else spec.path(root)
    response = ui_page.goto(live.url(path))
    assert response is not None and response.status == 200, (path, response and response.status)
    shown_text = visible_text(ui_page)
    for expected in spec.shows(root):
        assert " ".join(expected.split()) in shown_text, (path, expected, shown_text[:3000])
    assert broken_images(ui_page) == []
    assert ui_page.watch.unexpected() == []  # console errors and CSP violations


def test_clicking_a_confusion_cell_opens_its_samples(live_ui, ui_page, ui_root):
    i, j, n = _largest_cell(ui_root)
    live = live_ui(ui_root)
    login(ui_page, live)
    ui_page.goto(live.url("/evaluation"))
    ui_page.click(f'td.cell[data-true="{i}"][data-predicted="{j}"] a')
    ui_page.wait_for_url(f"**/evaluation/val/cell?true={i}&predicted={j}")
    assert f"{n} sample(s) in this cell" in visible_text(ui_page)
    from dlworkflow.ui.cells import PAGE_SIZE

    samples = ui_page.locator("tr.sample")
    assert samples.count() == min(n, PAGE_SIZE)
    assert broken_images(ui_page) == []  # every thumbnail loaded
    ui_page.click("text=Back to the evaluation")
    ui_page.wait_for_url("**/evaluation?split=val")


def _confirm_in_browser(page, button: str, expected: str) -> None:
    page.click(f"button:has-text('{button}')")
    page.wait_for_url("**/deployment/confirm?**")
    assert expected in visible_text(page)
    page.click("form[method=post] button[type=submit]")
    page.wait_for_url("**/deployment/*")


def test_promote_and_rollback_from_the_browser(live_ui, ui_page, deploy_root):
    live = live_ui(deploy_root)
    login(ui_page, live)
    ui_page.goto(live.url("/deployment"))
    assert V.champion(deploy_root) is None
    ui_page.locator("tr#v1").locator("button:has-text('Promote')").click()
    ui_page.wait_for_url("**/deployment/confirm?**")
    assert V.champion(deploy_root) is None  # the confirmation page changes nothing
    ui_page.click("form[method=post] button[type=submit]")
    ui_page.wait_for_url("**/deployment/promote")
    assert "champion is now v1" in visible_text(ui_page)
    assert Project(deploy_root).versions().champion == 1

    ui_page.locator("tr#v2").locator("button:has-text('Promote')").click()
    ui_page.wait_for_url("**/deployment/confirm?**")
    assert "v2 becomes the champion in place of v1" in visible_text(ui_page)
    ui_page.click("form[method=post] button[type=submit]")
    ui_page.wait_for_url("**/deployment/promote")
    assert Project(deploy_root).versions().champion == 2

    _confirm_in_browser(
        ui_page,
        "Roll back to the previous champion",
        "The previous champion, v1, becomes the champion again",
    )
    assert "rollback: champion is now v1" in visible_text(ui_page)
    assert Project(deploy_root).versions().champion == 1
    ledger = Project(deploy_root).ledger
    assert [r.outputs["to_version"] for r in ledger.history("promote")] == [1, 2]
    assert [r.outputs["to_version"] for r in ledger.history("rollback")] == [1]


def test_without_the_token_a_browser_and_a_plain_request_get_401(live_ui, browser, ui_root):
    live = live_ui(ui_root)
    context = browser.new_context()  # a fresh browser: no cookie
    try:
        page = context.new_page()
        response = page.goto(live.url("/"))
        assert response is not None and response.status == 401
        assert "A token is needed" in visible_text(page)
        wrong = page.goto(live.url("/?token=" + "x" * 40))
        assert wrong is not None and wrong.status == 401
        assert context.cookies() == []
    finally:
        context.close()
    for path in ("/", "/deployment", "/reports/eda.html"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(live.url(path), timeout=10)
        assert refused.value.code == 401
    with urllib.request.urlopen(live.url("/health"), timeout=10) as health:
        assert json.loads(health.read()) == {"status": "ok"}


def test_the_watch_catches_a_csp_violation(live_ui, ui_page, ui_root):
    """The guard the page tests rely on: a report with an inline script (the UI's policy has
    script-src 'none') is reported as a CSP violation, and the test would fail on it."""
    page = ui_root / "reports" / "browser-watch-check.html"
    page.write_text("<!doctype html><title>x</title><p>check</p><script>console.log(1)</script>")
    try:
        live = live_ui(ui_root)
        login(ui_page, live)
        ui_page.goto(live.url("/reports/browser-watch-check.html"))
        assert "check" in visible_text(ui_page)
        assert ui_page.watch.csp_violations(), ui_page.watch.errors
        assert ui_page.watch.unexpected()  # what would fail any other test
        ui_page.watch.allow("Content Security Policy")
    finally:
        page.unlink()


def test_a_test_after_the_browser_tests_can_run_an_event_loop():
    """The browser is closed once the next test does not use it: Playwright's sync API holds
    an event loop on the main thread, and asyncio.run() in a later test would fail."""
    import asyncio

    from browserkit import CHROMIUM_SESSION

    async def answer() -> int:
        return 42

    assert CHROMIUM_SESSION.browser is None
    assert asyncio.run(answer()) == 42
