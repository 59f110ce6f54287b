"""Step 9, `dlw monitor`: live predictions (the server's log, or --inputs run through the
champion) against the champion's validation reference; reports/monitor.html and
reports/monitor.json; exit code 0 (OK, or not enough data) or 4 (ALERT); the alert POSTed to
a webhook when one is configured.

Safe to run unattended: one run at a time (`.dlw/locks/monitor.lock`, BusyError exit 75 when
another holds it), nothing is changed but the report files (written atomically), the
reference cache and the ledger record of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_write_json, atomic_write_text, run_lock, sha256_json
from dlworkflow.results import StepResult

if TYPE_CHECKING:
    from dlworkflow.monitor.drift import Check, Drift
    from dlworkflow.monitor.logread import Sample
    from dlworkflow.runtime.bundle import Bundle
    from dlworkflow.workspace import Workspace

EXIT_OK = 0
EXIT_ALERT = 4
REPORT_FILE = "monitor.html"
JSON_FILE = "monitor.json"


class MonitorError(DlwError):
    """`dlw monitor` has nothing to work with (no champion, no log and no --inputs)."""


@dataclass
class MonitorResult(StepResult):
    status: str  # "OK" | "ALERT" | "NOT ENOUGH DATA"
    version: int
    source: str  # "prediction log (...)" or "--inputs PATH"
    n_live: int
    n_reference: int
    alpha: float
    m: int
    level: float
    checks: list[dict[str, Any]]
    report: Path | None
    json_path: Path | None
    window: tuple[str | None, str | None]
    skipped: int = 0  # malformed log lines, or --inputs items the model cannot take
    other_versions: dict[int, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    labelled: int | None = None
    non_finite: int = 0  # live predictions with NaN or infinite outputs (left out)
    online: dict[str, Any] | None = None  # live metric vs test estimate (with --labels)
    project_name: str = ""
    checks_objects: list[Check] = field(default_factory=list, repr=False)
    # the checks that are counts, not tests (outside the Bonferroni family of `checks`): non-
    # finite outputs and the champion's age; run on every monitor whatever the sample size
    counts: list[dict[str, Any]] = field(default_factory=list)
    counts_objects: list[Check] = field(default_factory=list, repr=False)
    pngs: list[tuple[str, bytes]] = field(default_factory=list, repr=False)

    @property
    def exit_code(self) -> int:
        return EXIT_ALERT if self.status == "ALERT" else EXIT_OK

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [c for c in [*self.checks, *self.counts] if c.get("alert")]

    @property
    def headline(self) -> str:
        if self.status == "ALERT":
            names = ", ".join(c["name"].removeprefix("column:") for c in self.alerts)
            total = len(self.checks) + len(self.counts)
            return f"{len(self.alerts)} of {total} checks alert ({names})"
        if self.status == "OK":
            return f"no drift in {self.n_live:,} live predictions ({self.m} checks)"
        return f"{self.n_live:,} live predictions: fewer than monitor.min_samples; nothing tested"

    def title(self) -> str:
        return f"Step 9: monitor model version {self.version}: {self.status}"

    def facts(self) -> list[tuple[str, Any]]:
        first, last = self.window
        rows = [
            ("model version", f"v{self.version} (champion)"),
            ("live data", self.source),
            ("live predictions", f"{self.n_live:,}"),
            ("time range", f"{first or '-'} .. {last or '-'}"),
            ("reference", f"{self.n_reference:,} validation predictions"),
        ]
        if self.m:
            rows.append(
                (
                    "false-alarm level",
                    f"alpha {self.alpha:g} over {self.m} checks (each at {self.level:.3g})",
                )
            )
        if self.labelled is not None:
            rows.append(("labelled", f"{self.labelled:,} live predictions with a label"))
        if self.online and self.online.get("tested"):
            from dlworkflow.evaluate.staleness import online_words

            rows.append(("live vs test", online_words(self.online)))
        if self.non_finite:
            rows.append(("non-finite", f"{self.non_finite:,} predictions with NaN/inf outputs"))
        if self.skipped:
            rows.append(("skipped", f"{self.skipped:,} unusable lines or inputs"))
        if self.webhook is not None:
            rows.append(("webhook", self.webhook.get("describe", "")))
        if self.other_versions:
            rows.append(
                (
                    "other versions",
                    ", ".join(f"v{v}: {n:,}" for v, n in sorted(self.other_versions.items()))
                    + " (not used)",
                )
            )
        return rows

    def rows(self) -> list[tuple[str, Any]]:
        rows = [("verdict", f"{self.status}: {self.headline}"), *self.facts()]
        rows += [
            (("ALERT " if c["alert"] else "") + c["name"], c["sentence"])
            for c in [*self.checks, *self.counts]
        ]
        rows += [("note", note) for note in self.notes]
        if self.report is not None:
            rows.append(("report", str(self.report)))
        return rows

    def record(self) -> dict[str, Any]:
        """reports/monitor.json."""
        return {
            "status": self.status,
            "headline": self.headline,
            "version": self.version,
            "source": self.source,
            "n_live": self.n_live,
            "n_reference": self.n_reference,
            "alpha": self.alpha,
            "m": self.m,
            "level": self.level,
            "window": list(self.window),
            "skipped": self.skipped,
            "other_versions": {str(k): v for k, v in self.other_versions.items()},
            "labelled": self.labelled,
            "non_finite": self.non_finite,
            "online": self.online,
            "checks": self.checks,
            "counts": self.counts,
            "notes": self.notes,
            "webhook": self.webhook,
            "exit_code": self.exit_code,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def to_json(self) -> dict[str, Any]:
        """`dlw monitor --json`: reports/monitor.json and where the reports were written."""
        return {**self.record(), "report": self.report, "json_file": self.json_path}

    def figures(self) -> list[tuple[str, str | Path]]:
        import base64

        return [
            (caption, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
            for caption, png in self.pngs
        ]


def monitor(
    project: Workspace,
    *,
    inputs: str | Path | None = None,
    labels: str | Path | None = None,
    since: str | datetime | None = None,
    window: int | None = None,
    webhook: str | None = None,
    write: bool = True,
) -> MonitorResult:
    """Compare live predictions with the champion's validation reference (see the module)."""
    from dlworkflow.monitor.logread import log_files, read_labels, since_seconds
    from dlworkflow.runtime import versions as V

    root = project.root
    cutoff = since_seconds(since)
    label_map = read_labels(labels) if labels is not None else None
    with run_lock(project.paths.state / "locks" / "monitor.lock", what="dlw monitor"):
        folder = V.champion_folder(root)
        if folder is None:
            raise MonitorError(
                "There is no champion model to monitor.",
                expected=f"{V.pointer_path(root)} naming an exported version",
                received=", ".join(f"v{m['version']}" for m in V.versions(root)) or "no exports",
                fix="run `dlw export` (a PASS model becomes the champion) or `dlw promote VERSION`",
            )
        if inputs is None and not log_files(root):
            raise MonitorError(
                "There is nothing to monitor: no prediction log and no --inputs.",
                expected=f"{root / '.dlw' / 'serve' / 'predictions.jsonl'} (written by "
                "`dlw serve`) or --inputs PATH",
                received="neither",
                fix="serve the model (serve.log_predictions: true) and let it take traffic, "
                "or pass --inputs with a folder or table of recent inputs",
            )
        version = folder.name.removeprefix("v")
        with project.step("monitor", inputs={"champion": version}) as run:
            result = _monitor(
                project,
                folder,
                inputs=inputs,
                labels=label_map,
                since=cutoff,
                window=window,
                webhook=webhook,
                write=write,
            )
            record = {
                "status": result.status,
                "version": result.version,
                "n": result.n_live,
                "alerts": [c["name"] for c in result.alerts],
                "checks": [
                    {
                        k: c.get(k)
                        for k in (
                            "name",
                            "group",
                            "statistic",
                            "p_value",
                            "effect",
                            "threshold",
                            "alert",
                        )
                    }
                    for c in [*result.checks, *result.counts]
                ],
                "online": result.online,
                "age": _age_record(result),
            }
            run.outputs = {
                "hash": sha256_json(record),
                **record,
                "report": str(result.report) if result.report else None,
            }
            run.summary = {
                "headline": f"{result.status}: {result.headline}",
                "alerts": len(result.alerts),
                "n": result.n_live,
            }
    return result


