"""The monitor page: what `dlw monitor` recorded in the ledger (a real run on inverted digits,
which alerts), and the command to run when nothing was monitored."""

from __future__ import annotations

import html
import re

from pagekit import logged_in, rows, text

from dlworkflow.project import Project


def test_the_page_shows_the_recorded_alerts_and_checks(client, monitored_root):
    record = Project.load(monitored_root).ledger.latest("monitor")
    assert record.outputs["status"] == "ALERT" and record.outputs["alerts"]
    page = logged_in(client, monitored_root).get("/monitor").text
    last = text(page.split('id="last"')[1].split("</p>")[0])
    assert f"ALERT , {record.summary['headline'].removeprefix('ALERT: ')}" in last
    alerts = re.findall(r'<li class="alert">(.*?)</li>', page)
    assert [html.unescape(a) for a in alerts] == record.outputs["alerts"]
    checks = rows(page, "check")
    assert len(checks) == len(record.outputs["checks"])
    for row, check in zip(checks, record.outputs["checks"], strict=True):
        cells = [text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        assert cells[0] == check["name"] and cells[1] == (check["group"] or "")
        assert cells[3] == ("" if check["p_value"] is None else f"{check['p_value']:.4g}")
        assert (cells[6] == "ALERT") == bool(check["alert"])
        assert ('class="check alerted"' in row) == bool(check["alert"])
    history = [text(r) for r in rows(page, "monitor-run")]
    assert len(history) == 1 and history[0].split()[0] == str(record.id)
    assert 'href="/reports/monitor.html"' in page


def test_without_a_monitor_run_the_page_says_which_command_to_run(client, ui_root):
    page = logged_in(client).get("/monitor").text
    assert 'id="not-monitored"' in page and "dlw monitor" in text(page)


def test_the_pages_are_in_the_navigation_and_linked_from_the_overview_steps(client, ui_root):
    page = logged_in(client).get("/").text
    nav = page.split("<nav>")[1].split("</nav>")[0]
    for href in ("/evaluation", "/deployment", "/monitor"):
        assert f'href="{href}"' in nav
    step7 = page.split('id="step-7"')[1].split("</tr>")[0]
    step9 = page.split('id="step-9"')[1].split("</tr>")[0]
    assert 'href="/evaluation"' in step7 and 'href="/deployment"' in step7
    assert 'href="/monitor"' in step9
