"""The privacy record of step 2 (`.dlw/privacy.json` + `.dlw/privacy_findings.parquet`), the
project's pseudonym key, and the gate that keeps unscanned or identifying data out of training.

The record (written by ingest, read by train, status and the report):
    format              1
    scanned             true once the data was scanned
    mode                "scan-only" (findings reported, originals used) or "deidentified"
                        (samples with findings replaced by scrubbed copies)
    dataset_version     the manifest version the scan belongs to
    sensitivity         problem.data_sensitivity at the time of the scan
    n_scanned           samples (files, or table columns) scanned
    n_samples_with_findings, n_columns_with_findings (table findings have no sample id)
    n_findings          sum of the findings' counts; by_kind / by_where: the same, broken down
    remaining           count of findings still in the data used downstream (not resolved by a
                        scrub); remaining_by_kind: broken down; by_action: what scrubbing did
    findings            the first MAX_LISTED findings (masked details only); findings_left_out
    findings_table      the Parquet file with every finding, or null
    scrubbed_to         the folder of the scrubbed copies, or null
    at                  when it was written (UTC)
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_path, atomic_write_json, atomic_write_with, read_json

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace

RECORD_FILE = "privacy.json"
FINDINGS_FILE = "privacy_findings.parquet"
KEY_FILE = "privacy.key"
MAX_LISTED = 200
RESOLVED = frozenset({"removed", "emptied", "replaced", "masked", "dropped", "pseudonymised"})
FINDING_COLUMNS = ("sample_id", "where", "kind", "detail", "count", "key", "match", "action")


class PrivacyError(DlwError):
    """Data marked pii/phi is not scanned, or identifying findings remain unaccepted."""


def make_record(
    findings: Iterable[Mapping[str, Any]],
    *,
    mode: str,
    dataset_version: str,
    n_scanned: int,
    sensitivity: str,
    scrubbed_to: str | None = None,
    findings_table: str | None = None,
) -> dict[str, Any]:
    """The record for a list of findings (dicts with the keys of FINDING_COLUMNS)."""
    if mode not in ("scan-only", "deidentified"):
        raise ValueError(f"mode must be 'scan-only' or 'deidentified', not {mode!r}")
    items = [dict(f) for f in findings]
    kinds: Counter[str] = Counter()
    wheres: Counter[str] = Counter()
    remaining: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for f in items:
        count = int(f.get("count", 1))
        kinds[f["kind"]] += count
        wheres[f["where"]] += count
        action = f.get("action", "found")
        if action in RESOLVED:
            actions[action] += count
        else:
            remaining[f["kind"]] += count
    return {
        "format": 1,
        "scanned": True,
        "mode": mode,
        "dataset_version": dataset_version,
        "sensitivity": sensitivity,
        "n_scanned": int(n_scanned),
        "n_samples_with_findings": len({f["sample_id"] for f in items if f.get("sample_id")}),
        "n_columns_with_findings": len({f["where"] for f in items if not f.get("sample_id")}),
        "n_findings": sum(kinds.values()),
        "by_kind": dict(kinds.most_common()),
        "by_where": dict(wheres.most_common()),
        "remaining": sum(remaining.values()),
        "remaining_by_kind": dict(remaining.most_common()),
        "by_action": dict(actions),
        "findings": items[:MAX_LISTED],
        "findings_left_out": max(0, len(items) - MAX_LISTED),
        "findings_table": findings_table,
        "scrubbed_to": scrubbed_to,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_privacy(
    project: Workspace,
    record: dict[str, Any],
    *,
    findings: Iterable[Mapping[str, Any]] | None = None,
) -> None:
    """Write the record atomically; with `findings`, every one of them to the Parquet table."""
    import pandas as pd

    if findings is not None:
        table = pd.DataFrame([dict(f) for f in findings], columns=list(FINDING_COLUMNS))
        atomic_write_with(
            project.paths.state / FINDINGS_FILE,
            lambda p: table.astype({"count": "int64"}).to_parquet(p, index=False),
        )
        record = {**record, "findings_table": FINDINGS_FILE}
    atomic_write_json(project.paths.state / RECORD_FILE, record)


def read_privacy(project: Workspace) -> dict[str, Any] | None:
    path = project.paths.state / RECORD_FILE
    return read_json(path) if path.is_file() else None


def read_privacy_findings(project: Workspace) -> pd.DataFrame | None:
    import pandas as pd

    path = project.paths.state / FINDINGS_FILE
    return pd.read_parquet(path) if path.is_file() else None


def privacy_key(project: Workspace) -> bytes:
    """The project's secret for pseudonyms and hashed UIDs (`.dlw/privacy.key`, created once,
    readable by the owner only; `.dlw/` is git-ignored). Same key, same pseudonyms."""
    path = project.paths.state / KEY_FILE
    if path.is_file():
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    key = secrets.token_bytes(32)
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_text(key.hex() + "\n", encoding="ascii")
    return key


def check_privacy_gate(project: Workspace) -> str | None:
    """Refuse training on pii/phi data that is unscanned, or whose findings remain unaccepted.

    Returns privacy.accept_findings_reason when findings remain and were accepted for this
    dataset version (privacy.accept_findings_version equals the current one: a new dataset
    version needs a new decision), the caller records it; else None. Sensitivity "none" never
    blocks.
    """
    from dlworkflow.store.manifest import read_dataset_info

    cfg = project.config
    sensitivity = cfg.problem.data_sensitivity
    if sensitivity == "none":
        return None
    version = read_dataset_info(project).version
    record = read_privacy(project)
    if not record or not record.get("scanned") or record.get("dataset_version") != version:
        raise _unscanned(sensitivity, version, record)
    if not record.get("remaining"):
        return None
    reason = (cfg.privacy.accept_findings_reason or "").strip()
    if not reason:
        raise _findings_remain(sensitivity, record)
    if (cfg.privacy.accept_findings_version or "").strip() == version:
        return reason
    raise _decision_not_for(sensitivity, record, version, cfg.privacy.accept_findings_version)


def _decision_not_for(
    sensitivity: str, record: dict[str, Any], version: str, given: str | None
) -> PrivacyError:
    """privacy.accept_findings_reason was given for another dataset version, or for none."""
    if given:
        what = (
            f"privacy.accept_findings_reason was given for dataset version {given[:12]}, not "
            f"the current {version[:12]}: a new dataset version needs a new decision."
        )
    else:
        what = (
            "privacy.accept_findings_reason is not tied to a dataset version "
            "(privacy.accept_findings_version is not set): a decision holds for the data it "
            "was made on."
        )
    return PrivacyError(
        f"data sensitivity is {sensitivity} and {record.get('remaining')} identifying "
        f"finding(s) remain in dataset version {version[:12]}; {what}",
        expected=f"privacy.accept_findings_version {version}",
        received=str(given or "none"),
        fix=f"review the findings (.dlw/{RECORD_FILE}); to accept them for this data set "
        f"privacy.accept_findings_version: {version} (and the reason) in dlworkflow.yaml, "
        "or run `dlw ingest --deidentify` to train on scrubbed copies",
        context={
            "sensitivity": sensitivity,
            "dataset_version": version,
            "accepted_version": given,
            "remaining_by_kind": record.get("remaining_by_kind") or {},
        },
    )


def _unscanned(sensitivity: str, version: str, record: dict[str, Any] | None) -> PrivacyError:
    received = (
        "no privacy record"
        if not record
        else f"a scan of dataset version {str(record.get('dataset_version'))[:12]}, "
        f"not of the current {version[:12]}"
    )
    return PrivacyError(
        f"data sensitivity is {sensitivity} and the data has not been scanned for "
        "identifying information.",
        expected=f"a privacy scan of dataset version {version[:12]} (mandatory for pii/phi)",
        received=received,
        fix="run `dlw ingest SOURCE` again (the scan is mandatory for pii/phi) or "
        "`dlw ingest --deidentify`",
        context={"sensitivity": sensitivity, "dataset_version": version},
    )


def _findings_remain(sensitivity: str, record: dict[str, Any]) -> PrivacyError:
    kinds = record.get("remaining_by_kind") or {}
    listed = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    places = [
        f"{n} {what}"
        for what, n in (
            ("sample(s)", record.get("n_samples_with_findings", 0)),
            ("column(s)", record.get("n_columns_with_findings", 0)),
        )
        if n
    ]
    return PrivacyError(
        f"data sensitivity is {sensitivity} and identifying information remains in the data "
        f"({record.get('mode')} ingest): {listed}"
        + (f" in {' and '.join(places)}" if places else "")
        + f" (details, masked, in .dlw/{RECORD_FILE}).",
        expected="no remaining findings, or a recorded reason to accept them",
        received=f"{record.get('remaining')} remaining finding(s)",
        fix="run `dlw ingest --deidentify` to train on scrubbed copies, or set "
        "privacy.accept_findings_reason in dlworkflow.yaml to why they are acceptable "
        "and privacy.accept_findings_version to the dataset version it is given for, "
        f"{record.get('dataset_version')} (the reason is recorded with every training run; "
        "a new dataset version needs a new decision)",
        context={"remaining_by_kind": kinds, "sensitivity": sensitivity},
    )
