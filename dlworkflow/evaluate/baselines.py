"""Baselines: what the network has to beat. The majority class, and a logistic regression on
flattened downscaled pixels (images), the table encoding (tabular), TF-IDF (text) or each mel
band's mean and standard deviation of the log-mel spectrogram (audio), trained on the train
split and scored on the evaluated split with the primary metric. Sequences: 1-nearest-neighbour
with DTW (the simple model) and with the Euclidean distance
(dlworkflow.evaluate.nearest_baselines)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.bootstrap import metric_interval, paired_difference
from dlworkflow.evaluate.scores import scalar_metrics
from dlworkflow.models.meta import image_size
from dlworkflow.models.predict import label_indices
from dlworkflow.store import image_tensor, load_split

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.workspace import Workspace

MAX_SIDE = 16  # images are averaged down to at most 16 x 16 pixels per channel
MAX_TRAIN = 5000  # the simple model sees at most this many train rows (a seeded subsample)
INPUTS = {
    "image": "{} pixels",
    "tabular": "the table encoding",
    "text": "TF-IDF of words and word pairs",
    "audio": "the mean and standard deviation of each of {} log-mel bands",
}  # what a simple model sees
LOGISTIC: dict[str, dict[str, Any]] = {  # the classification baseline's settings
    "text": {"max_iter": 500, "C": 4.0},
    "tabular": {"max_iter": 500},
    "image": {"max_iter": 300, "C": 0.1, "tol": 1e-3},
    "audio": {"max_iter": 1000, "C": 0.1},
}
AUDIO_MELS = 64  # bands of the audio baseline's log-mel spectrogram
AUDIO_CHUNK = 32  # clips turned into log-mel at once


def baselines(
    project: Workspace,
    meta: ModelMeta,
    rows: pd.DataFrame,
    y: np.ndarray,
    proba: np.ndarray,
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """The network's metric next to both baselines; `simple_as_good` is True when the
    network's advantage over the simple model is not distinguishable from zero (the paired
    bootstrap interval of network - simple reaches 0 or below)."""
    classes = list(meta["classes"])
    train = load_split(project, "train")
    y_train = label_indices(train, classes)
    train, y_train = train[y_train >= 0].reset_index(drop=True), y_train[y_train >= 0]
    kw: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}

    priors = np.bincount(y_train, minlength=len(classes)) / max(len(y_train), 1)
    majority = np.tile(priors, (len(y), 1))
    result: dict[str, Any] = {
        "metric": metric,
        "network": _score(metric, y, proba, **kw),
        "majority": {
            "class": classes[int(priors.argmax())],
            "share": float(np.mean(y == priors.argmax())) if len(y) else None,
            **_score(metric, y, majority, **kw),
        },
    }
    if meta.get("modality") == "sequence" and len(y_train):
        from dlworkflow.evaluate.nearest_baselines import series_entries

        return {
            **result,
            **series_entries(train, y_train, rows, y, proba, classes=classes, metric=metric, **kw),
        }
    simple, simple_name = simple_model_proba(project, meta, train, y_train, rows, seed=seed)
    as_good, diff = simple_as_good(metric, y, proba, simple, **kw)
    return {
        **result,
        "simple": {
            "model": simple_name,
            "n_train": int(min(len(y_train), MAX_TRAIN)),
            **_score(metric, y, simple, **kw),
        },
        "difference": {"low": diff[0], "high": diff[1]},
        "simple_as_good": as_good,
    }


def simple_as_good(
    metric: str,
    y: np.ndarray,
    network: np.ndarray,
    simple: np.ndarray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[bool, tuple[float, float]]:
    """(flag, paired bootstrap interval of network - simple): flagged when the interval
    reaches 0 or below, i.e. the network is not shown to be better than the simple model."""
    diff = paired_difference(
        metric, y, network, simple, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return bool(np.isfinite(diff[0]) and diff[0] <= 0), diff


def _score(metric: str, y: np.ndarray, proba: np.ndarray, **kw: Any) -> dict[str, Any]:
    value = float(scalar_metrics(y, proba, np.ones((1, len(y))), only=metric)[metric][0])
    low, high = metric_interval(metric, y, proba, **kw)
    return {"value": value, "low": low, "high": high}


def simple_model_proba(
    project: Workspace,
    meta: ModelMeta,
    train: pd.DataFrame,
    y_train: np.ndarray,
    rows: pd.DataFrame,
    *,
    seed: int,
) -> tuple[np.ndarray, str]:
    """(probabilities on `rows`, description) of a logistic regression fitted on train."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    k = len(meta["classes"])
    train, y_train = subsample(train, y_train, seed=seed)
    modality = meta.get("modality", "image")
    x_train, x_eval, steps, inputs = simple_inputs(project, meta, train, rows)
    model = make_pipeline(*steps, LogisticRegression(**LOGISTIC[modality]))
    name = f"logistic regression on {inputs}"
    if len(np.unique(y_train)) < 2:
        return np.tile(np.eye(k)[y_train[0]], (len(rows), 1)), name
    with quiet_fit():
        model.fit(x_train, y_train)
        partial = model.predict_proba(x_eval)
    proba = np.zeros((len(rows), k))
    proba[:, model.classes_] = partial  # classes absent from train keep probability 0
    return proba, name


