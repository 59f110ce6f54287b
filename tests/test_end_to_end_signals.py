"""All nine steps through the CLI for the signal tasks, on the demos' real data.

sequence-classification: Japanese Vowels as `dlw demo` writes it (the archive's 270 training
utterances, and 247 of its 370 test utterances as the sealed test set through
`split.use_source_split`); step 9's data is the demo's: 62 held-back test utterances through a
simulated new recording chain, as .npy files with their labels.
audio-classification: the demo's 110 Sonic Pi clips (a folder of class sub-folders) at 8 kHz
and 1 s; step 9's data is the demo's: 20 held-back clips through a simulated phone channel.

Each test drives `dlw` from init to a retrained project (tests/cli_flow.py): init, define,
ingest, explore, split, augment-preview, train (1 epoch), test, export (with its parity
check), served requests (JSON series of two lengths; a clip upload), predict, report,
monitor with labels, retrain; and checks what each step leaves behind in the task's terms.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from cli_flow import predict_and_report, served, step9, steps_1_to_7
from dlworkflow.demo_plans import demo_plan
from dlworkflow.store import read_manifest
from dlworkflow.store.splits import read_assignments

FAST = {"evaluate.bootstrap_samples": 200}


def test_sequence_classification_through_all_nine_steps(tmp_path: Path):
    plan = demo_plan("sequence-classification")
    flow = steps_1_to_7(
        tmp_path,
        task="sequence-classification",
        source=plan.write_source(tmp_path),
        metric="accuracy",
        target=0.2,  # nine speakers: 1 epoch beats the 0.11 of chance
        config={
            **FAST,
            **plan.settings,
            "train.batch_size": 16,
            "augment.jitter": 0.03,
            "augment.time_warp": 0.2,
        },
    )
    root, meta = flow["root"], flow["meta"]
    assert "7 to 29 steps" in flow["eda"] or "7 to 29" in flow["eda"]
    frame = read_manifest(flow["project"]).merge(read_assignments(flow["project"]), on="sample_id")
    assert len(frame) == 517 and frame["channels"].eq(12).all()
    test_part = frame[frame["split"] == "test"]
    assert len(test_part) == 247 and test_part["source_split"].eq("test").all()
    assert test_part["label"].nunique() == 9  # every speaker is in the sealed test set
    assert meta["preprocessing"]["modality"] == "sequence" and len(meta["classes"]) == 9
    baselines = flow["verdict"]["report"]["baselines"]
    assert (
        "DTW" in baselines["simple"]["model"] and "Euclidean" in baselines["nn_euclidean"]["model"]
    )

    incoming = plan.write_incoming(tmp_path)
    arrays = sorted(incoming.glob("*.npy"))
    short, long_ = (np.load(f) for f in arrays[:2])
    answers = served(root, {"series": [short.tolist(), long_[:, :5].tolist()]})
    assert len(answers) == 2 and all(a["label"] in meta["classes"] for a in answers)
    predicted = predict_and_report(flow, arrays[:4], tmp_path)
    assert len(predicted) == 4
    monitored = step9(flow, inputs=incoming, labels=plan.write_labels(incoming), fresh=incoming)
    moved = {c["name"] for c in monitored["checks"] if c.get("alert")}
    assert any("std" in name or "mean" in name for name in moved), monitored["checks"]


def test_audio_classification_through_all_nine_steps(tmp_path: Path):
    plan = demo_plan("audio-classification")
    flow = steps_1_to_7(
        tmp_path,
        task="audio-classification",
        source=plan.write_source(tmp_path),
        metric="accuracy",
        target=0.05,
        config={
            **FAST,
            **plan.settings,
            "data.audio.sample_rate": 8_000,
            "data.audio.duration": 1.0,
            "augment.gain_db": 6.0,
            "augment.time_mask": 4,
        },
    )
    root, meta = flow["root"], flow["meta"]
    assert "Audio" in flow["eda"] and "dBFS" in flow["eda"]
    frame = read_manifest(flow["project"])
    assert len(frame) >= 100 and frame["duration_s"].gt(0).all()
    prep = meta["preprocessing"]
    assert prep["modality"] == "audio" and prep["sample_rate"] == 8_000
    assert prep["duration"] == 1.0

    incoming = plan.write_incoming(tmp_path)
    clips = sorted(incoming.rglob("*.wav"))
    answers = served(root, {"clips": [base64.b64encode(clips[0].read_bytes()).decode()]})
    assert answers[0]["label"] in meta["classes"]
    upload = served(root, {}, files=[("files", (clips[1].name, clips[1].read_bytes()))])
    assert upload[0]["label"] in meta["classes"]
    predicted = predict_and_report(flow, clips[:3], tmp_path)
    assert len(predicted) == 3
    step9(flow, inputs=incoming, labels=plan.write_labels(incoming), fresh=incoming)
