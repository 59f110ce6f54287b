"""The monitor page's data: every `dlw monitor` run the ledger holds (its outputs: status,
model version, live predictions, each drift check's statistic, p-value and alert, the live
metric against the test estimate), newest first, and the last run's report
(reports/monitor.html, linked through the reports route)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.ui.overview import _in_this_project, inside, shown

if TYPE_CHECKING:
    from dlworkflow.project import Project

MAX_RUNS = 200


@dataclass
class MonitorRun:
    run_id: int
    ended: str | None
    status: str
    version: Any
    n: Any
    alerts: list[str]
    headline: str
    checks: list[dict[str, str]] = field(default_factory=list)
    online: list[tuple[str, str]] = field(default_factory=list)
    report: str | None = None


@dataclass
class MonitorView:
    runs: list[MonitorRun]
    check_names: list[str]  # the columns of the drift-over-time table
    failed: int  # monitor runs that did not finish (not shown as checks)


def monitor_view(project: Project) -> MonitorView:
    reports = project.paths.reports
    runs, failed = [], 0
    for record in reversed(project.ledger.history("monitor")):
        if record.status != "done":
            failed += 1
            continue
        out = record.outputs
        report = None
        if isinstance(out.get("report"), str):
            path = _in_this_project(Path(out["report"]), reports)
            relative = inside(reports, path)
            report = relative if relative is not None and path.is_file() else None
        runs.append(
            MonitorRun(
                run_id=record.id,
                ended=record.ended,
                status=str(out.get("status", "")),
                version=out.get("version"),
                n=out.get("n"),
                alerts=[str(a) for a in out.get("alerts") or []],
                headline=str(record.summary.get("headline", "")).removeprefix(
                    f"{out.get('status', '')}: "
                ),
                checks=[_check(c) for c in out.get("checks") or [] if isinstance(c, dict)],
                online=[
                    (str(k).replace("_", " "), shown(v))
                    for k, v in (out.get("online") or {}).items()
                    if not isinstance(v, (dict, list)) and v is not None
                ],
                report=report,
            )
        )
        if len(runs) == MAX_RUNS:
            break
    names: list[str] = []
    for run in runs:
        for c in run.checks:
            if c["name"] not in names:
                names.append(c["name"])
    return MonitorView(runs, names, failed)


def _check(check: dict[str, Any]) -> dict[str, str]:
    return {
        "name": str(check.get("name", "")),
        "group": str(check.get("group") or ""),
        "statistic": shown(check.get("statistic")),
        "p_value": shown(check.get("p_value")),
        "effect": shown(check.get("effect")),
        "threshold": shown(check.get("threshold")),
        "alert": "ALERT" if check.get("alert") else "",
    }


def by_name(run: MonitorRun) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in run.checks}
