"""Step 9 for sequence-classification: what the monitor observes of each series (length and
per-channel level and spread over the real steps of a NaN-padded batch), and the drift checks
on real UCR data (GunPoint, BasicMotions, JapaneseVowels): the held-out split raises no alert,
a scaled or truncated batch alerts on the feature that moved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from monitor_flow import FLOW_SETTINGS, dlw, fresh_log, serve, train_and_export

from dlworkflow.config import Monitor
from dlworkflow.monitor.drift import feature_label, run_checks, short_name
from dlworkflow.monitor.logread import to_sample
from dlworkflow.runtime.observe import SERIES_CHANNELS, series_summaries
from dlworkflow.store import read_manifest
from dlworkflow.store.series import nan_padded


def _ucr(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from dlworkflow.datasets.ucr import load_ucr

    train, test = load_ucr(name)
    return list(train.series), list(test.series)


def _records(batch: np.ndarray) -> list[dict]:
    """Prediction records whose predictions are alike on both sides: only inputs differ."""
    return [
        {
            "ts": f"2026-11-27T10:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
            "id": f"s{i}",
            "model_version": 1,
            "input": summary,
            "label": "a" if i % 2 else "b",
            "confidence": 0.9,
            "probs": [0.9, 0.1] if i % 2 else [0.1, 0.9],
        }
        for i, summary in enumerate(series_summaries(batch))
    ]


def _alerts(reference: list[np.ndarray], live: list[np.ndarray]) -> list[str]:
    drift = run_checks(
        to_sample(_records(nan_padded(reference))),
        to_sample(_records(nan_padded(live))),
        config=Monitor(),
        seed=0,
    )
    assert all(c.group != "embedding" for c in drift.checks)  # these records carry none
    return [c.name for c in drift.alerts if c.group == "input"]


def test_series_summaries_measure_only_the_real_steps_of_variable_length_series():
    train, _ = _ucr("JapaneseVowels")
    series = train[:40]
    assert len({s.shape[1] for s in series}) > 1  # variable length: NaN-padded below
    summaries = series_summaries(nan_padded(series))
    for s, summary in zip(series, summaries):
        assert summary["kind"] == "series"
        assert summary["length"] == s.shape[1]
        assert summary["channels"] == s.shape[0] == 12
        np.testing.assert_allclose(summary["channel_means"], s.mean(axis=1), atol=1e-4)
        np.testing.assert_allclose(summary["channel_stds"], s.std(axis=1), atol=1e-4)
    sample = to_sample(_records(nan_padded(series)))
    assert sample.kind == "series"
    assert set(sample.features) == {"length"} | {
        f"series_{stat}_{c}" for stat in ("mean", "std") for c in range(12)
    }
    np.testing.assert_array_equal(sample.features["length"], [s.shape[1] for s in series])


def test_many_channels_are_pooled_into_one_level_and_one_spread():
    rng = np.random.default_rng(0)
    wide = [
        rng.normal(2.0, 3.0, (SERIES_CHANNELS + 4, 50 + i)).astype(np.float32) for i in range(5)
    ]
    summaries = series_summaries(nan_padded(wide))
    for s, summary in zip(wide, summaries):
        assert "channel_means" not in summary
        assert summary["mean"] == pytest.approx(float(s.mean()), abs=1e-4)
        assert summary["std"] == pytest.approx(float(s.std()), abs=1e-4)
    assert set(to_sample(_records(nan_padded(wide))).features) == {
        "length",
        "series_mean",
        "series_std",
    }


def test_empty_series_is_logged_with_null_statistics_not_a_crash():
    batch = np.full((1, 2, 5), np.nan, dtype=np.float32)
    (summary,) = series_summaries(batch)
    assert summary["length"] == 0
    assert summary["channel_means"] == [None, None]


def test_gunpoint_test_split_does_not_alert_and_scaled_series_alert_on_spread():
    train, test = _ucr("GunPoint")
    assert _alerts(train, test) == []
    scaled = _alerts(train, [3.0 * s for s in test])
    assert "channel 0 std" in scaled  # x3 spreads the z-normalised series
    assert "series length" not in scaled
    truncated = _alerts(train, [s[:, : s.shape[1] // 2] for s in test])
    assert "series length" in truncated


def test_basic_motions_scaling_moves_the_channel_spreads_not_the_length():
    train, test = _ucr("BasicMotions")
    assert _alerts(train, test) == []
    scaled = _alerts(train, [3.0 * s for s in test])
    stds = [name for name in scaled if name.endswith(" std")]
    assert len(stds) >= 4  # six accelerometer and gyroscope channels, most of them move
    assert "series length" not in scaled


def test_feature_words_for_a_decision_maker():
    assert short_name("series_std_2") == "channel 2 std"
    assert "spread" in feature_label("series_std_2")
    assert "raw values" in feature_label("series_mean_0")
    assert feature_label("length") == "series length (time steps)"


# ---- the CLI flow: a trained GunPoint project, served traffic, dlw monitor and dlw retrain --
TOKEN = "series-monitor-token-" + "s" * 24


def _npy_folder(folder: Path, series: list[np.ndarray], labels: list[str], prefix: str) -> Path:
    """A folder of .npy series with its labels.csv (file,label): a `dlw ingest` source."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (s, label) in enumerate(zip(series, labels)):
        name = f"{prefix}{i:03d}.npy"
        np.save(folder / name, np.asarray(s, dtype=np.float32))
        rows.append(f"{name},{label}\n")
    (folder / "labels.csv").write_text("file,label\n" + "".join(rows))
    return folder


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """A GunPoint project on the 50 train series and the first 10 test series (.npy folder),
    trained one epoch, tested and exported as v1; the next 100 test series held out, as
    (series, labels)."""
    from dlworkflow.datasets.ucr import load_ucr
    from dlworkflow.project import Project

    root = tmp_path_factory.mktemp("series-flow")
    train, test = load_ucr("GunPoint")
    series = list(train.series) + list(test.series[:10])
    labels = [str(v) for v in list(train.labels) + list(test.labels[:10])]
    source = _npy_folder(root / "data", series, labels, "s")
    project = Project.init(root / "proj", task="sequence-classification")
    project.define(metric="accuracy", target=0.05)
    project.update_config(FLOW_SETTINGS)
    train_and_export(project, source)
    held = [np.asarray(s, dtype=np.float32) for s in test.series[10:110]]
    return project, held, [str(v) for v in test.labels[10:110]]


