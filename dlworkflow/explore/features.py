"""Features of a subsample for the 2-D map and the label-issue search: a pretrained embedder
when installed (and explore.backbone is auto), else raw pixels, TF-IDF or standardised
columns. The fallback is always stated in the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.explore.pixels import PixelReader

PIXEL_SIDE = 28  # raw-pixel features: images resized to 28 x 28
EMBED_SIDE_MIN, EMBED_SIDE_MAX = 64, 224  # embedder input: twice the image side, clipped
EMBED_CPU_LIMIT = 1500  # images embedded by a pretrained backbone without a GPU
EMBED_BATCH = 128
REDUCED_DIMS = 64  # features are reduced to this many PCA components before the quick model
MAX_CATEGORIES = 50  # string columns with more distinct values are left out of the features


@dataclass
class Features:
    X: np.ndarray  # float32 [n, d]; rows of `rows` that could be read
    keep: np.ndarray  # bool [len(subsample)]: which subsample rows have features
    method: str  # in words, for the report
    notes: list[str] = field(default_factory=list)


def image_features(
    rows: pd.DataFrame,
    *,
    reader: PixelReader,
    backbone: str,
    channels: int,
    size: tuple[int, int],
    progress: Any = None,
) -> Features:
    notes: list[str] = []
    if backbone == "auto":
        try:
            return _pretrained(rows, reader=reader, channels=channels, size=size, progress=progress)
        except ImportError:
            notes.append("no pretrained image embedder in this dlworkflow: raw pixels used")
        except DlwError as exc:
            notes.append(f"pretrained image embedder unavailable ({exc.what}): raw pixels used")
    pixels, ok = reader.arrays(
        rows, channels=channels, size=(PIXEL_SIDE, PIXEL_SIDE), progress=progress
    )
    X = pixels[ok].reshape(int(ok.sum()), -1).astype(np.float32) / 255.0
    return Features(
        X=X, keep=ok, notes=notes, method=f"raw pixels ({channels} x {PIXEL_SIDE} x {PIXEL_SIDE})"
    )


def _pretrained(
    rows: pd.DataFrame, *, reader: PixelReader, channels: int, size: tuple[int, int], progress: Any
) -> Features:
    """Pretrained features; on a CPU only a stratified EMBED_CPU_LIMIT rows of the subsample
    are embedded, so exploration stays quick."""
    import torch

    from dlworkflow.explore.pixels import stratified_sample
    from dlworkflow.models import image_embedder

    side = int(np.clip(32 * round(2 * max(size) / 32), EMBED_SIDE_MIN, EMBED_SIDE_MAX))
    embedder = image_embedder(input_size=side)
    keep = np.ones(len(rows), dtype=bool)
    notes = []
    if not torch.cuda.is_available() and len(rows) > EMBED_CPU_LIMIT:
        keep[:] = False
        keep[stratified_sample(rows["label"].astype(str), limit=EMBED_CPU_LIMIT, seed=0)] = True
        notes.append(
            f"pretrained features on {EMBED_CPU_LIMIT:,} of the {len(rows):,} "
            "subsampled images (CPU only: capped for speed; set explore.backbone: "
            "pixels to use raw pixels of all of them)"
        )
    read_size = (min(size[0], side), min(size[1], side))
    pixels, ok = reader.arrays(rows[keep], channels=channels, size=read_size, progress=progress)
    X = _embed_batches(embedder, pixels[ok], progress=progress)
    keep[np.flatnonzero(keep)[~ok]] = False
    return Features(
        X=X,
        keep=keep,
        notes=notes,
        method=f"pretrained {getattr(embedder, 'name', 'image')} features (input {side} px)",
    )


def _embed_batches(embedder: Any, pixels: np.ndarray, progress: Any = None) -> np.ndarray:
    parts = []
    for i in range(0, len(pixels), EMBED_BATCH):
        parts.append(np.asarray(embedder.embed(pixels[i : i + EMBED_BATCH]), dtype=np.float32))
        if progress is not None:
            progress(min(i + EMBED_BATCH, len(pixels)), len(pixels))
    return np.concatenate(parts) if parts else np.empty((0, 1), dtype=np.float32)


def text_features(texts: list[str], *, backbone: str) -> Features:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    keep = np.ones(len(texts), dtype=bool)
    notes: list[str] = []
    if backbone == "auto":
        try:
            from dlworkflow.models import text_embedder

            X = np.asarray(text_embedder().embed(texts), dtype=np.float32)
            return Features(X=X, keep=keep, method="pretrained sentence embedder features")
        except ImportError:
            notes.append("no pretrained text embedder in this dlworkflow: TF-IDF used")
        except DlwError as exc:
            notes.append(f"pretrained text embedder unavailable ({exc.what}): TF-IDF used")
    tfidf = TfidfVectorizer(
        max_features=20_000, sublinear_tf=True, min_df=2 if len(texts) >= 200 else 1
    )
    try:
        sparse = tfidf.fit_transform(texts)
    except ValueError:  # empty vocabulary: every text is empty or stop words
        return Features(
            X=np.zeros((len(texts), 1), np.float32),
            keep=keep,
            method="none (empty vocabulary)",
            notes=notes,
        )
    k = max(1, min(100, sparse.shape[1] - 1, len(texts) - 1))
    X = (
        TruncatedSVD(n_components=k, random_state=0).fit_transform(sparse)
        if k > 1
        else sparse.toarray()
    )
    return Features(
        X=np.asarray(X, dtype=np.float32),
        keep=keep,
        notes=notes,
        method=f"TF-IDF ({sparse.shape[1]:,} terms) reduced by SVD to {k}",
    )


def tabular_features(frame: pd.DataFrame) -> Features:
    """Standardised feature columns: numbers as they are, short categories as codes; missing
    values become the column median."""
    import pandas as pd

    columns, notes = [], []
    for name in [c for c in frame.columns if str(c).startswith("f:")]:
        numeric = pd.to_numeric(frame[name], errors="coerce")
        if numeric.notna().sum() >= 0.9 * frame[name].notna().sum():
            columns.append(numeric.to_numpy(dtype=float, na_value=np.nan))
        elif frame[name].nunique() <= MAX_CATEGORIES:
            codes = frame[name].astype("category").cat.codes.to_numpy().astype(float)
            columns.append(np.where(codes < 0, np.nan, codes))
        else:
            notes.append(f"{name[2:]} left out of the map (text with many distinct values)")
    if not columns:
        return Features(
            X=np.zeros((len(frame), 1), np.float32),
            keep=np.ones(len(frame), bool),
            method="none (no usable feature columns)",
            notes=notes,
        )
    X = np.column_stack(columns)
    n_missing = int(np.isnan(X).sum())
    if n_missing:
        notes.append(f"{n_missing:,} missing or non-finite values replaced by column medians")
    X = _impute_standardise(X)
    return Features(
        X=X,
        keep=np.ones(len(frame), bool),
        notes=notes,
        method=f"{X.shape[1]} standardised feature columns",
    )


def _impute_standardise(X: np.ndarray) -> np.ndarray:
    X = np.where(np.isfinite(X), X, np.nan)
    with np.errstate(all="ignore"):
        median = np.nanmedian(X, axis=0)
    median = np.nan_to_num(median, nan=0.0)
    X = np.where(np.isnan(X), median, X)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X.astype(np.float32)


def reduce(X: np.ndarray, *, seed: int) -> np.ndarray:
    """At most REDUCED_DIMS PCA components (whitened scale kept), finite values only."""
    from sklearn.decomposition import PCA

    X = np.nan_to_num(np.asarray(X, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    k = min(REDUCED_DIMS, X.shape[1], max(1, X.shape[0] - 1))
    if X.shape[1] <= k:
        return X
    return PCA(n_components=k, random_state=seed).fit_transform(X).astype(np.float32)


def map_2d(X: np.ndarray, *, seed: int) -> tuple[np.ndarray, list[float]]:
    """2-D PCA coordinates and the share of variance each axis explains."""
    from sklearn.decomposition import PCA

    X = np.nan_to_num(np.asarray(X, dtype=np.float32))
    if X.shape[1] < 2 or X.shape[0] < 3:
        padded = np.zeros((X.shape[0], 2), np.float32)
        padded[:, : X.shape[1]] = X[:, :2]
        return padded, [float("nan"), float("nan")]
    pca = PCA(n_components=2, random_state=seed)
    xy = pca.fit_transform(X)
    return xy, [float(v) for v in pca.explained_variance_ratio_]
