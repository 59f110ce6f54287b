"""The pixel bank (dlworkflow/store/pixel_bank.py): every image is decoded once per format,
whichever steps ask for which rows; ingest banks small images as it reads them; a damaged
shard is ignored, never trusted. Real 8x8 UCI digits, upscaled to 16x16."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.fft import dctn

from dlworkflow.store import images as images_module
from dlworkflow.store.images import decode_image, image_stats, image_tensor
from dlworkflow.store.manifest import read_manifest
from dlworkflow.store.pixel_bank import PixelBank


@pytest.fixture
def ingested(project, digits_folder):
    project.ingest(str(digits_folder(8)), progress=False)  # 24 digits, 16x16 gray
    return project, read_manifest(project)


def _counting(monkeypatch) -> list[str]:
    decoded: list[str] = []
    original = images_module.decode_image

    def counting(path, **kwargs):
        decoded.append(str(path))
        return original(path, **kwargs)

    monkeypatch.setattr(images_module, "decode_image", counting)
    return decoded


def _reference(manifest, *, channels: int, size: tuple[int, int]) -> np.ndarray:
    return np.stack(
        [
            images_module.to_array(decode_image(p, max_pixels=10**6), channels=channels, size=size)
            for p in manifest["path"]
        ]
    )


def test_ingest_banks_small_images_so_later_steps_decode_nothing(ingested, monkeypatch):
    project, manifest = ingested
    assert (project.paths.cache / "pixels-1x16x16").is_dir()
    decoded = _counting(monkeypatch)
    rows = manifest.iloc[::2]
    out = image_tensor(project, rows, channels=1, size=(16, 16), max_pixels=10**6)
    assert decoded == []  # every one came from the bank written by ingest
    np.testing.assert_array_equal(out, _reference(rows, channels=1, size=(16, 16)))


def test_each_image_is_decoded_once_per_format_whatever_rows_are_asked(ingested, monkeypatch):
    project, manifest = ingested
    decoded = _counting(monkeypatch)
    first = manifest.iloc[:10]
    a = image_tensor(project, first, channels=1, size=(12, 12), max_pixels=10**6)
    assert len(decoded) == 10
    b = image_tensor(project, manifest.iloc[5:], channels=1, size=(12, 12), max_pixels=10**6)
    assert len(decoded) == 10 + len(manifest) - 10  # rows 5-9 were in the bank
    c = image_tensor(project, manifest.iloc[::-1], channels=3, size=(12, 12), max_pixels=10**6)
    assert len(decoded) == len(manifest) * 2  # another format: decoded again, once
    np.testing.assert_array_equal(a, _reference(first, channels=1, size=(12, 12)))
    np.testing.assert_array_equal(b, _reference(manifest.iloc[5:], channels=1, size=(12, 12)))
    np.testing.assert_array_equal(c, _reference(manifest.iloc[::-1], channels=3, size=(12, 12)))


def test_a_damaged_shard_is_ignored_and_its_images_decoded_again(ingested, monkeypatch):
    project, manifest = ingested
    folder = project.paths.cache / "pixels-1x16x16"
    for shard in folder.glob("*.npy"):
        shard.write_bytes(b"not an array")
    decoded = _counting(monkeypatch)
    out = image_tensor(project, manifest, channels=1, size=(16, 16), max_pixels=10**6)
    assert len(decoded) == len(manifest)
    np.testing.assert_array_equal(out, _reference(manifest, channels=1, size=(16, 16)))
    bank = PixelBank(project.paths.cache, channels=1, size=(16, 16))
    missing = bank.fill(
        list(manifest["content_hash"]), np.zeros((len(manifest), 1, 16, 16), dtype=np.uint8)
    )
    assert len(missing) == 0  # the new shard holds them all


def test_a_full_bank_stops_growing(ingested, monkeypatch):
    project, manifest = ingested
    import dlworkflow.store.pixel_bank as bank_module

    monkeypatch.setattr(bank_module, "BANK_LIMIT_BYTES", 0)
    image_tensor(project, manifest, channels=1, size=(10, 10), max_pixels=10**6)
    assert not (project.paths.cache / "pixels-1x10x10").exists()


def test_the_perceptual_hash_is_the_dct_hash_of_the_thumbnail(ingested):
    """image_stats' matrix DCT gives the same hash as scipy's 2-D DCT-II (orthonormal)."""
    from PIL import Image

    _, manifest = ingested
    for path in manifest["path"]:
        img = decode_image(path, max_pixels=10**6)
        thumb = np.asarray(
            img.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64
        )
        low = dctn(thumb, norm="ortho")[:8, :8].ravel()
        expected = int(np.packbits(low > np.median(low)).view(">i8")[0])
        stats = image_stats(img)
        pixels = np.asarray(img.convert("L"), dtype=np.float64)
        assert stats["phash"] == expected
        assert stats["contrast"] == pytest.approx(pixels.std(), abs=1e-9)
        assert stats["dark"] == pytest.approx((pixels <= 5).mean())


def test_a_file_changed_since_ingest_is_decoded_again_and_not_banked(
    ingested, real_digit, save_png
):
    """The bank holds what ingest read; a file replaced since (same path, other pixels) is
    read from disk, and its new pixels never go into the bank under the old content hash."""
    import os

    project, manifest = ingested
    row = manifest.iloc[[0]]
    path = row["path"].iloc[0]
    before = image_tensor(project, row, channels=1, size=(16, 16), max_pixels=10**6).copy()
    other = real_digit(9, 7)
    save_png(path, other)
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock
    now = image_tensor(project, manifest.iloc[[0, 1]], channels=1, size=(16, 16), max_pixels=10**6)
    np.testing.assert_array_equal(now[0, 0], other)
    assert not np.array_equal(now[0], before[0])
    bank = PixelBank(project.paths.cache, channels=1, size=(16, 16))
    banked = np.zeros((1, 1, 16, 16), dtype=np.uint8)
    assert len(bank.fill([row["content_hash"].iloc[0]], banked)) == 0
    np.testing.assert_array_equal(banked[0], before[0])  # the bank still holds ingest's pixels


def test_ingest_banks_write_a_shard_each_time_the_buffer_is_full(tmp_path, monkeypatch):
    """IngestBanks holds each format's waiting images in one buffer of INGEST_PENDING_BYTES
    and writes it out as a shard whenever that much waits (then the rest at the flush):
    every image lands in its format's bank, under its own hash."""
    import dlworkflow.store.pixel_bank as bank_module

    monkeypatch.setattr(bank_module, "INGEST_PENDING_BYTES", 5 * 16 * 16)  # 5 gray 16x16
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (12, 1, 16, 16), dtype=np.uint8)
    rgb = rng.integers(0, 256, (3, 3, 8, 8), dtype=np.uint8)
    banks = bank_module.IngestBanks(tmp_path)
    for i, image in enumerate(gray):
        banks.keep_array(f"g{i}", image.copy())
        if i == 1:
            for j, other in enumerate(rgb):
                banks.keep_array(f"c{j}", other.copy())
    folder = tmp_path / "pixels-1x16x16"
    written_early = len(list(folder.glob("*.npy")))
    banks.flush()
    assert written_early >= 2  # written as the buffer filled, not all at the end
    assert banks.pending_bytes == 0 and all(p.count == 0 for p in banks.pending.values())
    for shape, images, prefix in (((1, 16, 16), gray, "g"), ((3, 8, 8), rgb, "c")):
        bank = PixelBank(tmp_path, channels=shape[0], size=shape[1:])
        out = np.zeros_like(images)
        assert len(bank.fill([f"{prefix}{i}" for i in range(len(images))], out)) == 0
        np.testing.assert_array_equal(out, images)