def _serve(root: Path, series: list[np.ndarray]) -> list[dict]:
    """POST the series (JSON lists, 25 a request: serve.max_batch is 32) to the champion."""
    bodies = [
        {"series": [s.tolist() for s in series[start : start + 25]]}
        for start in range(0, len(series), 25)
    ]
    return serve(root, TOKEN, bodies)


def test_dlw_monitor_alerts_on_scaled_served_series_with_labels(flow, tmp_path):
    project, held, labels = flow
    root = project.root
    _serve(root, held)
    calm = dlw("monitor", "-p", root, "--json")
    assert calm.exit_code == 0, calm.output[-3000:]
    report = json.loads(calm.output)
    names = {c["name"] for c in report["checks"]}
    assert {"series length", "channel 0 mean", "channel 0 std", "embedding MMD"} <= names
    assert not [c["name"] for c in report["checks"] if c["alert"]]

    fresh_log(root)
    served = _serve(root, [3.0 * s for s in held])
    answers = tmp_path / "labels.csv"
    answers.write_text("id,label\n" + "".join(f"{p['id']},{y}\n" for p, y in zip(served, labels)))
    shifted = dlw("monitor", "-p", root, "--labels", answers, "--json")
    assert shifted.exit_code == 4, shifted.output[-3000:]
    report = json.loads(shifted.output)
    alerts = {c["name"] for c in report["checks"] if c["alert"]}
    assert "channel 0 std" in alerts and "series length" not in alerts
    assert report["labelled"] == len(held)
    spread = next(c for c in report["checks"] if c["name"] == "channel 0 std")
    assert spread["live"] == pytest.approx(3.0 * spread["reference"], rel=0.25)
    html = (root / "reports" / "monitor.html").read_text()
    assert "channel 0 spread: std over the series" in html


def test_dlw_monitor_inputs_reads_a_folder_of_series_files(flow, tmp_path):
    project, held, labels = flow
    folder = tmp_path / "recent"
    folder.mkdir()
    for i, s in enumerate(held[:60]):
        np.save(folder / f"r{i:03d}.npy", 3.0 * s)
    (folder / "broken.npy").write_bytes(b"not an array")
    result = dlw("monitor", "-p", project.root, "--inputs", folder, "--json")
    assert result.exit_code == 4, result.output[-3000:]
    report = json.loads(result.output)
    assert report["n_live"] == 60 and report["skipped"] == 1
    assert "channel 0 std" in {c["name"] for c in report["checks"] if c["alert"]}


def test_the_reference_measures_the_series_as_ingest_stored_them(flow):
    """The reference's length and channel statistics of each validation series are those of
    the stored series (the manifest's length column, store.series.read_series)."""
    from dlworkflow.monitor.reference import load_reference
    from dlworkflow.runtime.bundle import load_bundle
    from dlworkflow.runtime.versions import champion_folder
    from dlworkflow.store.series import read_series

    project, _, _ = flow
    reference = load_reference(project, load_bundle(champion_folder(project.root)))
    manifest = read_manifest(project).set_index("sample_id")
    assert len(reference.records) >= 10
    for record in reference.records:
        row, summary = manifest.loc[record["id"]], record["input"]
        stored = read_series(row["path"])
        assert summary["length"] == int(row["length"]) == stored.shape[1]
        np.testing.assert_allclose(summary["channel_stds"], stored.std(axis=1), atol=1e-4)
        assert len(record["emb"]) == 32


# last: the retrain may promote a new champion
def test_dlw_retrain_takes_fresh_series(flow, tmp_path):
    project, held, labels = flow
    fresh = _npy_folder(tmp_path / "fresh", held[:40], labels[:40], "f")
    retrained = dlw("retrain", "--data", fresh, "-p", project.root)
    assert retrained.exit_code in (0, 3), retrained.output[-3000:]
    decision = project.ledger.latest("retrain")
    assert decision is not None and decision.outputs["outcome"] in ("promoted", "kept out")
    added = read_manifest(project)["sample_id"].astype(str).str.startswith("add1/")
    assert added.sum() == 40  # every fresh series joined the data