def _monitor(
    project: Workspace,
    folder: Path,
    *,
    inputs: str | Path | None,
    labels: dict[str, str] | None,
    since: float | None,
    window: int | None,
    webhook: str | None,
    write: bool,
) -> MonitorResult:
    from dlworkflow.monitor.drift import online_offline, run_checks
    from dlworkflow.monitor.logread import to_sample
    from dlworkflow.monitor.reference import load_reference
    from dlworkflow.runtime.bundle import load_bundle

    config = project.config.monitor
    bundle = load_bundle(folder)
    reference = load_reference(project, bundle)
    ref_sample = to_sample(reference.records)
    live, source, skipped, others, non_finite = _live(
        project, bundle, inputs=inputs, since=since, window=window or config.window
    )
    notes = _notes(reference, live, others, labels)
    result = MonitorResult(
        status="NOT ENOUGH DATA",
        version=bundle.version,
        source=source,
        n_live=len(live),
        n_reference=len(ref_sample),
        alpha=config.alpha,
        m=0,
        level=config.alpha,
        checks=[],
        report=None,
        json_path=None,
        window=_window(live),
        skipped=skipped,
        other_versions=others,
        notes=notes,
        non_finite=non_finite,
        project_name=project.config.name,
    )
    if len(live) >= config.min_samples:
        drift = run_checks(
            ref_sample,
            live,
            config=config,
            seed=int(project.config.seed),
            metadata=bundle.metadata,
            labels=labels,
            classes=bundle.classes,
        )
        _fill(result, drift)
        result.online = online_offline(
            drift.checks, bundle.metadata, metric_drop=config.metric_drop, task=bundle.task
        )
        if write:
            from dlworkflow.monitor.html import figures

            result.pngs = figures(
                ref_sample, live, drift, buckets=config.buckets, metadata=bundle.metadata
            )
    else:
        result.notes.insert(
            0,
            f"{len(live):,} live predictions of v{bundle.version}: fewer "
            f"than monitor.min_samples ({config.min_samples}); no test ran.",
        )
    _add_checks(result, bundle.metadata, config)
    if write:
        _write(project, result)
    url = webhook or config.webhook
    if url and result.status == "ALERT":
        _send(project, result, url)
        if write:
            _write(project, result)  # again, with the delivery's outcome
    return result


