"""Evaluation of audio classification on real clips (builtin:sonic-pi, 1-second clips): the
baselines (majority class and logistic regression on log-mel band statistics), automatic
slices by duration, loudness and sample rate, occlusion importance of waveform time segments
and log-mel bands (a network that reads the low bands of the first half only), and the
log-mel pictures of the mistakes view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlworkflow.evaluate.auto_slices import auto_columns
from dlworkflow.evaluate.baselines import AUDIO_MELS, baselines, log_mel_stats
from dlworkflow.evaluate.figures import mistakes_png
from dlworkflow.evaluate.importance import falls, metric_score
from dlworkflow.evaluate.sample_figures import SPEC_MELS, spectrogram_images
from dlworkflow.evaluate.signal_importance import BANDS, SEGMENTS, audio_occlusion
from dlworkflow.models.predict import label_indices
from dlworkflow.preprocess.audio import LogMel
from dlworkflow.project import Project
from dlworkflow.store import load_split
from dlworkflow.store.clips import ClipSettings, clip_tensor
from dlworkflow.tasks import task_of

PNG = b"\x89PNG\r\n\x1a\n"
KW = {"n_resamples": 200, "confidence": 0.95, "seed": 0}
SETTINGS = ClipSettings(duration=1.0)


@pytest.fixture(scope="module")
def sonic(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    project = Project.init(tmp_path_factory.mktemp("sonic"), task="audio-classification")
    project.update_config({"data": {"audio": {"duration": 1.0}}})
    project.ingest("builtin:sonic-pi", progress=False)
    project.split()
    classes = sorted(load_split(project, "train")["label"].astype(str).unique())
    meta = {
        "classes": classes,
        "modality": "audio",
        "preprocessing": {"modality": "audio", **SETTINGS.as_dict()},
    }
    return project, meta, classes


def test_baselines_majority_and_log_mel_logistic(sonic):
    project, meta, classes = sonic
    rows = load_split(project, "val")
    y = label_indices(rows, classes)
    uniform = np.full((len(y), len(classes)), 1.0 / len(classes))
    b = baselines(project, meta, rows, y, uniform, metric="accuracy", **KW)
    assert "log-mel" in b["simple"]["model"] and b["simple"]["n_train"] > 80
    for key in ("simple", "majority", "network"):
        assert b[key]["low"] <= b[key]["value"] <= b[key]["high"], key
    # 10 classes, the largest about a fifth; band statistics separate the instruments
    assert b["majority"]["value"] < 0.3
    assert b["simple"]["value"] > b["majority"]["value"] + 0.15
    assert b["simple_as_good"] is True  # a network guessing uniformly does not beat it
    features = log_mel_stats(project, rows.iloc[:4], meta)
    assert features.shape == (4, 2 * AUDIO_MELS) and np.isfinite(features).all()
    assert (features[:, AUDIO_MELS:] >= 0).all()  # standard deviations


def test_auto_slices_by_duration_loudness_and_rate(sonic):
    project, _, _ = sonic
    rows = load_split(project, "train")
    frame = auto_columns(rows, modality="audio", important=[])
    assert {"duration (s)", "loudness (RMS dBFS)"} <= set(frame.columns)
    rates = set(rows["sample_rate"])
    assert ("source sample rate (Hz)" in frame.columns) == (len(rates) > 1)
    mixed = rows.copy()
    mixed.loc[mixed.index[:10], "sample_rate"] = 8000  # as if some clips were recorded so
    by_rate = auto_columns(mixed, modality="audio", important=[])["source sample rate (Hz)"]
    assert set(by_rate) == {8000, *rates}
    np.testing.assert_array_equal(frame["duration (s)"], rows["duration_s"])


class LowFirstHalf(torch.nn.Module):
    """A log-mel network that reads the lowest 8 mel bins of the first half of a clip only:
    front -> embed (their means) -> head (nearest class mean)."""

    def __init__(self, means: np.ndarray) -> None:
        super().__init__()
        self.front = LogMel(sample_rate=SETTINGS.sample_rate)
        self.means = torch.from_numpy(means.astype(np.float32))  # (K, 8)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        half = spec.shape[3] // 2
        return spec[:, 0, :8, :half].mean(dim=2)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return -((features[:, None, :] - self.means[None]) ** 2).sum(dim=2)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(self.front(waves)))


def test_audio_occlusion_segments_and_bands(sonic):
    project, meta, classes = sonic
    train = load_split(project, "train")
    y_train = label_indices(train, classes)
    probe = LowFirstHalf(np.zeros((len(classes), 8)))
    with torch.inference_mode():
        feats = probe.embed(probe.front(torch.from_numpy(clip_tensor(project, train, SETTINGS))))
    means = np.stack([feats[y_train == k].mean(0).numpy() for k in range(len(classes))])
    model = LowFirstHalf(means)
    rows = load_split(project, "val")
    task = task_of("audio-classification")
    chosen, base, ablations, info = audio_occlusion(
        project, model, meta, task, rows, {}, np.random.default_rng(0)
    )
    y = label_indices(rows, classes)[chosen]
    names = [name for name, _ in ablations]
    assert len(names) == SEGMENTS + BANDS and "not_measured" not in info
    assert names[0] == "time 0.00-0.12 s" and names[SEGMENTS].startswith("mel band 0 (0-")
    entries = falls(metric_score(task, y, {}, "accuracy"), base, ablations, len(y), sign=1.0, **KW)
    drop = {e["name"]: e["drop"] for e in entries}
    assert all(drop[n] == 0.0 for n in names[SEGMENTS // 2 + 1 : SEGMENTS])  # never read
    assert all(drop[n] == 0.0 for n in names[SEGMENTS + 1 :])  # bins 8 and up: never read
    assert max(abs(drop[n]) for n in names[: SEGMENTS // 2]) > 0.0
    # the silenced outputs really differ where the model reads
    first = dict(ablations)[names[0]][0]
    assert not np.allclose(first, base)


def test_log_mel_pictures(sonic, tmp_path):
    project, _, _ = sonic
    rows = load_split(project, "val").iloc[:3]
    images = spectrogram_images(clip_tensor(project, rows, SETTINGS), sample_rate=16000)
    assert len(images) == 3
    assert all(i.dtype == np.uint8 and i.shape[:2] == (3, SPEC_MELS) for i in images)
    assert all(i.std() > 5 for i in images)  # not a flat picture
    png = mistakes_png(images, ["a -> b (0.90)"] * 3, tmp_path / "m.png", title="t")
    assert png.read_bytes().startswith(PNG)
    assert spectrogram_images(np.zeros((0, 16000), dtype=np.float32), sample_rate=16000) == []
