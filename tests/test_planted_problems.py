"""Issue 3's fixture folder with planted problems: each one is found and reported with the
right reason, and the originals are byte-identical afterwards."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_privacy, read_quarantine


def _bomb_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _dicom(path: Path, pixels: np.ndarray) -> None:
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^John", "P-0042", "19700101"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)


def _gps_jpeg(path: Path, rgb: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x013B] = "Jane Photographer"  # Artist
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    Image.fromarray(rgb).save(path, exif=exif, quality=95)


@pytest.fixture
def planted(tmp_path: Path, real_digit) -> Path:
    root = tmp_path / "planted"
    for label in ("cat", "dog"):
        for k in range(6):
            digit = real_digit(k % 3 + (0 if label == "cat" else 5), k)
            Image.fromarray(digit).save(root / label / f"{label}-{k}.png") if (
                root / label
            ).is_dir() else (
                (root / label).mkdir(parents=True),
                Image.fromarray(digit).save(root / label / f"{label}-{k}.png"),
            )
    rgb = np.stack([real_digit(4, 1)] * 3, axis=-1)
    big = Image.fromarray(rgb).resize((64, 64))
    big.save(root / "cat" / "whole.jpg")
    (root / "cat" / "truncated.jpg").write_bytes((root / "cat" / "whole.jpg").read_bytes()[:300])
    (root / "cat" / "zero.png").write_bytes(b"")
    (root / "dog" / "readme.png").write_text("not an image at all")
    big.convert("CMYK").save(root / "dog" / "cmyk.jpg")
    Image.fromarray(real_digit(2, 3).astype(np.uint16) * 257).save(root / "dog" / "deep16.png")
    (root / "dog" / "bomb.png").write_bytes(_bomb_png())
    # an exact duplicate and a near duplicate of cat-0 filed as dog
    (root / "dog" / "copy-of-cat0.png").write_bytes((root / "cat" / "cat-0.png").read_bytes())
    near = np.clip(np.asarray(Image.open(root / "cat" / "cat-1.png")).astype(int) + 6, 0, 255)
    Image.fromarray(near.astype(np.uint8)).save(root / "dog" / "brighter-cat1.png")
    _gps_jpeg(root / "cat" / "gps.jpg", rgb)
    _dicom(root / "dog" / "scan.dcm", real_digit(7, 2))
    return root


def _hashes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_every_planted_problem_is_found_and_originals_are_untouched(tmp_path, planted):
    before = _hashes(planted)
    project = Project.init(tmp_path / "proj")
    project.update_config({"problem.data_sensitivity": "phi"})
    result = project.ingest(str(planted), deidentify=True, progress=False)

    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert reasons["cat/truncated.jpg"].startswith("corrupt or truncated image")
    assert reasons["cat/zero.png"] == "empty file (0 bytes)"
    assert reasons["dog/readme.png"] == "not an image Pillow can identify"
    assert reasons["dog/bomb.png"].startswith("too many pixels")
    assert len(reasons) == 4 and result.n_quarantined == 4

    manifest = read_manifest(project).set_index("sample_id")
    assert manifest.loc["dog/cmyk.jpg", "mode"] == "CMYK"
    assert manifest.loc["dog/deep16.png", "mode"].startswith("I")
    assert manifest.loc["dog/scan.dcm", "width"] == 16  # DICOM pixels decoded

    privacy = read_privacy(project)
    kinds = privacy["by_kind"]
    assert kinds.get("gps", 0) >= 1 and kinds.get("patient-name", 0) >= 1
    assert privacy["remaining"] == 0 and privacy["mode"] == "deidentified"
    # the manifest reads scrubbed copies for the two files that carried identifiers
    for sid in ("cat/gps.jpg", "dog/scan.dcm"):
        assert Path(manifest.loc[sid, "path"]).parent == project.paths.state / "deid"
        assert manifest.loc[sid, "origin_path"] == str(planted / sid)
    assert "Doe" not in (project.paths.state / "privacy.json").read_text()

    # explore finds the exact and the near duplicate, both across the two classes
    result = project.explore(progress=False)
    report = (project.paths.reports / "eda.html").read_text()
    assert result.exact_conflicting >= 1 and result.near_conflicting >= 1
    assert "copy-of-cat0.png" in report and "brighter-cat1.png" in report
    assert _hashes(planted) == before


def test_a_csv_with_an_email_column_is_flagged_and_blocks_training(tmp_path, real_digit):
    folder = tmp_path / "csvdata"
    rows = []
    for k in range(8):
        label = "a" if k % 2 else "b"
        Image.fromarray(real_digit(k % 2, k)).save(folder / f"{k}.png") if folder.is_dir() else (
            folder.mkdir(),
            Image.fromarray(real_digit(k % 2, k)).save(folder / f"{k}.png"),
        )
        rows.append({"path": f"{k}.png", "label": label, "email": f"patient{k}@example.org"})
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)
    before = _hashes(folder)
    project = Project.init(tmp_path / "proj")
    project.update_config({"problem.data_sensitivity": "pii"})
    project.ingest(str(folder / "samples.csv"), progress=False)
    privacy = read_privacy(project)
    assert privacy["by_kind"].get("email", 0) >= 1 and privacy["remaining"] >= 1
    project.split()
    from dlworkflow.store import PrivacyError

    with pytest.raises(PrivacyError) as info:
        project.train(progress=False)
    assert "--deidentify" in str(info.value) + (info.value.fix or "")
    assert _hashes(folder) == before