def _add_checks(result: MonitorResult, metadata: dict[str, Any], config: Any) -> None:
    """The checks that are counts, run on every monitor whatever the sample size: outputs
    that are NaN or infinite, and the champion's age against monitor.max_model_age_days."""
    from dlworkflow.monitor.drift import age_check, non_finite_check

    extra = [non_finite_check(result.non_finite, result.n_live + result.non_finite)]
    age = age_check(metadata, config.max_model_age_days)
    if age is not None:
        extra.append(age)
    result.counts_objects = extra
    result.counts = [c.as_dict() for c in extra]
    if any(c.alert for c in extra):
        result.status = "ALERT"


def _age_record(result: MonitorResult) -> dict[str, Any] | None:
    check = next((c for c in result.counts if c.get("name") == "model_age"), None)
    if check is None:
        return None
    details = check.get("details") or {}
    return {
        "version": result.version,
        "created": details.get("created"),
        "age_days": check.get("statistic"),
        "limit_days": check.get("threshold"),
        "alert": bool(check.get("alert")),
    }


def _live(
    project: Workspace,
    bundle: Bundle,
    *,
    inputs: str | Path | None,
    since: float | None,
    window: int | None,
) -> tuple[Sample, str, int, dict[int, int], int]:
    from dlworkflow.monitor.logread import file_age_note, parse_ts, read_inputs, read_log, to_sample

    if inputs is not None:
        read = read_inputs(project, bundle, inputs)
        records = read.records
        if since is not None:
            records = [r for r in records if parse_ts(r["ts"]) >= since]
        if window is not None:
            records = records[-window:]
        return to_sample(records), f"--inputs {inputs}", len(read.skipped), {}, read.non_finite
    log = read_log(project.root, version=bundle.version, since=since, window=window)
    return (
        to_sample(log.records),
        f"prediction log ({file_age_note(log.files)})",
        log.skipped,
        log.other_versions,
        log.non_finite,
    )


