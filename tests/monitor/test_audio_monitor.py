"""Step 9 for audio-classification: what the monitor observes of each clip (duration,
loudness and silence share of the original clip, spectral centroid of the waveform the
network takes), and the drift checks on the real sonic-pi clips: another half of the clips
raises no alert, clips 20 dB quieter alert on loudness, truncated clips on duration."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from monitor_flow import FLOW_SETTINGS, dlw, fresh_log, serve, train_and_export

from dlworkflow.config import Monitor
from dlworkflow.monitor.drift import feature_label, run_checks
from dlworkflow.monitor.logread import to_sample
from dlworkflow.runtime.bundle import InputError
from dlworkflow.runtime.observe import clip_summaries, measured_clips
from dlworkflow.store import read_manifest
from dlworkflow.store.clips import ClipSettings, decode_clip

sf = pytest.importorskip("soundfile")
SETTINGS = ClipSettings(sample_rate=16_000, duration=2.0)


@pytest.fixture(scope="module")
def halves() -> tuple[list[str], list[str]]:
    from dlworkflow.datasets.sonic_pi import sonic_pi_clips

    clips = sonic_pi_clips()
    order = np.random.default_rng(0).permutation(len(clips))
    paths = [str(clips[i][0]) for i in order]
    return paths[:75], paths[75:]


@pytest.fixture(scope="module")
def reference(halves):
    return to_sample(_records(_summaries(halves[0])))


def _summaries(values: list) -> list[dict]:
    x, originals = measured_clips(values, SETTINGS)
    return clip_summaries(
        x, SETTINGS.sample_rate, originals=originals, silence_dbfs=SETTINGS.silence_dbfs
    )


def _records(summaries: list[dict]) -> list[dict]:
    return [
        {
            "ts": f"2026-11-27T10:00:{i % 60:02d}+00:00",
            "id": f"c{i}",
            "model_version": 1,
            "input": summary,
            "label": "drum" if i % 2 else "ambi",
            "confidence": 0.8,
        }
        for i, summary in enumerate(summaries)
    ]


def _wav(
    path: str, *, gain_db: float = 0.0, keep: float = 1.0, seconds: float | None = None
) -> bytes:
    """The clip as WAV: `gain_db` louder, its first `keep` share or `seconds`."""
    data, rate = sf.read(path, dtype="float32")
    frames = int(len(data) * keep) if seconds is None else int(rate * seconds)
    data = data[: max(1, frames)] * np.float32(10 ** (gain_db / 20))
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _alerts(reference, values: list) -> list[str]:
    drift = run_checks(reference, to_sample(_records(_summaries(values))), config=Monitor(), seed=0)
    return [c.name for c in drift.alerts if c.group == "input"]


def test_clip_summaries_measure_the_original_clip_and_the_network_waveform(halves):
    path = next(p for p in halves[0] if sf.info(p).duration < SETTINGS.duration / 2)
    info = sf.info(path)  # shorter than the network's 2 s: the fixed policy zero-pads it
    (summary,) = _summaries([path])
    assert summary["kind"] == "audio"
    assert summary["duration_s"] == pytest.approx(info.frames / info.samplerate, abs=1e-4)
    assert summary["centroid_hz"] > 0
    # without the original, the decoded waveform stands in (its zero padding left out)
    wave = decode_clip(path, SETTINGS)
    (alone,) = clip_summaries(wave[None, :], SETTINGS.sample_rate)
    assert alone["duration_s"] == pytest.approx(summary["duration_s"], abs=2e-3)
    assert alone["rms_dbfs"] == pytest.approx(summary["rms_dbfs"], abs=1.0)
    assert alone["centroid_hz"] == summary["centroid_hz"]


def test_twenty_db_quieter_is_twenty_db_lower_in_the_log(halves):
    path = halves[0][1]
    (loud,) = _summaries([path])
    (quiet,) = _summaries([_wav(path, gain_db=-20.0)])
    assert quiet["rms_dbfs"] - loud["rms_dbfs"] == pytest.approx(-20.0, abs=0.05)
    assert quiet["duration_s"] == pytest.approx(loud["duration_s"], abs=1e-4)
    assert quiet["centroid_hz"] == pytest.approx(loud["centroid_hz"], rel=1e-3)


def test_other_clips_do_not_alert_quiet_and_truncated_clips_do(halves, reference):
    live = halves[1]
    assert _alerts(reference, live) == []
    quiet = _alerts(reference, [_wav(p, gain_db=-20.0) for p in live])
    assert "loudness" in quiet
    assert "clip duration" not in quiet and "spectral centroid" not in quiet
    truncated = _alerts(reference, [_wav(p, keep=0.3) for p in live])
    assert "clip duration" in truncated


def test_a_clip_that_cannot_be_decoded_is_named_by_its_index(halves):
    with pytest.raises(InputError) as caught:
        measured_clips([halves[0][0], b"RIFF not really a wave file"], SETTINGS)
    assert caught.value.context["index"] == 1
    assert caught.value.context["reason"]


def test_audio_feature_words():
    assert "dBFS" in feature_label("rms_dbfs")
    assert "Hz" in feature_label("centroid_hz")
    assert feature_label("duration_s") == "clip duration (seconds)"


# ---- the CLI flow: a trained audio project, served traffic, dlw monitor and dlw retrain -----
TOKEN = "audio-monitor-token-" + "a" * 24
FLOW_CLASSES = ("ambi", "bd", "drum", "elec")  # four sonic-pi classes, 8-22 clips each


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """An audio project on half of the clips of four sonic-pi classes (copied into class
    folders), trained one epoch, tested and exported as v1; the other half held out, as
    [(path, class)]."""
    import shutil

    from dlworkflow.datasets.sonic_pi import sonic_pi_clips
    from dlworkflow.project import Project

    root = tmp_path_factory.mktemp("audio-flow")
    clips = [(p, c) for p, c in sonic_pi_clips() if c in FLOW_CLASSES]
    project_clips, held_out = clips[::2], clips[1::2]
    for path, label in project_clips:
        (root / "data" / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / "data" / label / path.name)
    project = Project.init(root / "proj", task="audio-classification")
    project.define(metric="accuracy", target=0.05)
    project.update_config({"data.audio.duration": 1.0, **FLOW_SETTINGS})
    train_and_export(project, root / "data")
    return project, held_out


def _serve(root, clips: list[bytes]) -> list[dict]:
    """POST the clips (base64 JSON, 16 a request: serve.max_batch is 32) to the champion."""
    import base64

    bodies = [
        {"clips": [base64.b64encode(c).decode("ascii") for c in clips[start : start + 16]]}
        for start in range(0, len(clips), 16)
    ]
    return serve(root, TOKEN, bodies)


def test_dlw_monitor_alerts_on_quiet_served_clips_with_labels(flow, tmp_path):
    project, held_out = flow
    root = project.root
    clips = [Path(p).read_bytes() for p, _ in held_out]
    _serve(root, clips)
    calm = dlw("monitor", "-p", root, "--json")
    assert calm.exit_code == 0, calm.output[-3000:]
    report = json.loads(calm.output)
    names = {c["name"]: c for c in report["checks"]}
    assert {"loudness", "clip duration", "spectral centroid", "silence share"} <= set(names)
    assert "embedding MMD" in names  # the export's "features" output is logged
    assert not [c["name"] for c in report["checks"] if c["alert"]]

    fresh_log(root)
    quiet = [_wav(str(p), gain_db=-20.0) for p, _ in held_out]
    served = _serve(root, quiet)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "id,label\n" + "".join(f"{p['id']},{c}\n" for p, (_, c) in zip(served, held_out))
    )
    shifted = dlw("monitor", "-p", root, "--labels", labels, "--json")
    assert shifted.exit_code == 4, shifted.output[-3000:]
    report = json.loads(shifted.output)
    alerts = {c["name"] for c in report["checks"] if c["alert"]}
    assert "loudness" in alerts
    assert "clip duration" not in alerts
    assert report["labelled"] == len(held_out)
    loud = next(c for c in report["checks"] if c["name"] == "loudness")
    assert loud["live"] < loud["reference"] - 15  # dBFS: 20 dB quieter
    html = (root / "reports" / "monitor.html").read_text()
    assert "loudness (RMS level, dBFS" in html and "ALERT" in html
    assert "Input distributions: reference (grey) against live (red)" in html


def test_dlw_monitor_inputs_reads_a_folder_of_clips(flow, tmp_path):
    project, held_out = flow
    folder = tmp_path / "recent"
    folder.mkdir()
    for i, (path, _) in enumerate(held_out):
        (folder / f"r{i:03d}.wav").write_bytes(_wav(str(path), seconds=0.1))  # cut short
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    result = dlw("monitor", "-p", project.root, "--inputs", folder, "--json")
    assert result.exit_code == 4, result.output[-3000:]
    report = json.loads(result.output)
    assert report["n_live"] == len(held_out) and report["skipped"] == 1
    assert "clip duration" in {c["name"] for c in report["checks"] if c["alert"]}


def test_the_reference_measures_the_clips_as_ingest_did(flow):
    """The reference's duration, loudness and silence share of each validation clip are
    ingest's own measures of it (the manifest's columns): live and reference compare alike."""
    from dlworkflow.monitor.reference import load_reference
    from dlworkflow.runtime.bundle import load_bundle
    from dlworkflow.runtime.versions import champion_folder

    project, _ = flow
    reference = load_reference(project, load_bundle(champion_folder(project.root)))
    manifest = read_manifest(project).set_index("sample_id")
    assert len(reference.records) >= 10
    for record in reference.records:
        row, summary = manifest.loc[record["id"]], record["input"]
        assert summary["kind"] == "audio" and len(record["emb"]) == 32
        assert summary["duration_s"] == pytest.approx(float(row["duration_s"]), abs=1e-4)
        assert summary["rms_dbfs"] == pytest.approx(float(row["rms_dbfs"]), abs=1e-3)
        assert summary["silence_share"] == pytest.approx(float(row["silence_share"]), abs=1e-4)


# last: the retrain may promote a new champion
def test_dlw_retrain_takes_fresh_clips(flow, tmp_path):
    project, held_out = flow
    root = project.root
    fresh = tmp_path / "fresh"
    quiet = [_wav(str(p), gain_db=-20.0) for p, _ in held_out]
    for (path, label), data in zip(held_out, quiet):
        (fresh / label).mkdir(parents=True, exist_ok=True)
        (fresh / label / (Path(path).stem + ".wav")).write_bytes(data)
    retrained = dlw("retrain", "--data", fresh, "-p", root)
    assert retrained.exit_code in (0, 3), retrained.output[-3000:]
    decision = project.ledger.latest("retrain")
    assert decision is not None and decision.outputs["outcome"] in ("promoted", "kept out")
    added = read_manifest(project)["sample_id"].astype(str).str.startswith("add1/")
    assert added.sum() == len(held_out)  # every fresh clip joined the data
