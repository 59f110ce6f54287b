"""De-identification (step 2) on real files made here: a JPEG photo with EXIF GPS / Artist /
serial number / capture time, PNGs with and without an Author chunk, a DICOM file with patient
data and a private tag, and a table with e-mail, phone, name and free-text columns."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, PngImagePlugin

from dlworkflow.data.deid import (
    PROFILE,
    DeidentifyError,
    Finding,
    build_record,
    deidentify_file,
    mask,
    mask_text,
    pseudonym,
    scan_dicom,
    scan_file,
    scan_image,
    scan_table,
    scrub_dicom,
    scrub_image,
    scrub_table,
    strip_jpeg,
)
from dlworkflow.store.privacy import read_privacy, read_privacy_findings, write_privacy

ARTIST, SERIAL, TAKEN = "Jane Photographer", "SN12345678", "2021:06:01 12:34:56"
PATIENT, PATIENT_ID, BIRTH = "Doe^John", "MRN-0042317", "19700101"
HOSPITAL, PRIVATE = "St Example Hospital", "hospital ref 12345"
KEY = bytes(range(32))


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img).copy()


def photo() -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("china.jpg")).resize((160, 107))


def write_jpeg(path: Path, *, progressive: bool = False, orientation: int = 6) -> Path:
    exif = Image.Exif()
    exif[0x013B] = ARTIST  # Artist
    exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    sub[0xA431] = SERIAL  # BodySerialNumber
    sub[0x9003] = TAKEN  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0), 0x1D: "2021:06:01"})
    photo().save(path, exif=exif, quality=90, progressive=progressive)
    return path


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    return write_jpeg(tmp_path / "photo.jpg")


@pytest.fixture
def png_author(tmp_path: Path) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Software", "a drawing program")
    path = tmp_path / "drawing.png"
    photo().convert("L").save(path, pnginfo=info)
    return path


@pytest.fixture
def png_clean(tmp_path: Path) -> Path:
    path = tmp_path / "clean.png"
    photo().save(path)
    return path


def write_dicom(path: Path, *, burned_in: bool = False) -> Path:
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(path), "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series"])
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PATIENT, PATIENT_ID, BIRTH
    ds.InstitutionName, ds.StudyDate, ds.Modality = HOSPITAL, "20230405", "OT"
    ref = Dataset()
    ref.ReferencedSOPClassUID = SecondaryCaptureImageStorage
    ref.ReferencedSOPInstanceUID = ds.StudyInstanceUID
    ds.ReferencedImageSequence = [ref]
    ds.private_block(0x0009, "ACME 1.0", create=True).add_new(0x10, "LO", PRIVATE)
    if burned_in:
        ds.BurnedInAnnotation = "YES"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 37).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def dicom(tmp_path: Path) -> Path:
    return write_dicom(tmp_path / "scan.dcm")


def by_where(findings: list[Finding]) -> dict[str, Finding]:
    return {f.where: f for f in findings}


def assert_masked(findings: list[Finding], *raw: str) -> None:
    for finding in findings:
        for value in raw:
            assert value not in finding.detail, (finding, value)
            for part in value.replace("^", " ").replace(":", " ").split():
                if len(part) >= 3:
                    assert part not in finding.detail, (finding, part)


# ---- images ----------------------------------------------------------------------------------
def test_jpeg_exif_is_found_with_masked_details(jpeg: Path):
    found = by_where(scan_image(jpeg, sample_id="s1"))
    assert {w: f.kind for w, f in found.items()} == {
        "EXIF Artist": "owner",
        "EXIF BodySerialNumber": "serial-number",
        "EXIF DateTimeOriginal": "timestamp",
        "EXIF GPSInfo": "gps",
        "EXIF GPSDateStamp": "timestamp",
    }
    assert found["EXIF GPSInfo"].count == 4
    assert all(f.sample_id == "s1" and f.action == "found" for f in found.values())
    assert_masked(list(found.values()), ARTIST, SERIAL, TAKEN, "2021:06:01", "39", "116")


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_scrub_strips_metadata_without_reencoding(tmp_path: Path, progressive: bool):
    src = write_jpeg(tmp_path / "photo.jpg", progressive=progressive)
    before = sha(src)
    done = scrub_image(src, tmp_path / "out" / "clean.jpg")
    clean = tmp_path / "out" / "clean.jpg"
    assert {f.action for f in done} == {"removed"} and len(done) == 5
    assert scan_image(clean) == []
    assert sha(src) == before  # the original is never modified
    np.testing.assert_array_equal(pixels(clean), pixels(src))  # same scans: identical pixels
    data = clean.read_bytes()
    for raw in (ARTIST, SERIAL, TAKEN):
        assert raw.encode() not in data
    with Image.open(clean) as img:  # the orientation survives, so the image turns as before
        assert dict(img.getexif()) == {0x0112: 6}
    assert not list(tmp_path.joinpath("out").glob(".*.tmp"))


def test_strip_jpeg_rejects_truncated_files(jpeg: Path):
    with pytest.raises(ValueError, match="no end-of-image"):
        strip_jpeg(jpeg.read_bytes()[:-200])
    with pytest.raises(ValueError, match="not a JPEG"):
        strip_jpeg(b"\x89PNG....")


def test_png_author_chunk_found_and_scrubbed_losslessly(png_author: Path, tmp_path: Path):
    found = scan_image(png_author)
    assert [(f.where, f.kind) for f in found] == [("PNG text 'Author'", "owner")]  # not Software
    assert_masked(found, "Jane Doe")
    before = sha(png_author)
    scrub_image(png_author, tmp_path / "clean.png")
    assert scan_image(tmp_path / "clean.png") == []
    np.testing.assert_array_equal(pixels(tmp_path / "clean.png"), pixels(png_author))
    assert sha(png_author) == before
    assert b"Jane" not in (tmp_path / "clean.png").read_bytes()


def test_clean_png_has_no_findings_and_is_used_as_is(png_clean: Path, tmp_path: Path):
    assert scan_file(png_clean) == []
    path, findings = deidentify_file(png_clean, tmp_path / "deid", "clean.png")
    assert path == png_clean and findings == []
    assert not (tmp_path / "deid").exists()


def test_deidentify_file_writes_a_hashed_name_copy(jpeg: Path, tmp_path: Path):
    path, findings = deidentify_file(jpeg, tmp_path / "deid", "Jane_Doe/photo.jpg")
    assert path.parent == tmp_path / "deid" and path.suffix == ".jpg"
    assert "Jane" not in path.name and path.name.startswith("deid-")
    assert {f.sample_id for f in findings} == {"Jane_Doe/photo.jpg"}
    assert all(f.resolved for f in findings)
    assert scan_file(path) == []
    again, _ = deidentify_file(jpeg, tmp_path / "deid", "Jane_Doe/photo.jpg")
    assert again == path  # deterministic name: re-ingesting replaces the same copy


def test_unreadable_files_have_no_findings_and_cannot_be_scrubbed(tmp_path: Path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    assert scan_file(junk) == []
    with pytest.raises(DeidentifyError):
        scrub_dicom(junk, tmp_path / "x.dcm")


# ---- DICOM -----------------------------------------------------------------------------------
def test_dicom_profile_attributes_are_found(dicom: Path):
    found = by_where(scan_dicom(dicom))
    expected = {
        "DICOM PatientName (0010,0010)": "patient-name",
        "DICOM PatientID (0010,0020)": "patient-id",
        "DICOM PatientBirthDate (0010,0030)": "birth-date",
        "DICOM InstitutionName (0008,0080)": "institution",
        "DICOM StudyDate (0008,0020)": "timestamp",
        "DICOM StudyInstanceUID (0020,000D)": "uid",
        "DICOM SeriesInstanceUID (0020,000E)": "uid",
        "DICOM SOPInstanceUID (0008,0018)": "uid",
        "DICOM ReferencedSOPInstanceUID (0008,1155)": "uid",  # inside a sequence
        "DICOM private attributes (2)": "private-tag",  # creator + value
    }
    assert {w: found[w].kind for w in expected} == expected
    assert "DICOM Modality (0008,0060)" not in found
    assert found["DICOM PatientName (0010,0010)"].detail == "D***^J***"
    assert_masked(list(found.values()), PATIENT, PATIENT_ID, BIRTH, HOSPITAL, PRIVATE)
    assert scan_file(dicom.rename(dicom.with_suffix(".bin"))) != []  # found by 'DICM' magic


def test_profile_table_cites_the_standard_actions():
    rows = {keyword: (code, action) for _, keyword, _, code, action in PROFILE}
    assert rows["PatientName"] == ("Z", "empty") and rows["StudyInstanceUID"] == ("U", "uid")
    assert rows["OtherPatientIDs"] == ("X", "remove")
    assert {action for *_, action in PROFILE} == {"remove", "empty", "dummy", "uid"}


def test_dicom_scrub_applies_the_profile_and_keeps_pixels(dicom: Path, tmp_path: Path):
    import pydicom

    before = sha(dicom)
    done = by_where(scrub_dicom(dicom, tmp_path / "a.dcm", key=KEY))
    assert done["DICOM PatientName (0010,0010)"].action == "emptied"
    assert done["DICOM PatientID (0010,0020)"].action == "pseudonymised"
    assert done["DICOM InstitutionName (0008,0080)"].action == "removed"
    assert done["DICOM StudyInstanceUID (0020,000D)"].action == "replaced"
    assert sha(dicom) == before
    assert scan_dicom(tmp_path / "a.dcm") == []

    original, clean = pydicom.dcmread(dicom), pydicom.dcmread(tmp_path / "a.dcm")
    assert clean.PixelData == original.PixelData
    np.testing.assert_array_equal(clean.pixel_array, original.pixel_array)
    assert clean.PatientName == "" and "InstitutionName" not in clean
    assert clean.PatientID == pseudonym(PATIENT_ID, KEY)
    assert clean.PatientIdentityRemoved == "YES" and clean.DeidentificationMethod
    assert clean.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert clean.SOPClassUID == original.SOPClassUID  # standard UIDs are kept
    assert clean.StudyInstanceUID != original.StudyInstanceUID
    assert clean.StudyInstanceUID.startswith("2.25.")
    assert clean.file_meta.MediaStorageSOPInstanceUID == clean.SOPInstanceUID
    # a UID referenced in a sequence maps to the same new UID: references stay consistent
    assert clean.ReferencedImageSequence[0].ReferencedSOPInstanceUID == clean.StudyInstanceUID
    assert not any(elem.tag.is_private for elem in clean.iterall())
    blob = (tmp_path / "a.dcm").read_bytes()
    for raw in (b"Doe^John", PATIENT_ID.encode(), HOSPITAL.encode(), PRIVATE.encode()):
        assert raw not in blob

    # deterministic: same key, same UIDs and pseudonym; another key, others
    scrub_dicom(dicom, tmp_path / "b.dcm", key=KEY)
    scrub_dicom(dicom, tmp_path / "c.dcm", key=b"another key")
    same, other = pydicom.dcmread(tmp_path / "b.dcm"), pydicom.dcmread(tmp_path / "c.dcm")
    assert same.StudyInstanceUID == clean.StudyInstanceUID and same.PatientID == clean.PatientID
    assert other.StudyInstanceUID != clean.StudyInstanceUID
    assert other.PatientID != clean.PatientID


def test_burned_in_annotation_is_reported_and_remains(tmp_path: Path):
    src = write_dicom(tmp_path / "burned.dcm", burned_in=True)
    path, findings = deidentify_file(src, tmp_path / "deid", "burned")
    burned = [f for f in findings if f.kind == "burned-in-annotation"]
    assert len(burned) == 1 and burned[0].action == "remains" and not burned[0].resolved
    assert path.suffix == ".dcm" and path != src
    assert [f.kind for f in scan_file(path)] == ["burned-in-annotation"]


# ---- tables and text -------------------------------------------------------------------------
@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email": ["jane.doe@example.com", "bob.smith@mail.org", "carl@clinic.io", None],
            "phone": ["+44 20 7946 0958", "(555) 123-4567", "020 7946 0958", "555-987-6543"],
            "notes": [
                "Please write to jane.doe@example.com about the follow-up visit",
                "Dr. Miller reviewed the scan today, no change",
                "no issues found in this image at all",
                "call 07700 900123 to book the next appointment",
            ],
            "name": ["Jane Doe", "Bob Smith", "Carl Jensen", "Maria Garcia"],
            "birth": ["1970-01-01", "1985-05-12", "1990-12-31", "1962-03-03"],
            "visit": ["2021-01-01", "2021-05-12", "2021-12-31", "2022-03-03"],
            "ssn_or_not": ["123-45-6789", "234-56-7890", "345-67-8901", "456-78-9012"],
            "nhs": ["943 476 5919", "9434765919", None, "943 476 5919"],
            "reading": [9434765919, 1234567890, 42, 7],  # numbers, not ids
            "label": ["cat", "dog", "cat", "dog"],
        }
    )


def test_table_findings_by_name_and_content(table: pd.DataFrame):
    found = {(f.key, f.kind): f for f in scan_table(table)}
    assert set(found) == {
        ("email", "email"),
        ("phone", "phone"),
        ("notes", "email"),
        ("notes", "phone"),
        ("notes", "person-name"),
        ("name", "person-name"),
        ("birth", "birth-date"),
        ("ssn_or_not", "national-id"),
        ("nhs", "national-id"),
    }
    assert found[("email", "email")].count == 3 and found[("email", "email")].match == "value"
    assert found[("email", "email")].detail == "j***@e***.com"
    assert found[("phone", "phone")].count == 4
    assert found[("notes", "email")].match == "text" and found[("notes", "email")].count == 1
    assert found[("name", "person-name")].where == "column 'name'"
    assert all(f.sample_id is None for f in found.values())
    raw = [v for col in table for v in table[col].dropna().astype(str)]
    assert_masked(list(found.values()), *raw)


def test_column_names_alone_are_findings():
    df = pd.DataFrame(
        {
            "E-Mail": ["(withheld)"],
            "Date of Birth": ["unknown"],
            "Surname": ["x"],
            "patient_id": ["p1"],
            "zip": ["?"],
            "width": [3],
        }
    )
    kinds = {f.key: (f.kind, f.match) for f in scan_table(df)}
    assert kinds == {
        "E-Mail": ("email", "name"),
        "Date of Birth": ("birth-date", "name"),
        "Surname": ("person-name", "name"),
        "patient_id": ("patient-id", "name"),
        "zip": ("address", "name"),
    }


def test_scrub_table_drops_identifiers_masks_text_and_leaves_input_alone(table: pd.DataFrame):
    original = table.copy(deep=True)
    findings = scan_table(table)
    clean, done = scrub_table(table, findings)
    pd.testing.assert_frame_equal(table, original)  # never mutates the input
    assert list(clean.columns) == ["notes", "visit", "reading", "label"]
    assert clean["notes"].tolist() == [
        "Please write to [EMAIL] about the follow-up visit",
        "[NAME] reviewed the scan today, no change",
        "no issues found in this image at all",
        "call [PHONE] to book the next appointment",
    ]
    assert {f.key: f.action for f in done}["email"] == "dropped"
    assert {f.action for f in done if f.key == "notes"} == {"masked"}
    assert scan_table(clean) == []


def test_scrub_table_mask_and_pseudonymise(table: pd.DataFrame):
    findings = scan_table(table, columns=["email", "name"])
    clean, done = scrub_table(table, findings, columns="mask", pseudonymise=["name"], key=KEY)
    assert clean["email"].tolist()[:3] == ["[EMAIL]"] * 3 and pd.isna(clean["email"][3])
    assert clean["name"].tolist() == [pseudonym(v, KEY) for v in table["name"]]
    assert {f.key: f.action for f in done} == {"email": "masked", "name": "pseudonymised"}
    with pytest.raises(ValueError, match="key"):
        scrub_table(table, findings, pseudonymise=["name"])


def test_dates_of_birth_by_content_not_visit_dates():
    df = pd.DataFrame(
        {
            "d1": ["12/03/1948", "01/07/1961", "30/11/1975", "02/02/1990"],
            "d2": ["2023-01-02", "2023-02-03", "2024-05-06", "2024-07-08"],
        }
    )
    assert [(f.key, f.kind) for f in scan_table(df)] == [("d1", "birth-date")]


def test_mask_text_and_mask():
    assert (
        mask_text("mail a.b@c.org or +1 415 555 2671, SSN 123-45-6789")
        == "mail [EMAIL] or [PHONE], SSN [ID]"
    )
    assert mask_text("NHS 943 476 5919 but not 943 476 5910") == "NHS [ID] but not 943 476 5910"
    for raw in ("Doe^John", "jane.doe@example.com", "M", "19700101", "SN12345678"):
        assert raw not in mask(raw)
    assert mask("jane.doe@example.com") == "j***@e***.com"


# ---- the record ------------------------------------------------------------------------------
def test_privacy_record_round_trip(project, jpeg: Path, png_clean: Path, tmp_path: Path):
    findings = scan_file(jpeg, sample_id="a") + scan_file(png_clean, sample_id="b")
    _, scrubbed = deidentify_file(jpeg, tmp_path / "deid", "a")
    record = build_record(
        findings, mode="scan-only", dataset_version="v1", n_scanned=2, sensitivity="pii"
    )
    assert record["remaining"] == record["n_findings"] == 8  # GPS counts 4 tags
    assert record["by_kind"] == {"gps": 4, "timestamp": 2, "owner": 1, "serial-number": 1}
    assert record["n_samples_with_findings"] == 1 and record["scanned"]
    write_privacy(project, record, findings=[f.to_dict() for f in findings])
    back = read_privacy(project)
    assert back["remaining_by_kind"]["gps"] == 4
    assert back["findings_table"] == "privacy_findings.parquet"
    table = read_privacy_findings(project)
    assert len(table) == 5 and set(table["kind"]) == {"gps", "timestamp", "owner", "serial-number"}
    done = build_record(
        scrubbed,
        mode="deidentified",
        dataset_version="v2",
        n_scanned=2,
        sensitivity="pii",
        scrubbed_to=str(tmp_path / "deid"),
    )
    assert done["remaining"] == 0 and done["by_action"] == {"removed": 8}
    with pytest.raises(ValueError):
        build_record([], mode="maybe", dataset_version="v", n_scanned=0, sensitivity="pii")