def _notes(
    reference: Any, live: Sample, others: dict[int, int], labels: dict[str, str] | None
) -> list[str]:
    notes = []
    if len(live) == 0 and others:
        notes.append(
            "The log has predictions of other model versions only ("
            + ", ".join(f"v{v}: {n:,}" for v, n in sorted(others.items()))
            + "); the monitor compares the champion's own predictions."
        )
    if reference.n_validation > len(reference.records) + reference.skipped:
        notes.append(
            f"Reference: a seeded sample of {len(reference.records):,} of the "
            f"{reference.n_validation:,} validation samples "
            "(monitor.reference_samples)."
        )
    if reference.skipped:
        notes.append(
            f"{reference.skipped:,} validation samples could not be read for the "
            "reference (moved or deleted files)."
        )
    if len(reference.records) < 200:
        notes.append(
            f"The reference has only {len(reference.records):,} predictions: the "
            "tests have little power; a larger validation split helps."
        )
    if labels is not None and not labels:
        notes.append("The labels file has no rows.")
    return notes


def _fill(result: MonitorResult, drift: Drift) -> None:
    result.checks_objects = drift.checks
    result.checks = [c.as_dict() for c in drift.checks]
    result.m, result.level = drift.m, drift.level
    result.notes.extend(drift.notes)
    if drift.labelled is not None:
        result.labelled = int(drift.labelled.get("n", 0))
        unknown = int(drift.labelled.get("unknown_labels", 0))
        if unknown:
            result.notes.append(
                f"{unknown:,} labels are not targets the model can be judged "
                "on (a class or label it does not know, or not a number) and "
                "were left out."
            )
    result.status = "ALERT" if drift.alerts else "OK"


def _window(live: Sample) -> tuple[str | None, str | None]:
    finite = live.ts[np.isfinite(live.ts)]
    if len(finite) == 0:
        return None, None
    return tuple(
        datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
        for t in (finite.min(), finite.max())
    )  # type: ignore[return-value]


def _write(project: Workspace, result: MonitorResult) -> None:
    from dlworkflow.monitor.html import render

    folder = project.paths.reports
    result.report = folder / REPORT_FILE
    result.json_path = folder / JSON_FILE
    atomic_write_text(result.report, render(result, result.pngs))
    atomic_write_json(result.json_path, result.record())


def _send(project: Workspace, result: MonitorResult, url: str) -> None:
    from dlworkflow.monitor.webhook import alert_payload, post_alert

    payload = alert_payload(
        project=result.project_name,
        version=result.version,
        status=result.status,
        headline=result.headline,
        checks=[*result.checks, *result.counts],
        report=str(result.report) if result.report else None,
        n_live=result.n_live,
        window=result.window,
        time=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    delivery = post_alert(url, payload, token_env=project.config.monitor.webhook_token_env)
    result.webhook = {**delivery.as_dict(), "describe": delivery.describe()}
    if not delivery.ok:
        result.notes.append(f"The alert webhook failed: {delivery.describe()}.")
