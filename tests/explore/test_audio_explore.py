"""dlw explore on audio-classification: the audio section (duration, sample rate, loudness,
silence, clipping, log-mel spectrograms by class), near-duplicate clips by log-mel
fingerprint, warnings and the ledger's record; built through the real ingest of
builtin:sonic-pi and of a small folder of its clips with planted copies."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from dlworkflow.datasets.sonic_pi import sonic_pi_clips
from dlworkflow.explore import audio_view as av
from dlworkflow.project import Project
from dlworkflow.store import read_manifest
from dlworkflow.store.clips import ClipSettings, decode_clip


def _section(html: str, title: str) -> str:
    start = html.index(title)
    return html[start : html.index("</section>", start)]


def test_fingerprint_finds_a_reencoded_quieter_copy_and_no_distinct_clip():
    clips = sonic_pi_clips()[::4]
    settings = ClipSettings()
    spectra = [av.log_mel(decode_clip(path, settings), settings.sample_rate) for path, _ in clips]
    data, rate = sf.read(str(clips[0][0]), dtype="float32")
    copy = resample_poly(data, 1, 2, axis=0) * 0.5  # 22.05 kHz, 6 dB quieter
    spectra.append(av.log_mel(decode_clip(_wav(copy, rate // 2), settings), 16_000))
    vectors = av.fingerprints(spectra)
    assert vectors.shape == (len(clips) + 1, av.FINGERPRINT_BANDS * av.FINGERPRINT_FRAMES)
    distance = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    assert distance[0, -1] < av.NEAR_RMS / 4  # the copy
    assert distance[:-1, :-1].min() > av.NEAR_RMS  # distinct clips, even two tabla strokes
    features = av.clip_features(spectra)
    assert features.X.shape == (len(spectra), 2 * av.FEATURE_BANDS)
    durations = np.full(len(spectra), 1.5)
    assert av.clip_features(spectra, durations).X.shape == (len(spectra), 2 * av.FEATURE_BANDS + 1)


def _wav(samples: np.ndarray, rate: int) -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV")
    return buffer.getvalue()


def test_explore_sonic_pi_through_ingest(tmp_path):
    project = Project.init(tmp_path / "sonic", task="audio-classification")
    project.ingest("builtin:sonic-pi", progress=False)
    result = project.explore(progress=False)
    manifest = read_manifest(project)
    assert result.n_samples == len(manifest) == 148 and result.n_classes == 10
    audio = _section(Path(result.report).read_text(encoding="utf-8"), "4. Audio")
    cropped = int((manifest["duration_s"] > 2.0).sum())
    assert "148 clips of 0.0194 to 10.7 s" in audio
    assert "Sample rates: 44,100 Hz (148)" in audio
    padded = int((manifest["duration_s"] < 2.0).sum())  # one clip is 2 s exactly
    assert f"{cropped} clips cropped" in audio and f"{padded} zero-padded" in audio
    assert "Log-mel spectrograms by class" in audio
    assert len(re.findall(r"data:image/png;base64,", audio)) == 5  # 4 histograms, the grid
    median_loop = float(np.median(manifest.loc[manifest["label"] == "loop", "duration_s"]))
    assert f"<td>loop</td><td>17</td><td>{median_loop:,.3g}</td>" in audio
    clipped = int((manifest["clipping_share"] > 0).sum())
    assert any(f"{clipped} clips with clipped samples" in w.text for w in result.warnings)
    record = project.ledger.latest("explore").summary["audio"]
    assert record["n_clips"] == 148 and record["sample_rates"] == {"44100": 148}
    assert record["cropped"] == cropped and record["clipped"] == clipped
    mapped = _section(Path(result.report).read_text(encoding="utf-8"), "6. 2-D map")
    assert "log-mel mean and std over time in 16 bands, and the clip&#x27;s duration" in mapped


def test_explore_audio_folder_flags_copies_and_silence(tmp_path):
    chosen = {}
    for path, label in sonic_pi_clips():
        if label in ("bd", "elec", "tabla") and len(chosen.setdefault(label, [])) < 6:
            chosen[label].append(Path(path))
    root = tmp_path / "clips"
    for label, paths in chosen.items():
        (root / label).mkdir(parents=True)
        for path in paths:
            shutil.copy(path, root / label / path.name)
    shutil.copy(chosen["bd"][0], root / "elec" / "copy_of_bd.flac")  # exact, conflicting
    data, rate = sf.read(str(chosen["tabla"][1]), dtype="float32")
    (root / "tabla" / "near.wav").write_bytes(
        _wav(resample_poly(data, 1, 2, axis=0) * 0.5, rate // 2)
    )
    tone = 0.3 * np.sin(np.linspace(0, 2 * np.pi * 440, 44_100)).astype(np.float32)
    quiet = np.concatenate([tone[:4_000], np.zeros(40_100, np.float32)])  # 90% silence
    sf.write(root / "bd" / "mostly_silent.wav", quiet, 44_100)
    project = Project.init(tmp_path / "proj", task="audio-classification")
    project.update_config({"explore.label_issues": False})
    project.ingest(str(root), progress=False)
    result = project.explore(progress=False)
    assert result.n_samples == 21
    assert (result.exact_groups, result.exact_conflicting) == (1, 1)
    assert result.near_pairs == 1 and result.near_conflicting == 0
    # the planted clip (90% silent) and tabla_dhec (53%): 9.5% of the clips, under medium's 10%
    assert any(
        w.severity == "low" and "2 clips (10%) mostly silent" in w.text for w in result.warnings
    )
    html = Path(result.report).read_text(encoding="utf-8")
    audio = _section(html, "4. Audio")
    assert "Sample rates: 22,050 Hz (1), 44,100 Hz (20)" in audio
    assert "Formats: FLAC (19), WAV (2)" in audio
    listed = audio[audio.index("Mostly silent clips") :]
    assert listed.index("mostly_silent.wav") < listed.index("tabla_dhec.flac")
    duplicates = _section(html, "5. Duplicates")
    assert "log-mel fingerprints" in duplicates and "class='plot'" in duplicates
    assert f"tabla/{chosen['tabla'][1].name}" in duplicates and "tabla/near.wav" in duplicates
    gap = float(re.search(r"RMS difference ([0-9.e-]+)", duplicates).group(1))
    assert gap == pytest.approx(0.0, abs=av.NEAR_RMS / 4)