def subsample(
    train: pd.DataFrame, y_train: np.ndarray, *, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """At most MAX_TRAIN train rows (a seeded subsample) for a simple model."""
    if len(train) > MAX_TRAIN:
        keep = np.sort(np.random.default_rng(seed).choice(len(train), MAX_TRAIN, replace=False))
        return train.iloc[keep].reset_index(drop=True), y_train[keep]
    return train, y_train


def simple_inputs(
    project: Workspace, meta: ModelMeta, train: pd.DataFrame, rows: pd.DataFrame
) -> tuple[Any, Any, list[Any], str]:
    """What a simple model sees, for every task: (train inputs, `rows` inputs, the
    scikit-learn preprocessing steps to put before the model, what the inputs are). Texts:
    TF-IDF of words and word pairs; tables: the model's own table encoding (train
    statistics and categories); images: pixels averaged down to <= 16x16, standardised."""
    modality = meta.get("modality", "image")
    if modality == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=50_000)
        return _texts(train), _texts(rows), [tfidf], INPUTS[modality]
    if modality == "tabular":
        from dlworkflow.models import encode_table

        return (
            encode_table(train, meta["preprocessing"]),
            encode_table(rows, meta["preprocessing"]),
            [],
            INPUTS[modality],
        )
    from sklearn.preprocessing import StandardScaler

    if modality == "audio":
        return (
            log_mel_stats(project, train, meta),
            log_mel_stats(project, rows, meta),
            [StandardScaler()],
            INPUTS[modality].format(AUDIO_MELS),
        )
    size = tuple(min(side, MAX_SIDE) for side in meta.get("image_size", (0, 0)))
    return (
        _pixels(project, train, meta),
        _pixels(project, rows, meta),
        [StandardScaler()],
        INPUTS[modality].format("x".join(map(str, size))),
    )


@contextmanager
def quiet_fit() -> Iterator[None]:
    """One BLAS thread (for a model this small, more threads fighting torch's are far
    slower) and no convergence warnings (a baseline, not the model)."""
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        yield


def _texts(rows: pd.DataFrame) -> list[str]:
    return rows["text"].fillna("").astype(str).tolist()


def log_mel_stats(project: Workspace, rows: pd.DataFrame, meta: ModelMeta) -> np.ndarray:
    """(N, 2 * AUDIO_MELS): each clip's log-mel spectrogram (preprocess.audio.log_mel_numpy)
    reduced to the mean and the standard deviation of every mel band over time. The clips
    are the waveforms the network takes (store.clips.clip_tensor at the model's settings)."""
    from dlworkflow.models.predict import clip_settings_of
    from dlworkflow.preprocess.audio import log_mel_numpy
    from dlworkflow.store.clips import clip_tensor

    settings = clip_settings_of(project, meta)
    waves = clip_tensor(project, rows, settings)
    parts = []
    for start in range(0, len(rows), AUDIO_CHUNK):
        spec = log_mel_numpy(
            np.asarray(waves[start : start + AUDIO_CHUNK], dtype=np.float64),
            sample_rate=settings.sample_rate,
            n_mels=AUDIO_MELS,
        )[:, 0]  # (n, mels, frames)
        parts.append(np.concatenate([spec.mean(axis=2), spec.std(axis=2)], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, 2 * AUDIO_MELS))


def _pixels(
    project: Workspace, rows: pd.DataFrame, meta: ModelMeta, chunk: int = 512
) -> np.ndarray:
    """Images at the model's format, averaged down to <= 16x16, flattened, in 0..1. The rows
    are read in one call: the tensor cache of the same rows (what training and the model's
    predictions read) is reused, memory-mapped, instead of decoding every image again."""
    import torch

    size = image_size(meta)
    target = (min(size[0], MAX_SIDE), min(size[1], MAX_SIDE))
    pixels = image_tensor(
        project,
        rows,
        channels=int(meta["in_channels"]),
        size=size,
        max_pixels=project.config.data.max_image_pixels,
    )
    parts = []
    for start in range(0, len(rows), chunk):
        small = torch.nn.functional.adaptive_avg_pool2d(
            torch.from_numpy(np.array(pixels[start : start + chunk])).float().div_(255.0), target
        )
        parts.append(small.flatten(1).numpy())
    return (
        np.concatenate(parts)
        if parts
        else np.zeros((0, int(meta["in_channels"]) * target[0] * target[1]))
    )
