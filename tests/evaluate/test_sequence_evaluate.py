"""Evaluation of sequence classification on real series: the 1-NN baselines on GunPoint's own
train/test division (Euclidean 0.9133, the archive's published error 0.087), their caps,
the baselines of a project (ingested builtin:gunpoint), automatic slices by length and the
archive's own division (JapaneseVowels: variable length), occlusion importance of channels
and time segments (BasicMotions, a network that reads one channel only), and the pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dlworkflow.datasets.ucr import load_ucr
from dlworkflow.evaluate import nearest_baselines as nb
from dlworkflow.evaluate import signal_importance
from dlworkflow.evaluate.auto_slices import auto_columns
from dlworkflow.evaluate.baselines import baselines
from dlworkflow.evaluate.importance import falls, metric_score, probability_falls
from dlworkflow.evaluate.sample_figures import importance_bars_png, series_png
from dlworkflow.evaluate.signal_importance import SEGMENTS, series_occlusion
from dlworkflow.models.predict import label_indices
from dlworkflow.project import Project
from dlworkflow.store import load_split, read_manifest
from dlworkflow.store.series import write_series
from dlworkflow.tasks import task_of

PNG = b"\x89PNG\r\n\x1a\n"
KW = {"n_resamples": 200, "confidence": 0.95, "seed": 0}


def _indices(labels: list[str], classes: list[str]) -> np.ndarray:
    return np.array([classes.index(x) for x in labels])


@pytest.fixture(scope="module")
def gunpoint() -> tuple:
    train, test = load_ucr("GunPoint")
    classes = sorted(set(train.labels or []))
    return train, test, classes


def test_nearest_neighbours_on_gunpoint_official_split(gunpoint):
    train, test, classes = gunpoint
    y, truth = _indices(train.labels, classes), _indices(test.labels, classes)
    euclid, info = nb.euclidean_proba(train.series, y, test.series, k=2, seed=0)
    assert euclid.shape == (150, 2) and set(np.unique(euclid)) == {0.0, 1.0}
    assert np.mean(euclid.argmax(1) == truth) == pytest.approx(137 / 150)  # 0.9133
    assert info["n_train"] == 50 and "note" not in info
    dtw, chosen, d_info = nb.dtw_proba(train.series, y, test.series, k=2, seed=0)
    assert len(chosen) == 150 and d_info["n"] == 150 and "note" not in d_info
    # a 10% band; the archive's full-window DTW error is 0.093, its best band's 0.087
    assert np.mean(dtw.argmax(1) == truth) >= 0.9


def test_dtw_caps_are_written_down(gunpoint, monkeypatch):
    train, test, classes = gunpoint
    y, truth = _indices(train.labels, classes), _indices(test.labels, classes)
    monkeypatch.setattr(nb, "MAX_DTW_LENGTH", 60)
    monkeypatch.setattr(nb, "MAX_DTW_CELLS", 2_000_000)
    monkeypatch.setattr(nb, "MIN_DTW_TRAIN", 10)
    proba, chosen, info = nb.dtw_proba(train.series, y, test.series, k=2, seed=0)
    assert info["n_train"] < 50 and info["n"] == len(chosen) == len(proba) < 150
    assert "resampled" in info["note"] and "subsample" in info["note"]
    assert len(np.unique(chosen)) == len(chosen)
    # fewer, shorter neighbours still classify far better than chance
    assert np.mean(proba.argmax(1) == truth[chosen]) > 0.6
    monkeypatch.setattr(nb, "MAX_EUCLIDEAN_LENGTH", 50)
    euclid, e_info = nb.euclidean_proba(train.series, y, test.series, k=2, seed=0)
    assert "resampled by 0.333 (longest 150 -> 50)" in e_info["note"]
    assert np.mean(euclid.argmax(1) == truth) > 0.8
    kept = nb._subsample_train(y, 2, seed=0)  # one of each class first
    assert sorted(y[kept].tolist()) == [0, 1]


@pytest.fixture(scope="module")
def gunpoint_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.init(tmp_path_factory.mktemp("gp"), task="sequence-classification")
    project.ingest("builtin:gunpoint", progress=False)
    project.split()
    return project


def test_project_baselines_are_both_nearest_neighbours(gunpoint_project):
    rows = load_split(gunpoint_project, "val")
    classes = sorted(load_split(gunpoint_project, "train")["label"].astype(str).unique())
    y = label_indices(rows, classes)
    network = np.eye(len(classes))[y]  # a network that is always right
    meta = {"classes": classes, "modality": "sequence"}
    b = baselines(gunpoint_project, meta, rows, y, network, metric="accuracy", **KW)
    assert b["simple"]["model"].startswith("1-nearest-neighbour, DTW")
    assert b["nn_euclidean"]["model"].startswith("1-nearest-neighbour, Euclidean")
    for key in ("simple", "nn_euclidean", "majority"):
        entry = b[key]
        assert entry["low"] <= entry["value"] <= entry["high"], key
    assert b["nn_euclidean"]["value"] > 0.7 and b["simple"]["value"] > 0.7
    assert b["majority"]["value"] < 0.7
    assert b["network"]["value"] == 1.0
    # the paired interval of network - DTW lies at or above 0 and says the network is better
    # unless DTW is perfect too
    assert b["difference"]["high"] >= 0.0
    assert b["simple_as_good"] == (b["simple"]["value"] == 1.0 or b["difference"]["low"] <= 0)


def test_auto_slices_by_length_and_source_split(tmp_path):
    project = Project.init(tmp_path, task="sequence-classification")
    project.ingest("builtin:japanese-vowels", progress=False)
    rows = read_manifest(project)
    frame = auto_columns(rows, modality="sequence", important=[])
    assert "length (steps)" in frame.columns
    assert frame["length (steps)"].nunique() > 10  # sliced by quartile of the lengths
    # the archive's TRAIN and TEST files: the source folder of each id, once (not again as
    # the source split, which cuts the rows the same way)
    assert set(frame["source"]) == {"train", "test"} and "source split" not in frame.columns
    assert (frame["source"] == rows["source_split"]).all()
    assert "channels" not in frame.columns  # 12 channels everywhere: says nothing
    cuts = [tuple(pd.factorize(frame[c].astype(str))[0]) for c in frame.columns]
    assert len(set(cuts)) == len(cuts)  # no column repeats another's grouping
    twin = rows.drop(columns=["group"]).assign(group=rows["source_split"])
    frame_twin = auto_columns(twin, modality="sequence", important=[])
    assert "group" in frame_twin.columns and "source split" not in frame_twin.columns


class OneChannel(torch.nn.Module):
    """Nearest class mean on channel `channel` alone (the other channels are never read)."""

    def __init__(self, means: np.ndarray, channel: int) -> None:
        super().__init__()
        self.means = torch.from_numpy(means.astype(np.float32))  # (K, T)
        self.channel = channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        signal = torch.nan_to_num(x[:, self.channel], nan=0.0)  # (N, T)
        return -((signal[:, None, :] - self.means[None]) ** 2).mean(dim=2)


def test_series_occlusion_finds_the_one_channel_used(tmp_path, monkeypatch):
    train, test = load_ucr("BasicMotions")
    classes = sorted(set(train.labels or []))
    y_train = _indices(train.labels, classes)
    stacked = np.stack(train.series)  # (40, 6, 100)
    means = np.stack([stacked[y_train == k, 0].mean(axis=0) for k in range(len(classes))])
    model = OneChannel(means, channel=0)
    paths = [str(write_series(tmp_path, s)[0]) for s in test.series]
    rows = pd.DataFrame({"path": paths, "label": test.labels})
    task = task_of("sequence-classification")
    chosen, base, ablations, info = series_occlusion(
        None, model, {}, task, rows, {}, np.random.default_rng(0)
    )
    y = _indices(test.labels, classes)[chosen]
    assert len(chosen) == 40 and base.shape == (40, 4)
    assert np.mean(base.argmax(1) == y) > 0.5  # channel 0 alone carries the classes
    names = [name for name, _ in ablations]
    assert names[:6] == [f"channel {c}" for c in range(6)] and len(names) == 6 + SEGMENTS
    assert info["groups"]["channels"] == names[:6]
    entries = falls(metric_score(task, y, {}, "accuracy"), base, ablations, len(y), sign=1.0, **KW)
    drop = {e["name"]: e["drop"] for e in entries}
    assert drop["channel 0"] > 0.2
    assert all(drop[f"channel {c}"] == 0.0 for c in range(1, 6))  # never read
    assert max(drop[name] for name in names[6:]) > 0.0  # some time segment matters
    probability_falls(entries, base, ablations, y)
    p_true = {e["name"]: e["p_true_fall"] for e in entries}
    assert p_true["channel 0"] > 0.0
    assert all(p_true[f"channel {c}"] == 0.0 for c in range(1, 6))
    monkeypatch.setattr(signal_importance, "MAX_VALUES", 6 * 100 * 10)  # 10 series' values
    few, *_ = series_occlusion(None, model, {}, task, rows, {}, np.random.default_rng(0))
    assert len(few) == 10 and few.max() > 10  # a seeded draw from all rows, not the first
    png = importance_bars_png(
        entries, info["groups"], tmp_path / "imp.png", metric="accuracy", title="t"
    )
    assert png.read_bytes().startswith(PNG)


def test_series_picture(tmp_path, gunpoint):
    train, _, _ = gunpoint
    png = series_png(train.series[:5], ["a -> b (0.9)"] * 5, tmp_path / "s.png", title="t")
    assert png.read_bytes().startswith(PNG) and png.stat().st_size > 5000
    empty = series_png([], [], tmp_path / "none.png", title="t")
    assert empty.read_bytes().startswith(PNG)


def test_read_rows_gives_the_stored_series(tmp_path: Path, gunpoint):
    train, _, _ = gunpoint
    paths = [str(write_series(tmp_path, s)[0]) for s in train.series[:3]]
    got = nb.read_rows(pd.DataFrame({"path": paths}))
    for a, b in zip(got, train.series[:3]):
        np.testing.assert_array_equal(a, np.atleast_2d(b).astype(np.float32))


def test_latency_probe_takes_one_whole_series():
    from dlworkflow.evaluate.constraints import _one_sample

    series = np.arange(12, dtype=np.float32).reshape(3, 4)  # one (C, T) series
    one = _one_sample({"modality": "sequence"}, series)
    assert one.shape == (1, 3, 4) and one.dtype == np.float32
    assert _one_sample({"modality": "sequence"}, np.stack([series] * 5)).shape == (1, 3, 4)
    assert _one_sample({"modality": "audio"}, np.zeros(800)).shape == (1, 800)
