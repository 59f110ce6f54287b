"""Audio ingest (data/audio_source.py): real sonic-pi clips in class folders or a table, and
broken clips made here, each quarantined with its reason; the originals are never changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.errors import DataError
from dlworkflow.fileio import sha256_file
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine
from system_deps import sonic_pi_samples

CLIPS = {  # class -> real sonic-pi clips (0.1 s to 1.7 s, none clipping)
    "bd": ["bd_808", "bd_boom", "bd_fat"],
    "elec": ["elec_beep", "elec_bell", "elec_blip"],
}


@pytest.fixture(scope="module")
def samples() -> Path:
    return sonic_pi_samples()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.init(tmp_path / "p", task="audio-classification")


def _real(samples: Path, name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, rate = sf.read(samples / f"{name}.flac", dtype="float32", always_2d=True)
    return data.mean(axis=1), rate


def _good_folder(samples: Path, root: Path) -> Path:
    for label, names in CLIPS.items():
        (root / label).mkdir(parents=True)
        for name in names:
            shutil.copy(samples / f"{name}.flac", root / label / f"{name}.flac")
    return root


def _broken_clips(samples: Path, folder: Path) -> dict[str, str]:
    """Broken clips written into folder/<class>/: file name -> the start of its reason."""
    import soundfile as sf

    wave, rate = _real(samples, "elec_bell")
    sf.write(folder / "elec" / "truncated.wav", wave, rate, subtype="PCM_16")
    whole = (folder / "elec" / "truncated.wav").read_bytes()
    (folder / "elec" / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    sf.write(folder / "elec" / "silent.wav", np.zeros(rate // 2, np.float32), rate)
    hot = np.clip(_real(samples, "bd_boom")[0] * 20.0, -1.0, 1.0)
    sf.write(folder / "bd" / "clipped.wav", hot, rate, subtype="PCM_16")
    sf.write(folder / "bd" / "aiff.wav", wave, rate, format="AIFF")  # an AIFF named .wav
    (folder / "bd" / "text.flac").write_text("this is not audio\n")
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)
    (folder / "bd" / "song.wav").write_bytes(id3)  # an MP3 (ID3 tag, MPEG frame) named .wav
    (folder / "elec" / "empty.ogg").write_bytes(b"")
    return {
        "elec/truncated.wav": "truncated: the WAV data chunk declares",
        "elec/silent.wav": "silent clip: RMS -120.0 dBFS is below the silence threshold -60",
        "bd/clipped.wav": "clipping: ",
        "bd/aiff.wav": "AIFF files are not accepted (allowed: WAV, FLAC or OGG)",
        "bd/text.flac": "not a WAV, FLAC or OGG file: the content is not recognised",
        "bd/song.wav": "MP3 files are not accepted (allowed: WAV, FLAC or OGG)",
        "elec/empty.ogg": "empty file (0 bytes)",
    }


def _fingerprints(root: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(root).as_posix(): (sha256_file(p), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_folder_of_clips_every_reason_and_the_counts(project, samples, tmp_path):
    import soundfile as sf

    root = _good_folder(samples, tmp_path / "clips")
    expected = _broken_clips(samples, root)
    wave, rate = _real(samples, "elec_blup")  # a real clip as OGG Vorbis and as WAV: accepted
    sf.write(root / "elec" / "blup.ogg", wave, rate, format="OGG", subtype="VORBIS")
    sf.write(root / "elec" / "blup.wav", wave, rate, subtype="PCM_16")
    shutil.copy(samples / "tabla_ke1.flac", root / "no_class.flac")
    expected["no_class.flac"] = "no label: not inside a class sub-folder"
    (root / "elec" / "notes.txt").write_text("recorded in 2015\n")
    (root / "bd" / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    outside = tmp_path / "elsewhere.flac"
    shutil.copy(samples / "bd_zum.flac", outside)
    (root / "bd" / "linked.flac").symlink_to(outside)
    expected["bd/linked.flac"] = "symlink pointing outside the source folder: not read"
    before = _fingerprints(root)

    result = project.ingest(str(root), progress=False)

    assert result.n_samples == 8 and result.class_counts == {"bd": 3, "elec": 5}
    assert result.n_quarantined == len(expected) == 9
    assert result.n_skipped == 2
    assert result.data_format == "audio clips (read in place)"
    (note,) = result.source_notes
    assert note.startswith("2 file(s) skipped: not WAV, FLAC or OGG by their extension")
    assert "bd/cover.png" in note and "elec/notes.txt" in note
    reasons = dict(read_quarantine(project)[["sample_id", "reason"]].itertuples(index=False))
    assert set(reasons) == set(expected)
    for sample_id, start in expected.items():
        assert reasons[sample_id].startswith(start), (sample_id, reasons[sample_id])
    assert _fingerprints(root) == before  # originals only read


def test_manifest_rows_describe_each_original_clip(project, samples, tmp_path):
    import soundfile as sf

    root = _good_folder(samples, tmp_path / "clips")
    wave, rate = _real(samples, "elec_blup")
    sf.write(root / "elec" / "blup.ogg", wave, rate, format="OGG", subtype="VORBIS")
    project.ingest(str(root), progress=False)
    manifest = read_manifest(project).set_index("sample_id")
    assert sorted(manifest.index) == sorted(
        [f"{label}/{name}.flac" for label, names in CLIPS.items() for name in names]
        + ["elec/blup.ogg"]
    )
    row = manifest.loc["bd/bd_808.flac"]
    original = root / "bd" / "bd_808.flac"
    info = sf.info(samples / "bd_808.flac")
    assert row["path"] == row["origin_path"] == str(original)
    assert row["content_hash"] == sha256_file(original)
    assert row["bytes"] == original.stat().st_size
    assert row["mtime_ns"] == original.stat().st_mtime_ns
    assert row["format"] == "FLAC" and row["label"] == "bd"
    assert row["sample_rate"] == info.samplerate == 44_100
    assert row["channels"] == info.channels
    assert row["duration_s"] == pytest.approx(info.duration)
    assert -60 < row["rms_dbfs"] < 0 and 0 < row["peak"] < 1
    assert 0 <= row["silence_share"] < 1 and row["clipping_share"] <= 0.01
    assert manifest.loc["elec/blup.ogg", "format"] == "OGG"
    assert manifest["content_hash"].nunique() == len(manifest)


def test_limits_come_from_data_audio(project, samples, tmp_path):
    root = _good_folder(samples, tmp_path / "clips")  # bd_boom is the longest: 1.71 s, 46 kB
    shutil.copy(samples / "loop_amen.flac", root / "bd" / "loop_amen.flac")  # 1.75 s, 211 kB
    project.update_config({"data.audio.max_bytes": 100_000})
    project.ingest(str(root), progress=False)
    reasons = dict(read_quarantine(project)[["sample_id", "reason"]].itertuples(index=False))
    assert reasons == {
        "bd/loop_amen.flac": "too large: 210,769 bytes > limit 100,000 bytes (max_bytes)"
    }
    project.update_config({"data.audio.max_bytes": 50_000_000, "data.audio.max_seconds": 1.72})
    result = project.ingest(str(root), progress=False)
    reasons = dict(read_quarantine(project)[["sample_id", "reason"]].itertuples(index=False))
    assert reasons == {"bd/loop_amen.flac": "too long: 1.8 s > limit 1.72 s (max_seconds)"}
    assert result.n_samples == 6


def test_table_of_clip_paths(project, samples, tmp_path):
    root = _good_folder(samples, tmp_path / "data")
    outside = tmp_path / "outside.flac"
    shutil.copy(samples / "bd_zum.flac", outside)
    rows = ["path,label", "bd/bd_808.flac,bd", "elec/elec_beep.flac,elec"]
    rows += [f"{root / 'elec' / 'elec_bell.flac'},elec"]  # absolute, inside: a relative id
    rows += [f"{outside},bd", "bd/missing.flac,bd", "bd/bd_fat.flac,", "bd/bd_808.flac,bd"]
    rows += [f"{root / 'bd' / 'bd_boom.flac'},bd", "bd/./bd_boom.flac,bd"]
    table = root / "clips.csv"
    table.write_text("\n".join(rows) + "\n")
    result = project.ingest(str(table), progress=False)
    manifest = read_manifest(project)
    assert sorted(manifest["sample_id"]) == [
        "bd/bd_808.flac",
        "bd/bd_boom.flac",
        "elec/elec_beep.flac",
        "elec/elec_bell.flac",
    ]
    assert result.class_counts == {"bd": 2, "elec": 2}
    reasons = sorted(read_quarantine(project)["reason"])
    assert len(reasons) == 5
    assert reasons[0].startswith("duplicate id 'bd/bd_boom.flac'")
    assert reasons[1] == "file not found"
    assert reasons[2].startswith("row 4: outside the data folder")
    assert reasons[3] == "row 6: no label (empty or NaN label)"
    assert reasons[4].startswith("row 7: duplicate id 'bd/bd_808.flac'")


def test_folder_without_class_folders_and_other_files_are_refused(project, samples, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(samples / "bd_808.flac", flat / "bd_808.flac")
    with pytest.raises(DataError, match="no class sub-folders"):
        project.ingest(str(flat), progress=False)
    with pytest.raises(DataError, match="Cannot read audio source"):
        project.ingest(str(flat / "bd_808.flac"), progress=False)


def test_folder_ingest_reads_every_extension_dlw_predict_reads(project, samples, tmp_path):
    """.oga (OGG audio) is read by folder ingest as by `dlw predict` (one shared list)."""
    import soundfile as sf

    from dlworkflow.deploy.export.predict import SIGNAL_FILES

    root = _good_folder(samples, tmp_path / "clips")
    wave, rate = _real(samples, "elec_blup")
    sf.write(root / "elec" / "blup.oga", wave, rate, format="OGG", subtype="VORBIS")
    result = project.ingest(str(root), progress=False)
    assert (result.n_samples, result.n_quarantined, result.n_skipped) == (7, 0, 0)
    manifest = read_manifest(project).set_index("sample_id")
    assert manifest.loc["elec/blup.oga", "format"] == "OGG"
    assert set(SIGNAL_FILES["audio"]) >= {".wav", ".flac", ".ogg", ".oga"}
