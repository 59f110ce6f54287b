"""The privacy gate of `dlw train`: pii/phi data must be scanned, and remaining findings must be
removed (`dlw ingest --deidentify`) or accepted with a recorded reason."""

from __future__ import annotations

import pytest

from dlworkflow.project import Project
from dlworkflow.store import read_dataset_info
from dlworkflow.store.privacy import PrivacyError, check_privacy_gate, make_record, write_privacy
from dlworkflow.train import train

GPS = {
    "sample_id": "digit-0001",
    "where": "EXIF GPSInfo",
    "kind": "gps",
    "detail": "GPS position (4 tags)",
    "count": 4,
    "key": "GPSInfo",
    "match": "value",
    "action": "found",
}
OWNER = {
    **GPS,
    "where": "EXIF Artist",
    "kind": "owner",
    "detail": "J*** D***",
    "count": 1,
    "key": "Artist",
}


@pytest.fixture
def phi_project(digits_project: Project) -> Project:
    """The split digits project of conftest.py, its data declared patient data."""
    digits_project.update_config({"problem.data_sensitivity": "phi"})
    return digits_project


def record(
    project: Project, findings: list[dict], *, mode: str = "scan-only", version: str | None = None
) -> None:
    version = version or read_dataset_info(project).version
    write_privacy(
        project,
        make_record(findings, mode=mode, dataset_version=version, n_scanned=200, sensitivity="phi"),
        findings=findings,
    )


def test_unscanned_phi_data_is_refused(phi_project: Project):
    with pytest.raises(PrivacyError, match="has not been scanned") as err:
        train(phi_project, progress=False)
    assert "dlw ingest --deidentify" in err.value.fix and "mandatory" in err.value.fix
    assert phi_project.ledger.latest("train", status=None) is None  # refused before any work


def test_a_scan_of_another_dataset_version_does_not_count(phi_project: Project):
    record(phi_project, [], version="0" * 64)
    with pytest.raises(PrivacyError, match="has not been scanned") as err:
        check_privacy_gate(phi_project)
    assert "not of the current" in err.value.received


def test_remaining_findings_are_refused_with_counts_and_both_ways_out(phi_project: Project):
    record(phi_project, [GPS, OWNER])
    with pytest.raises(PrivacyError) as err:
        train(phi_project, progress=False)
    message = str(err.value)
    assert "4 gps, 1 owner in 1 sample(s)" in message
    assert "dlw ingest --deidentify" in message and "privacy.accept_findings_reason" in message
    assert err.value.context["remaining_by_kind"] == {"gps": 4, "owner": 1}


def test_deidentified_or_clean_data_passes(phi_project: Project):
    record(phi_project, [{**GPS, "action": "removed"}], mode="deidentified")
    assert check_privacy_gate(phi_project) is None
    record(phi_project, [])
    assert check_privacy_gate(phi_project) is None


def test_accepted_findings_train_and_the_reason_is_recorded(phi_project: Project):
    record(phi_project, [GPS, OWNER])
    reason = "GPS of public landmarks only; approved by the DPO, ticket 1234"
    phi_project.update_config(
        {
            "privacy.accept_findings_reason": reason,
            "privacy.accept_findings_version": read_dataset_info(phi_project).version,
        }
    )
    assert check_privacy_gate(phi_project) == reason
    train(phi_project, epochs=1, progress=False)
    assert phi_project.ledger.latest("train").summary["privacy_accepted"] == reason


def test_sensitivity_none_never_blocks(digits_project: Project):
    project = digits_project
    assert check_privacy_gate(project) is None  # no scan at all
    record(project, [GPS, OWNER])
    assert check_privacy_gate(project) is None  # findings, not accepted
    project.update_config({"problem.data_sensitivity": "pii"})
    with pytest.raises(PrivacyError, match="sensitivity is pii"):
        check_privacy_gate(project)
