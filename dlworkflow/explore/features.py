"""Features of every sample for the 2-D map and the label-issue search: a pretrained embedder
when installed (and explore.backbone is auto), else raw pixels, TF-IDF or standardised
columns. The fallback is always stated in the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from dlworkflow.explore.pixels import PixelReader

PIXEL_SIDE = 28  # raw-pixel features: images resized to 28 x 28
REDUCED_DIMS = 64  # features are reduced to this many PCA components before the quick model
MAX_CATEGORIES = 50  # string columns with more distinct values are left out of the features


@dataclass
class Features:
    X: np.ndarray  # float32 [n, d]; rows of `rows` that could be read
    keep: np.ndarray  # bool [len(rows)]: which rows have features
    method: str  # in words, for the report
    notes: list[str] = field(default_factory=list)
    n_cached: int = 0  # rows whose features came from the embedding cache


def image_features(
    rows: pd.DataFrame,
    *,
    reader: PixelReader,
    backbone: str,
    channels: int,
    size: tuple[int, int],
    cache_dir: Path | None = None,
    dataset_version: str = "",
    progress: Any = None,
) -> Features:
    """Features of every row: the quick pretrained embedding (explore/embedder.py), taken
    from the embedding cache under `cache_dir` where it has the row, else raw pixels."""
    notes: list[str] = []
    if backbone == "auto":
        try:
            return _pretrained(
                rows,
                reader=reader,
                channels=channels,
                size=size,
                cache_dir=cache_dir,
                dataset_version=dataset_version,
                progress=progress,
            )
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
    rows: pd.DataFrame,
    *,
    reader: PixelReader,
    channels: int,
    size: tuple[int, int],
    cache_dir: Path | None,
    dataset_version: str,
    progress: Any,
) -> Features:
    """Every row embedded, or found in the cache (by content hash); only the rows the cache
    lacks are read and embedded, and added to it."""
    from dlworkflow.explore.embed_cache import EmbeddingCache
    from dlworkflow.explore.embedder import quick_embedder
    from dlworkflow.store.images import _unchanged_since_ingest

    embedder = quick_embedder(size=size)
    same = _unchanged_since_ingest(rows)  # a file changed since ingest: embedded, not cached
    hashes = [str(h) if ok else "" for h, ok in zip(rows["content_hash"].tolist(), same)]
    cache = EmbeddingCache(cache_dir, key=embedder.key, dim=embedder.dim) if cache_dir else None
    if cache is not None:
        hits = cache.lookup(hashes)
        X, missing = hits.vectors, hits.missing
    else:
        X, missing = np.zeros((len(rows), embedder.dim), np.float32), np.arange(len(rows))
    keep = np.ones(len(rows), dtype=bool)
    if len(missing):
        read_size = (min(size[0], embedder.side), min(size[1], embedder.side))
        pixels, ok = reader.arrays(
            rows.iloc[missing], channels=channels, size=read_size, progress=progress
        )
        fresh = embedder.embed(pixels, progress=progress).astype(np.float16)  # as cached
        X[missing] = fresh
        keep[missing[~ok]] = False
        if cache is not None:
            cache.add(
                [hashes[i] for i in missing[ok]],
                fresh[ok],
                dataset_version=dataset_version,
                embedder=embedder.name,
            )
    n_cached = len(rows) - len(missing)
    return Features(
        X=X[keep],
        keep=keep,
        notes=[
            f"{int(keep.sum()):,} of {len(rows):,} images embedded ({n_cached:,} from the "
            f"embedding cache, {len(missing):,} computed now)"
        ],
        method=f"pretrained {embedder.name} features",
        n_cached=n_cached,
    )


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
