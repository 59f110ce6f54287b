"""Issue 14, items 1 and 2: every decode path reads a DICOM header before any pixel, refuses
deflated DICOM before inflating it, counts frames and samples, and never lets Pillow pick a
plugin outside the allow-list (an EPS file renamed .png must not start Ghostscript)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from dlworkflow.store import read_manifest, read_quarantine
from dlworkflow.store.images import ImageDecodeError, decode_image, decode_image_bytes

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto stroke\n"


def dicom_bytes(
    rows: int,
    cols: int,
    *,
    frames: int | None = None,
    samples: int = 1,
    pixels: bytes | None = None,
    deflated: bool = False,
    preamble: bytes = b"\0" * 128,
    patient: str | None = None,
) -> bytes:
    """A DICOM Part 10 file written by pydicom. `pixels` defaults to a real 8-bit image of the
    claimed size; pass tiny pixel data to claim a size the data does not have."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian if deflated else ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=preamble)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if patient is not None:
        ds.PatientName = patient
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if pixels is None:
        n = rows * cols * samples * (frames or 1)
        pixels = (np.arange(n) % 251).astype(np.uint8).tobytes()
    ds.PixelData = pixels
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def no_inflation(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records every inflation by pydicom's reader (zlib.decompress in pydicom.filereader)."""
    import types

    import pydicom.filereader

    calls: list[int] = []

    def recording(data: Any, *args: Any, **kwargs: Any) -> bytes:
        calls.append(len(data))
        return zlib.decompress(data, *args, **kwargs)

    spy = types.SimpleNamespace(decompress=recording, MAX_WBITS=zlib.MAX_WBITS)
    monkeypatch.setattr(pydicom.filereader, "zlib", spy)
    return calls


@pytest.fixture
def pixel_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """stop_before_pixels of every pydicom.dcmread call."""
    import pydicom

    calls: list[bool] = []
    real = pydicom.dcmread

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(bool(kwargs.get("stop_before_pixels", False)))
        return real(*args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", recording)
    return calls


@pytest.fixture
def ghostscript(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every use of Pillow's EPS plugin: opening a file with it, or running Ghostscript
    (as if it were installed: the call is recorded and refused)."""
    from PIL import EpsImagePlugin

    calls: list[Any] = []
    real_open = EpsImagePlugin.EpsImageFile._open

    def opened(self: Any) -> None:
        calls.append("EpsImageFile._open")
        real_open(self)

    def run(*args: Any, **kwargs: Any) -> Any:
        calls.append("Ghostscript")
        raise OSError("Ghostscript was started")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", opened)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", run)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    return calls


# ---- DICOM ----------------------------------------------------------------------------------
def test_small_dicom_still_decodes(tmp_path: Path) -> None:
    path = tmp_path / "ok.dcm"
    path.write_bytes(dicom_bytes(12, 16))
    img = decode_image(path, max_pixels=10_000)
    assert img.size == (16, 12)
    assert decode_image_bytes(path.read_bytes(), max_pixels=10_000).size == (16, 12)
    rgb = decode_image_bytes(dicom_bytes(4, 5, samples=3), max_pixels=10_000)
    assert (rgb.mode, rgb.size) == ("RGB", (5, 4))


def test_dicom_header_is_read_before_any_pixel(tmp_path: Path, pixel_reads: list[bool]) -> None:
    path = tmp_path / "huge.dcm"
    path.write_bytes(dicom_bytes(60_000, 60_000, pixels=b"\0" * 64))  # claims 3.6e9 pixels
    with pytest.raises(ImageDecodeError, match="too many pixels"):
        decode_image(path, max_pixels=1_000_000)
    assert pixel_reads and all(pixel_reads)  # only stop_before_pixels=True reads


def test_dicom_frames_count_against_the_pixel_limit(tmp_path: Path) -> None:
    # 100 x 100 per frame is small; 10,000 frames of it are 100 million pixels
    path = tmp_path / "frames.dcm"
    path.write_bytes(dicom_bytes(100, 100, frames=10_000, pixels=b"\0" * 64))
    with pytest.raises(ImageDecodeError, match=r"too many pixels.*10,000 frames"):
        decode_image(path, max_pixels=16_777_216)


def test_dicom_samples_count_against_the_pixel_limit() -> None:
    data = dicom_bytes(80, 80, samples=3)  # 6,400 pixels x 3 samples = 19,200 values
    decode_image_bytes(data, max_pixels=20_000)
    with pytest.raises(ImageDecodeError, match=r"too many pixels.*3 samples"):
        decode_image_bytes(data, max_pixels=10_000)


def test_deflated_dicom_is_refused_before_inflation(
    tmp_path: Path, no_inflation: list[int]
) -> None:
    data = dicom_bytes(16, 16, deflated=True)
    path = tmp_path / "deflated.dcm"
    path.write_bytes(data)
    for decode in (
        lambda: decode_image(path, max_pixels=10_000),
        lambda: decode_image_bytes(data, max_pixels=10_000),
    ):
        with pytest.raises(ImageDecodeError, match="deflated"):
            decode()
    assert no_inflation == []


def test_privacy_scan_and_scrub_refuse_deflated_dicom(
    tmp_path: Path, no_inflation: list[int]
) -> None:
    from dlworkflow.data.deid import DeidentifyError, scan_dicom, scrub_dicom

    path = tmp_path / "deflated.dcm"
    path.write_bytes(dicom_bytes(16, 16, deflated=True, patient="Doe^Jane"))
    with pytest.raises(DeidentifyError, match="deflated"):
        scan_dicom(path)
    with pytest.raises(DeidentifyError, match="deflated"):
        scrub_dicom(path, tmp_path / "clean.dcm")
    assert no_inflation == [] and not (tmp_path / "clean.dcm").exists()


def test_privacy_scan_reads_the_header_only(tmp_path: Path, pixel_reads: list[bool]) -> None:
    from dlworkflow.data.deid import scan_dicom

    path = tmp_path / "named.dcm"
    path.write_bytes(dicom_bytes(8, 8, patient="Doe^Jane"))
    assert [f.key for f in scan_dicom(path) if f.key == "PatientName"] == ["PatientName"]
    assert pixel_reads == [True]


def _digit_folder(root: Path, real_digit: Any) -> Path:
    """Two classes, a and b, of two real digit PNGs each."""
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(real_digit(k, 0)).save(root / label / f"{k}.png")
    return root


def test_ingest_quarantines_deflated_and_oversized_dicom(
    project: Any, tmp_path: Path, real_digit: Any, no_inflation: list[int]
) -> None:
    root = _digit_folder(tmp_path / "scans", real_digit)
    (root / "a" / "deflated.dcm").write_bytes(dicom_bytes(16, 16, deflated=True))
    (root / "b" / "frames.dcm").write_bytes(dicom_bytes(100, 100, frames=10_000, pixels=b"\0" * 64))
    (root / "b" / "fine.dcm").write_bytes(dicom_bytes(16, 16))
    project.ingest(str(root), progress=False)
    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert set(reasons) == {"a/deflated.dcm", "b/frames.dcm"}
    assert "deflated" in reasons["a/deflated.dcm"]
    assert "10,000 frames" in reasons["b/frames.dcm"]
    assert "b/fine.dcm" in set(read_manifest(project)["sample_id"])
    assert no_inflation == []


# ---- no Ghostscript -------------------------------------------------------------------------
def test_eps_named_png_is_refused_without_ghostscript(
    tmp_path: Path, ghostscript: list[Any]
) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(EPS)
    with pytest.raises(ImageDecodeError, match="EPS"):
        decode_image(path, max_pixels=10_000)
    with pytest.raises(ImageDecodeError, match="EPS"):
        decode_image_bytes(EPS, max_pixels=10_000)
    assert ghostscript == []


def test_deid_refuses_eps_without_ghostscript(tmp_path: Path, ghostscript: list[Any]) -> None:
    from dlworkflow.data.deid import DeidentifyError, scan_image, scrub_image

    path = tmp_path / "x.png"
    path.write_bytes(EPS)
    assert scan_image(path) == []
    with pytest.raises(DeidentifyError, match="EPS"):
        scrub_image(path, tmp_path / "clean.png")
    assert ghostscript == [] and not (tmp_path / "clean.png").exists()


def test_ingest_quarantines_eps_named_png(
    project: Any, tmp_path: Path, real_digit: Any, ghostscript: list[Any]
) -> None:
    root = _digit_folder(tmp_path / "zoo", real_digit)
    (root / "b" / "x.png").write_bytes(EPS)
    project.ingest(str(root), progress=False)
    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert list(reasons) == ["b/x.png"] and "EPS" in reasons["b/x.png"]
    assert ghostscript == []


def test_every_image_open_passes_the_allow_list() -> None:
    """Pillow picks a plugin from the content: each Image.open in the code base names formats."""
    import re

    package = Path(__file__).resolve().parents[2] / "dlworkflow"
    bare = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"Image\.open\(", text):
            end = text.find("\n", match.end())
            call = text[match.end() : end]
            if "formats=" not in call:
                line = text.count("\n", 0, match.start()) + 1
                bare.append(f"{path.relative_to(package)}:{line}")
    assert bare == []
