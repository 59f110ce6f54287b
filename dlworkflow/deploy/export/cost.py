"""The serving cost of the features, measured by `dlw export` on the runtime path itself (the
exported bundle's `prepare_*`, as `dlw serve` runs it) with validation samples (ML Test Score,
Data 3). Recorded in metadata.json "feature_cost" and the export's ledger summary.

* images: the preprocessing time per sample: decode + resize (Bundle.decode_image) and
  normalise (float32 (x / 255 - mean) / std), of up to N_SAMPLES validation images (their
  files read beforehand: the disk is not the feature's cost);
* texts: the tokenizing time per sample (Bundle.prepare_texts);
* series: the time per series of Bundle.prepare_series (checks, gap filling, NaN padding);
* clips: the time per clip of Bundle.prepare_clips (decode, mono mix, resample, crop/pad; the
  files read beforehand);
* tables: per feature column, the time of its encoding per sample (standardise and impute a
  number; one-hot a category: `encode_table` on that column alone) and its share of the sum,
  besides the whole row preparation per sample (Bundle.prepare_rows, the frame included).

A few hundred samples, one pass: milliseconds on the demo's digits.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.runtime.bundle import Bundle

N_SAMPLES = 200
#: Modalities whose whole preparation is one Bundle method: (what it does, the method).
PREPARE = {
    "text": ("tokenize", "prepare_texts"),
    "sequence": ("check, fill gaps, NaN-pad", "prepare_series"),
    "audio": ("decode + mono + resample + crop/pad", "prepare_clips"),
}


def feature_cost(bundle: Bundle, rows: pd.DataFrame) -> dict[str, Any]:
    from dlworkflow.runtime.observe import rows_to_values

    sample = rows.head(N_SAMPLES)
    values = rows_to_values(bundle, sample)
    n = len(values)
    out: dict[str, Any] = {"n": n, "measured_on": "validation samples, at export"}
    if n == 0:
        return out
    if bundle.modality == "image":
        return {**out, **_images(bundle, values)}
    if bundle.modality in PREPARE:
        what, prepare = PREPARE[bundle.modality]
        start = time.perf_counter()
        getattr(bundle, prepare)(values)
        return {**out, "per_sample_ms": _ms(time.perf_counter() - start, n), "what": what}
    return {**out, **_rows(bundle, values)}


def _ms(seconds: float, n: int) -> float:
    return round(seconds * 1000.0 / max(n, 1), 4)


def _images(bundle: Bundle, images: list[bytes]) -> dict[str, Any]:
    from dlworkflow.preprocess import normalise_pixels

    prep = bundle.preprocessing
    bundle.decode_image(images[0])  # warm-up: the first call imports and caches
    start = time.perf_counter()
    pixels = np.stack([bundle.decode_image(data, index=i) for i, data in enumerate(images)])
    decoded = time.perf_counter()
    normalise_pixels(pixels, prep["mean"], prep["std"])
    done = time.perf_counter()
    n = len(images)
    return {
        "what": "decode + resize + normalise",
        "per_sample_ms": _ms(done - start, n),
        "decode_resize_ms": _ms(decoded - start, n),
        "normalise_ms": _ms(done - decoded, n),
    }


def _rows(bundle: Bundle, rows: list[dict[str, Any]]) -> dict[str, Any]:
    import pandas as pd

    from dlworkflow.preprocess import encode_table

    prep = bundle.preprocessing
    n = len(rows)
    bundle.prepare_rows(rows[:1])  # warm-up
    start = time.perf_counter()
    bundle.prepare_rows(rows)
    total = time.perf_counter() - start
    frame = pd.DataFrame(list(rows), dtype=object)
    per_column: dict[str, float] = {}
    for name in prep["features"]:
        alone = _one_column(prep, name)
        start = time.perf_counter()
        encode_table(frame[[name]], alone)
        per_column[name] = time.perf_counter() - start
    spent = sum(per_column.values()) or 1.0
    features = {
        name: {"per_sample_ms": _ms(seconds, n), "share": round(seconds / spent, 4)}
        for name, seconds in sorted(per_column.items(), key=lambda kv: -kv[1])
    }
    return {"what": "encode the row", "per_sample_ms": _ms(total, n), "features": features}


def _one_column(prep: dict[str, Any], name: str) -> dict[str, Any]:
    """The table encoding of one feature column alone (the same statistics)."""
    alone = {**prep, "features": [name], "numeric": [], "mean": [], "std": [], "categories": {}}
    if name in prep["numeric"]:
        j = prep["numeric"].index(name)
        alone.update(numeric=[name], mean=[prep["mean"][j]], std=[prep["std"][j]])
    else:
        alone["categories"] = {name: prep["categories"][name]}
    return alone
