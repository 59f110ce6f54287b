"""Image formats are normalised the documented way; absurd files are quarantined, not crashes."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

from dlworkflow.store import read_manifest, read_quarantine
from dlworkflow.store.images import decode_image, normalise, to_array


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with a tiny (truncated) body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_every_mode_normalises_to_8_bit_gray_or_rgb(real_digit):
    digit = real_digit(3, 0)
    rgb = np.stack([digit, digit // 2, 255 - digit], axis=-1)
    cases = {
        "L": Image.fromarray(digit),
        "RGB": Image.fromarray(rgb),
        "RGBA": Image.fromarray(np.dstack([rgb, np.full_like(digit, 255)])),
        "P": Image.fromarray(rgb).convert("P"),
        "I;16": Image.fromarray(digit.astype(np.uint16) * 257),
        "CMYK": Image.fromarray(rgb).convert("CMYK"),
        "F": Image.fromarray(digit.astype(np.float32) * 10.0 - 300.0),
    }
    for mode, img in cases.items():
        assert img.mode == mode
        out = normalise(img)
        assert out.mode in ("L", "RGB"), mode
    # 16-bit: the full range maps linearly, so the 8-bit digit comes back exactly
    np.testing.assert_array_equal(np.asarray(normalise(cases["I;16"])), digit)
    # float: per-image min-max
    f = np.asarray(normalise(cases["F"]))
    assert f.min() == 0 and f.max() == 255
    # transparency is composited on white
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(normalise(clear)).min() == 255
    assert to_array(cases["CMYK"], channels=3, size=(8, 8)).shape == (3, 8, 8)


def test_formats_ingest_and_bad_files_are_quarantined(project, tmp_path, real_digit, snapshot):
    root = tmp_path / "zoo"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
    digit = real_digit(1, 0)
    rgb = np.stack([digit] * 3, axis=-1)
    Image.fromarray(digit).save(root / "a" / "gray.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "a" / "cmyk.jpg")
    Image.fromarray(digit.astype(np.uint16) * 257).save(root / "a" / "deep.png")
    Image.fromarray(rgb).save(root / "b" / "rgb.webp")
    Image.fromarray(rgb).save(root / "b" / "rgb.bmp")
    Image.fromarray(rgb).save(root / "b" / "rgb.tiff")
    Image.fromarray(np.dstack([rgb, np.full_like(digit, 128)])).save(root / "b" / "alpha.png")
    Image.fromarray(rgb).convert("P").save(root / "b" / "palette.png")
    full = root / "a" / "full.jpg"
    Image.fromarray(rgb).resize((64, 64)).save(full)
    (root / "a" / "truncated.jpg").write_bytes(full.read_bytes()[:200])
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "notes.png").write_text("this is not an image")
    (root / "b" / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    Image.new("L", (2000, 3)).save(root / "b" / "strip.png")
    before = snapshot(root)

    result = project.ingest(str(root), progress=False)

    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert reasons["a/truncated.jpg"].startswith("corrupt or truncated image")
    assert reasons["a/empty.png"] == "empty file (0 bytes)"
    assert reasons["b/notes.png"] == "not an image Pillow can identify"
    assert reasons["b/bomb.png"].startswith("too many pixels")
    assert reasons["b/strip.png"].startswith("absurd dimensions 2000x3")
    assert result.n_quarantined == 5
    manifest = read_manifest(project).set_index("sample_id")
    assert set(manifest.index) == {
        "a/gray.png",
        "a/cmyk.jpg",
        "a/deep.png",
        "a/full.jpg",
        "b/rgb.webp",
        "b/rgb.bmp",
        "b/rgb.tiff",
        "b/alpha.png",
        "b/palette.png",
    }
    assert manifest.loc["a/cmyk.jpg", "mode"] == "CMYK"
    assert manifest.loc["a/deep.png", "mode"].startswith("I")
    # every stored statistic comes from the normalised pixels: the 16-bit copy of the digit has
    # the same brightness as the 8-bit original
    assert (
        abs(manifest.loc["a/deep.png", "brightness"] - manifest.loc["a/gray.png", "brightness"])
        < 0.01
    )
    assert snapshot(root) == before  # originals untouched


def test_pixel_limit_is_configurable(project, tmp_path, real_digit):
    root = tmp_path / "img"
    for label in ("x", "y"):
        for k in range(2):
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(real_digit(k, 0)).save(root / label / f"{k}.png")
    Image.new("L", (20, 20)).save(root / "x" / "big.png")
    project.update_config({"data.max_image_pixels": 300})
    project.ingest(str(root), progress=False)
    reasons = dict(zip(*[read_quarantine(project)[c] for c in ("sample_id", "reason")]))
    assert list(reasons) == ["x/big.png"] and "limit 300" in reasons["x/big.png"]


def test_dicom_pixels_are_read(tmp_path):
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    path = tmp_path / "scan.dcm"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 16, 20, 1
    ds.PhotometricInterpretation = "MONOCHROME1"  # inverted: 0 is white
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    values = np.arange(320, dtype=np.uint16).reshape(16, 20) * 10
    ds.PixelData = values.tobytes()
    ds.save_as(path, enforce_file_format=True)
    img = decode_image(path, max_pixels=10_000)
    arr = to_array(img, channels=1, size=(16, 20))[0]
    assert arr[0, 0] == 255 and arr[-1, -1] == 0  # MONOCHROME1 inverted, min-max scaled
