"""DICOM de-identification: the Basic Application Level Confidentiality Profile.

The attribute table below follows DICOM PS3.15 Table E.1-1 ("Application Level Confidentiality
Profile Attributes", Basic Profile column). `code` is the standard's action code; where it
offers a choice (X/Z, Z/D, X/Z/D, X/D) `action` is the one applied here:
    X -> "remove"  (delete the attribute)
    Z -> "empty"   (zero-length value; PatientID becomes a keyed pseudonym when a key is given,
                    which Z allows: "a non-zero length value that may be a dummy value")
    D -> "dummy"   (a non-empty dummy value consistent with the VR)
    U -> "uid"     (a new UID derived deterministically from a hash of the old one)
Beyond the table: EVERY attribute with VR UI whose value is not a standard DICOM UID
(1.2.840.10008.*: SOP classes, transfer syntaxes) gets a hashed replacement (U), so references
between files stay consistent; private attributes are removed (X, no "Retain Safe Private"
option); PatientIdentityRemoved (0012,0062) = YES and DeidentificationMethod(+CodeSequence,
113100 "Basic Application Confidentiality Profile") are set. Pixel data is never changed: a
file with BurnedInAnnotation = YES is reported with a finding that remains after scrubbing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dlworkflow.data.deid.findings import (
    DeidentifyError,
    Finding,
    has_content,
    hashed_uid,
    mask,
    pseudonym,
)
from dlworkflow.fileio import atomic_path
from dlworkflow.store.dicom import DicomRefused, read_dicom
from dlworkflow.store.images import is_dicom as is_dicom  # re-exported (deid, scrub)

STANDARD_UID_ROOT = "1.2.840.10008."

# (tag, keyword, kind, PS3.15 Table E.1-1 basic profile code, action applied)
PROFILE: tuple[tuple[int, str, str, str, str], ...] = (
    (0x00100010, "PatientName", "patient-name", "Z", "empty"),
    (0x00100020, "PatientID", "patient-id", "Z", "empty"),
    (0x00100021, "IssuerOfPatientID", "patient-id", "X", "remove"),
    (0x00101000, "OtherPatientIDs", "patient-id", "X", "remove"),
    (0x00101002, "OtherPatientIDsSequence", "patient-id", "X", "remove"),
    (0x00101001, "OtherPatientNames", "patient-name", "X", "remove"),
    (0x00101005, "PatientBirthName", "patient-name", "X", "remove"),
    (0x00101060, "PatientMotherBirthName", "patient-name", "X", "remove"),
    (0x00100030, "PatientBirthDate", "birth-date", "Z", "empty"),
    (0x00100032, "PatientBirthTime", "birth-date", "X", "remove"),
    (0x00100040, "PatientSex", "patient-demographic", "Z", "empty"),
    (0x00101010, "PatientAge", "patient-demographic", "X", "remove"),
    (0x00101020, "PatientSize", "patient-demographic", "X", "remove"),
    (0x00101030, "PatientWeight", "patient-demographic", "X", "remove"),
    (0x00102160, "EthnicGroup", "patient-demographic", "X", "remove"),
    (0x00102180, "Occupation", "patient-demographic", "X", "remove"),
    (0x00101080, "MilitaryRank", "patient-demographic", "X", "remove"),
    (0x001021F0, "PatientReligiousPreference", "patient-demographic", "X", "remove"),
    (0x001021C0, "PregnancyStatus", "patient-demographic", "X", "remove"),
    (0x00102000, "MedicalAlerts", "free-text", "X", "remove"),
    (0x00102110, "Allergies", "free-text", "X", "remove"),
    (0x001021B0, "AdditionalPatientHistory", "free-text", "X", "remove"),
    (0x00104000, "PatientComments", "free-text", "X", "remove"),
    (0x00081080, "AdmittingDiagnosesDescription", "free-text", "X", "remove"),
    (0x00101040, "PatientAddress", "address", "X", "remove"),
    (0x00102150, "CountryOfResidence", "address", "X", "remove"),
    (0x00102152, "RegionOfResidence", "address", "X", "remove"),
    (0x00102154, "PatientTelephoneNumbers", "phone", "X", "remove"),
    (0x00100050, "PatientInsurancePlanCodeSequence", "patient-id", "X", "remove"),
    (0x00081120, "ReferencedPatientSequence", "patient-id", "X", "remove"),
    (0x00380010, "AdmissionID", "patient-id", "X", "remove"),
    (0x00380300, "CurrentPatientLocation", "address", "X", "remove"),
    (0x00080080, "InstitutionName", "institution", "X/Z/D", "remove"),
    (0x00080081, "InstitutionAddress", "institution", "X", "remove"),
    (0x00081040, "InstitutionalDepartmentName", "institution", "X", "remove"),
    (0x00080090, "ReferringPhysicianName", "person-name", "Z", "empty"),
    (0x00080092, "ReferringPhysicianAddress", "address", "X", "remove"),
    (0x00080094, "ReferringPhysicianTelephoneNumbers", "phone", "X", "remove"),
    (0x00081048, "PhysiciansOfRecord", "person-name", "X", "remove"),
    (0x00081050, "PerformingPhysicianName", "person-name", "X", "remove"),
    (0x00081060, "NameOfPhysiciansReadingStudy", "person-name", "X", "remove"),
    (0x00081070, "OperatorsName", "person-name", "X/Z/D", "remove"),
    (0x00321032, "RequestingPhysician", "person-name", "X", "remove"),
    (0x0040A123, "PersonName", "person-name", "D", "dummy"),
    (0x00080020, "StudyDate", "timestamp", "Z", "empty"),
    (0x00080030, "StudyTime", "timestamp", "Z", "empty"),
    (0x00080021, "SeriesDate", "timestamp", "X/D", "remove"),
    (0x00080031, "SeriesTime", "timestamp", "X/D", "remove"),
    (0x00080022, "AcquisitionDate", "timestamp", "X/Z", "remove"),
    (0x00080032, "AcquisitionTime", "timestamp", "X/Z", "remove"),
    (0x0008002A, "AcquisitionDateTime", "timestamp", "X/Z/D", "remove"),
    (0x00080023, "ContentDate", "timestamp", "Z/D", "empty"),
    (0x00080033, "ContentTime", "timestamp", "Z/D", "empty"),
    (0x00080012, "InstanceCreationDate", "timestamp", "X/D", "remove"),
    (0x00080013, "InstanceCreationTime", "timestamp", "X/Z/D", "remove"),
    (0x00080201, "TimezoneOffsetFromUTC", "timestamp", "X", "remove"),
    (0x00400244, "PerformedProcedureStepStartDate", "timestamp", "X", "remove"),
    (0x00400245, "PerformedProcedureStepStartTime", "timestamp", "X", "remove"),
    (0x00080050, "AccessionNumber", "study-id", "Z", "empty"),
    (0x00200010, "StudyID", "study-id", "Z", "empty"),
    (0x00401001, "RequestedProcedureID", "study-id", "X", "remove"),
    (0x00400009, "ScheduledProcedureStepID", "study-id", "X", "remove"),
    (0x00400253, "PerformedProcedureStepID", "study-id", "X", "remove"),
    (0x00400275, "RequestAttributesSequence", "study-id", "X", "remove"),
    (0x00081110, "ReferencedStudySequence", "study-id", "X/Z", "remove"),
    (0x00081030, "StudyDescription", "free-text", "X", "remove"),
    (0x0008103E, "SeriesDescription", "free-text", "X", "remove"),
    (0x00204000, "ImageComments", "free-text", "X", "remove"),
    (0x00181030, "ProtocolName", "free-text", "X/D", "remove"),
    (0x00181000, "DeviceSerialNumber", "serial-number", "X/Z/D", "remove"),
    (0x00081010, "StationName", "device-id", "X/Z/D", "remove"),
    (0x00181004, "PlateID", "device-id", "X", "remove"),
    (0x00181005, "GeneratorID", "device-id", "X", "remove"),
    (0x00181007, "CassetteID", "device-id", "X", "remove"),
    (0x00181008, "GantryID", "device-id", "X", "remove"),
    (0x0018700A, "DetectorID", "device-id", "X/D", "remove"),
    (0x00181400, "AcquisitionDeviceProcessingDescription", "free-text", "X/D", "remove"),
    (0x0020000D, "StudyInstanceUID", "uid", "U", "uid"),
    (0x0020000E, "SeriesInstanceUID", "uid", "U", "uid"),
    (0x00080018, "SOPInstanceUID", "uid", "U", "uid"),
    (0x00200052, "FrameOfReferenceUID", "uid", "U", "uid"),
    (0x00181002, "DeviceUID", "uid", "U", "uid"),
    (0x00080014, "InstanceCreatorUID", "uid", "U", "uid"),
    (0x00083010, "IrradiationEventUID", "uid", "U", "uid"),
    (0x00081155, "ReferencedSOPInstanceUID", "uid", "X/Z/U*", "uid"),
)
BY_TAG = {row[0]: row for row in PROFILE}
BURNED_IN = 0x00280301
DUMMY = {"PN": "ANONYMOUS", "DA": "19000101", "TM": "000000", "DT": "19000101000000"}
METHOD = "dlworkflow: PS3.15 E.1-1 Basic Profile, hashed UIDs"  # LO: at most 64 characters
PSEUDONYM = re.compile(r"^anon-[0-9a-f]{16}$")


def where(tag: int, keyword: str) -> str:
    return f"DICOM {keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def scan_dicom(path: str | Path, *, sample_id: str | None = None) -> list[Finding]:
    """Findings of the profile in a DICOM file (pixels not read); [] when pydicom cannot read it;
    DeidentifyError for a file refused unread (deflated DICOM)."""
    ds = _read(path, stop_before_pixels=True)
    return [] if ds is None else [f.with_sample(sample_id) for f in _scan(ds)]


def _read(path: str | Path, *, stop_before_pixels: bool) -> Any:
    """The dataset, or None. Read through store.dicom.read_dicom (the file meta first): a
    deflated file raises DeidentifyError before anything is inflated. Files without the 'DICM'
    preamble (old ACR-NEMA style) are read with force=True only when named .dcm / .dicom, and
    only kept when they hold a real image attribute (SOPClassUID or Rows): forcing accepts
    almost any bytes otherwise."""
    import warnings

    from pydicom.errors import InvalidDicomError

    errors = (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError)
    try:
        return read_dicom(path, stop_before_pixels=stop_before_pixels)
    except DicomRefused as exc:
        raise DeidentifyError(exc.reason) from None
    except errors:
        if Path(path).suffix.lower() not in (".dcm", ".dicom"):
            return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_dicom(path, stop_before_pixels=stop_before_pixels, force=True)
            return ds if ("SOPClassUID" in ds or "Rows" in ds) else None
    except DicomRefused as exc:
        raise DeidentifyError(exc.reason) from None
    except errors:
        return None


def _scan(ds: Any) -> list[Finding]:
    """Profile attributes with a value. In a file already marked PatientIdentityRemoved=YES the
    UIDs count as replaced, and a PatientID that is one of our pseudonyms is not a finding."""
    counts: dict[int, list[Any]] = {}
    private: list[int] = []
    done = str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"
    for elem in ds.iterall():
        if elem.tag.is_private:
            private.append(int(elem.tag))
        elif (int(elem.tag) in BY_TAG or _other_uid(elem)) and _present(elem):
            if done and (elem.VR == "UI" or PSEUDONYM.match(str(elem.value))):
                continue
            counts.setdefault(int(elem.tag), []).append(elem.value)
    out = []
    for tag, values in counts.items():
        _, keyword, kind, _, _ = BY_TAG.get(tag, (tag, _keyword(tag), "uid", "U", "uid"))
        detail = f"{len(values[0])} item(s)" if _is_sequence(values[0]) else mask(values[0])
        out.append(Finding(None, where(tag, keyword), kind, detail, count=len(values), key=keyword))
    if private:
        out.append(
            Finding(
                None,
                f"DICOM private attributes ({len(private)})",
                "private-tag",
                f"{len(private)} private attribute(s)",
                count=len(private),
                key="private",
            )
        )
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        out.append(
            Finding(
                None,
                where(BURNED_IN, "BurnedInAnnotation"),
                "burned-in-annotation",
                "pixels carry burned-in text; it is not removed",
                key="BurnedIn",
                action="remains",
            )
        )
    return out


def _present(elem: Any) -> bool:
    return len(elem.value) > 0 if _is_sequence(elem.value) else has_content(elem.value)


def _is_sequence(value: Any) -> bool:
    from pydicom.sequence import Sequence

    return isinstance(value, Sequence)


def _other_uid(elem: Any) -> bool:
    return (
        elem.VR == "UI"
        and has_content(elem.value)
        and not all(str(v).startswith(STANDARD_UID_ROOT) for v in _values(elem.value))
    )


def _values(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)):
        return [value]
    try:
        return list(value)  # MultiValue
    except TypeError:
        return [value]


def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


# ---- scrubbing -------------------------------------------------------------------------------
def scrub_dicom(src: str | Path, dst: str | Path, *, key: bytes | None = None) -> list[Finding]:
    """Write dst: src with the profile's actions applied (see the module docstring).

    src is only read. `key` (the project's secret) turns PatientID into a stable pseudonym and
    keys the UID hashes; without it PatientID is emptied and UIDs are hashed unkeyed.
    Returns src's findings with the action taken; BurnedInAnnotation stays "remains".
    """
    ds = _read(src, stop_before_pixels=False)
    if ds is None:
        raise DeidentifyError("not a DICOM file pydicom can read")
    findings = _scan(ds)
    ds.remove_private_tags()
    ds.walk(lambda dataset, elem: _apply(dataset, elem, key))
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    _mark_deidentified(ds)
    try:
        with atomic_path(dst) as tmp:
            ds.save_as(tmp)
    except (ValueError, TypeError, OSError) as exc:
        raise DeidentifyError(f"cannot write the de-identified DICOM: {exc}") from None
    return [f if f.action == "remains" else f.with_action(_done(f, key)) for f in findings]


def _apply(dataset: Any, elem: Any, key: bytes | None) -> None:
    tag = int(elem.tag)
    row = BY_TAG.get(tag)
    action = row[4] if row else ("uid" if _other_uid(elem) else None)
    if action is None or (action != "remove" and not _present(elem)):
        return
    if action == "remove":
        del dataset[elem.tag]
    elif action == "uid":
        new = [hashed_uid(v, key) for v in _values(elem.value)]
        elem.value = new[0] if len(new) == 1 else new
    elif action == "dummy":
        elem.value = DUMMY.get(elem.VR, "ANONYMOUS")
    elif tag == 0x00100020 and key is not None:  # PatientID: a keyed pseudonym keeps groups
        elem.value = pseudonym(elem.value, key)
    else:
        elem.value = [] if elem.VR == "SQ" else ""


def _done(finding: Finding, key: bytes | None) -> str:
    if finding.kind == "private-tag":
        return "removed"
    if finding.key == "PatientID" and key is not None:
        return "pseudonymised"
    row = next((r for r in PROFILE if r[1] == finding.key), None)
    action = row[4] if row else "uid"
    return {"remove": "removed", "empty": "emptied", "dummy": "replaced", "uid": "replaced"}[action]


def _mark_deidentified(ds: Any) -> None:
    from pydicom.dataset import Dataset

    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
    ds.LongitudinalTemporalInformationModified = "REMOVED"
