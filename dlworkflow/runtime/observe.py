"""What the monitor sees of each prediction (torch-free): the input's summary statistics, the
task's outputs and a small embedding, as one record. The server logs these records, and
`dlw monitor` builds the reference (validation split) and `--inputs` records with the very
same functions, so live and reference numbers are computed alike.

    x, summaries = prepare(bundle, values)   # image bytes | texts | row dicts | series | clips
    out, emb = infer(bundle, x)                       # emb: (N, 32) or None (older exports)
    lines = records(bundle, summaries, out, emb)      # the prediction log's JSON objects

`out` is the task's outputs (`task.outputs` of the ONNX logits): class probabilities,
predicted values (N, 1) or label probabilities. Record: {"ts", "id", "model_version",
"input": summary, <the prediction's fields>, "emb" (when the export has a "features"
output), "latency_ms", "request_items"}; the prediction's fields depend on the task's kind
(`PREDICTION_FIELDS`): classification {"label", "confidence", "probs"}; regression {"label"
(the value as text), "value"}; multi-label {"label" (the predicted labels joined by "|"),
"labels", "probs" (one per label)}; detection {"label" (the most frequent box label, "(none)"
without a box), "confidence" (the best box score, 0 without a box), "count", "boxes"
([x1, y1, x2, y2, label, score], normalised to the image) and "scores" of the boxes at or
above the tuned score threshold}; segmentation {"label" (the largest class besides the
first, background), "confidence" (the mean over pixels of the top probability),
"class_share" ({class: share of pixels predicted as it})}: the fields monitor/dense.py reads.
Summaries: image {kind, width, height, mean, std, channel_means} (of the network input, after
normalisation); text {kind, chars, words, tokens, unk (fraction of [UNK] word pieces)};
row {kind, fields, missing}; series {kind, length, channels, channel_means, channel_stds} (of
the real steps, raw values; more than SERIES_CHANNELS channels: one pooled "mean" and "std"
instead of the lists); audio {kind, duration_s, rms_dbfs, silence_share (of the original clip
when it is known, else of the decoded waveform without its zero padding), centroid_hz (of
the decoded waveform the network takes)}. No raw input is kept: the embedding is a fixed
random projection (seed 0) of the network's penultimate features to 32 dimensions, enough for
drift and out-of-distribution tests, not for recovering the input.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.preprocess.text import UNK_ID

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from dlworkflow.runtime.bundle import Bundle
    from dlworkflow.tasks.base import Task

EMBED_DIMS = 32
SERIES_CHANNELS = 16  # per-channel statistics for at most this many channels, else pooled
FEATURES_OUTPUT = "features"  # the ONNX output with the penultimate features (new exports)
_DIGITS = 5  # decimals kept in the log


def has_features(bundle: Bundle) -> bool:
    """Whether the export has the "features" output (looked up once per bundle)."""
    known = bundle.__dict__.get("_has_features")
    if known is None:
        known = FEATURES_OUTPUT in {o.name for o in bundle.session.get_outputs()}
        bundle.__dict__["_has_features"] = known
    return known


def metadata_task(metadata: dict[str, Any]) -> tuple[Task, dict[str, Any]]:
    """(the Task, its target dict) an export was made for: metadata.json "task" and "target"
    (bundle.py's reading: an export from before tasks is classification of its modality)."""
    from dlworkflow.runtime.bundle import task_of_metadata

    target = metadata.get("target")  # exports before tasks: the success criterion's number
    return task_of_metadata(metadata), dict(target) if isinstance(target, dict) else {}


def _outputs(bundle: Bundle, logits: np.ndarray) -> np.ndarray:
    """float32 task outputs of the ONNX logits (classification: the bundle's softmax)."""
    return np.asarray(bundle.outputs_of(logits), dtype=np.float32)


def predict_outputs(bundle: Bundle, x: np.ndarray) -> np.ndarray:
    """float32 task outputs (N, K) of a prepared input array (K: len(bundle.classes))."""
    x = bundle._check_array(x)
    if len(x) == 0:
        return np.asarray(bundle.empty_outputs(), dtype=np.float32)
    return _outputs(bundle, bundle.session.run(["logits"], {"input": x})[0])


def infer(
    bundle: Bundle, x: np.ndarray, *, embed_features: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """(task outputs float32 (N, K): class probabilities, values (N, 1) or label
    probabilities; embedding float32 (N, EMBED_DIMS) or None; None too with
    embed_features=False, e.g. a server that logs nothing)."""
    x = bundle._check_array(x)
    if not (embed_features and has_features(bundle)):
        return predict_outputs(bundle, x), None
    if len(x) == 0:
        return (
            np.asarray(bundle.empty_outputs(), dtype=np.float32),
            np.zeros((0, EMBED_DIMS), dtype=np.float32),
        )
    logits, features = bundle.session.run(["logits", FEATURES_OUTPUT], {"input": x})
    return _outputs(bundle, logits), embed(features)


def embed(features: np.ndarray) -> np.ndarray:
    """(N, F) features -> (N, EMBED_DIMS): a Gaussian random projection, the same for every
    caller (Johnson-Lindenstrauss: distances are kept up to a small factor)."""
    f = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    return (f @ _projection(f.shape[1])).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _projection(n_features: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n_features, EMBED_DIMS)) / math.sqrt(EMBED_DIMS)).astype(
        np.float32
    )


def prepare(
    bundle: Bundle,
    values: list[Any],
    *,
    sizes: list[tuple[int, int]] | None = None,
    summarise: bool = True,
) -> tuple[np.ndarray, list[dict]]:
    """The bundle's input for `values` and one summary per item (InputError if unusable);
    no summaries with summarise=False."""
    if bundle.modality == "image":
        x = bundle.prepare_images(values)
        if not summarise:
            return x, []
        return x, image_summaries(sizes if sizes is not None else image_sizes(values), x)
    if bundle.modality == "text":
        x = bundle.prepare_texts(values)
        return x, text_summaries(values, x) if summarise else []
    if bundle.modality == "sequence":
        x = bundle.prepare_series(values)
        return x, series_summaries(x) if summarise else []
    if bundle.modality == "audio":
        settings = bundle.clip_settings()
        x, originals = measured_clips(values, settings)  # prepare_clips, with the originals' stats
        if not summarise:
            return x, []
        return x, clip_summaries(
            x, settings.sample_rate, originals=originals, silence_dbfs=settings.silence_dbfs
        )
    x = bundle.prepare_rows(values)
    return x, row_summaries(values, bundle.preprocessing.get("features")) if summarise else []


def measured_clips(values: list[Any], settings: Any) -> tuple[np.ndarray, list[Any]]:
    """(float32 (N, S) waveforms as the network takes them (store.clips: mono, resampled, the
    duration policy, zero-padded to the longest), the AudioStats of each original clip) of
    clips given as bytes or paths; InputError naming the index of a clip that cannot be
    decoded or breaks the limits (bytes, seconds). One decoding gives both."""
    from dlworkflow.runtime.bundle import InputError
    from dlworkflow.store.audio import AudioDecodeError
    from dlworkflow.store.clips import decoded_clip, zero_padded

    waves, originals = [], []
    for i, value in enumerate(values):
        try:
            decoded = decoded_clip(value, settings)
        except AudioDecodeError as exc:
            raise InputError(
                f"Clip {i} cannot be used: {exc.reason}",
                expected=f"WAV, FLAC or OGG, at most {settings.max_seconds:g} s and "
                f"{settings.max_bytes:,} bytes",
                received=exc.reason,
                context={"index": i, "reason": exc.reason},
            ) from None
        waves.append(decoded.samples)
        originals.append(decoded.stats)
    length = settings.samples if settings.policy == "fixed" else None
    return zero_padded(waves, length), originals


def series_summaries(x: np.ndarray) -> list[dict[str, Any]]:
    """observe_series: per series of a NaN-padded (N, C, T) batch (store.series.nan_padded)
    its length (real steps) and, over its real steps, each channel's mean and standard
    deviation in raw units; with more than SERIES_CHANNELS channels the pooled "mean" and
    "std" of all channels instead (one check each, not one per channel)."""
    from dlworkflow.store.series import lengths_of

    batch = np.asarray(x, dtype=np.float64)
    if batch.ndim == 2:
        batch = batch[:, None, :]
    out = []
    for row, n in zip(batch, lengths_of(batch)):
        real = row[:, : int(n)]
        summary: dict[str, Any] = {"kind": "series", "length": int(n), "channels": len(row)}
        with warnings.catch_warnings():  # an empty series: NaN statistics, logged as null
            warnings.simplefilter("ignore", RuntimeWarning)
            if len(row) <= SERIES_CHANNELS:
                summary["channel_means"] = [_num(v) for v in np.nanmean(real, axis=1)]
                summary["channel_stds"] = [_num(v) for v in np.nanstd(real, axis=1)]
            else:
                summary["mean"] = _num(np.nanmean(real))
                summary["std"] = _num(np.nanstd(real))
        out.append(summary)
    return out


def clip_summaries(
    waves: np.ndarray | list[np.ndarray],
    sample_rate: int,
    *,
    originals: list[Any] | None = None,
    silence_dbfs: float = -60.0,
) -> list[dict[str, Any]]:
    """observe_clips: per clip its duration (s), loudness (RMS dBFS) and silence share (of
    the 20 ms windows below `silence_dbfs`), taken from the ORIGINAL clip's AudioStats (or a
    dict with duration_s, rms_dbfs, silence_share: the manifest's columns) when `originals`
    gives them, else measured on the decoded waveform without its trailing zero padding; and
    the spectral centroid (Hz) of the decoded waveform at `sample_rate`."""
    from dlworkflow.store.audio import AudioStats, measure, spectral_centroid

    out = []
    for i, wave in enumerate(waves):
        w = np.asarray(wave, dtype=np.float32).reshape(-1)
        nonzero = np.flatnonzero(w)
        w = w[: int(nonzero[-1]) + 1] if len(nonzero) else w[:0]
        original = originals[i] if originals is not None and i < len(originals) else None
        levels = _levels(original)
        if levels is None:
            header = AudioStats("", "", int(sample_rate), 1, len(w), len(w) / sample_rate)
            stats = measure(
                w[:, None] if len(w) else np.zeros((1, 1), np.float32),
                header,
                silence_dbfs=silence_dbfs,
            )
            levels = (len(w) / sample_rate, stats.rms_dbfs, stats.silence_share)
        out.append(
            {
                "kind": "audio",
                "duration_s": round(float(levels[0]), _DIGITS),
                "rms_dbfs": round(float(levels[1]), 3),
                "silence_share": round(float(levels[2]), _DIGITS),
                "centroid_hz": round(spectral_centroid(w, int(sample_rate)), 2) if len(w) else 0.0,
            }
        )
    return out


def _levels(original: Any) -> tuple[float, float, float] | None:
    """(duration_s, rms_dbfs, silence_share) of an AudioStats or a dict of them, or None."""
    if original is None:
        return None
    get = original.get if isinstance(original, dict) else lambda k: getattr(original, k, None)
    values: list[Any] = [get("duration_s"), get("rms_dbfs"), get("silence_share")]
    try:
        d, r, s = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return (d, r, s) if all(math.isfinite(v) for v in (d, r, s)) else None


def _num(value: Any) -> float | None:
    v = float(value)
    return round(v, _DIGITS) if math.isfinite(v) else None


def image_sizes(images: list[bytes]) -> list[tuple[int, int]]:
    """(width, height) from each image's header ((0, 0) when the header cannot say)."""
    import io

    from PIL import Image

    from dlworkflow.store.images import image_formats

    sizes = []
    for data in images:
        try:
            with Image.open(io.BytesIO(data), formats=image_formats()) as img:
                sizes.append((int(img.size[0]), int(img.size[1])))
        except Exception:  # noqa: BLE001 - prepare_images already decoded it: DICOM etc.
            sizes.append((0, 0))
    return sizes


def image_summaries(sizes: list[tuple[int, int]], x: np.ndarray) -> list[dict[str, Any]]:
    x64 = x.astype(np.float64)
    flat = x64.reshape(len(x), -1)
    channels = (
        x64.reshape(len(x), x.shape[1], -1).mean(axis=2)
        if x.ndim == 4
        else flat.mean(axis=1, keepdims=True)
    )
    return [
        {
            "kind": "image",
            "width": int(w),
            "height": int(h),
            "mean": round(float(m), _DIGITS),
            "std": round(float(s), _DIGITS),
            "channel_means": [round(float(c), _DIGITS) for c in cm],
        }
        for (w, h), m, s, cm in zip(sizes, flat.mean(axis=1), flat.std(axis=1), channels)
    ]


def text_summaries(texts: list[str], x: np.ndarray) -> list[dict[str, Any]]:
    ids = x.reshape(len(x), -1)
    out = []
    for text, row in zip(texts, ids):
        tokens = int(np.count_nonzero(row))
        pieces = max(1, tokens - 2)  # without [CLS] and [SEP]
        out.append(
            {
                "kind": "text",
                "chars": len(text),
                "words": len(text.split()),
                "tokens": tokens,
                "unk": round(float(np.count_nonzero(row == UNK_ID)) / pieces, _DIGITS),
            }
        )
    return out


def row_summaries(rows: list[dict[str, Any]], expected: list[str] | None) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        missing = sum(1 for v in row.values() if v is None or _is_nan(v))
        if expected:
            missing += sum(1 for name in expected if name not in row)
        out.append({"kind": "row", "fields": len(row), "missing": missing})
    return out


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _class_fields(
    out: np.ndarray, names: list[str], task: Task, target: dict[str, Any]
) -> list[dict[str, Any]]:
    best = out.argmax(axis=1) if len(out) else np.zeros(0, dtype=int)
    return [
        {
            "label": names[int(b)],
            "confidence": round(float(row[b]), 6),
            "probs": [round(p, _DIGITS) for p in row.tolist()],  # tolist: floats at C speed
        }
        for row, b in zip(out, best)
    ]


def _value_fields(
    out: np.ndarray, names: list[str], task: Task, target: dict[str, Any]
) -> list[dict[str, Any]]:
    values = np.asarray(out, dtype=np.float64).reshape(len(out), -1)[:, 0]
    return [{"label": f"{v:.6g}", "value": float(f"{v:.7g}")} for v in values]


def _label_fields(
    out: np.ndarray, names: list[str], task: Task, target: dict[str, Any]
) -> list[dict[str, Any]]:
    from dlworkflow.tasks.multilabel import SEP

    fields = []
    for row in out:
        chosen = task.prediction(row, names, target)["labels"]
        fields.append(
            {
                "label": SEP.join(chosen),
                "labels": list(chosen),
                "probs": [round(float(p), _DIGITS) for p in row],
            }
        )
    return fields


def _box_fields(
    out: np.ndarray, names: list[str], task: Task, target: dict[str, Any]
) -> list[dict[str, Any]]:
    """Detection: the boxes served (score >= the tuned threshold; a request's own threshold
    does not change the log, so live and reference records compare alike)."""
    from dlworkflow.runtime.dense import kept_boxes, score_threshold

    threshold = score_threshold(target)
    fields = []
    for row in out:
        kept = kept_boxes(row, threshold)
        labels = [names[int(k)] if 0 <= int(k) < len(names) else str(int(k)) for k in kept[:, 5]]
        fields.append(
            {
                "label": max(labels, key=lambda n: (labels.count(n), n)) if labels else NO_BOX,
                "confidence": round(float(kept[0, 4]), 6) if len(kept) else 0.0,
                "count": len(kept),
                "boxes": [
                    [
                        *(round(float(v), _DIGITS) for v in box[:4]),
                        label,
                        round(float(box[4]), _DIGITS),
                    ]
                    for box, label in zip(kept, labels)
                ],
                "scores": [round(float(s), _DIGITS) for s in kept[:, 4]],
            }
        )
    return fields


def _mask_fields(
    out: np.ndarray, names: list[str], task: Task, target: dict[str, Any]
) -> list[dict[str, Any]]:
    """Segmentation: the predicted class shares (at the network's size) and the largest
    class other than the first (background), or the first when the mask holds nothing else."""
    fields = []
    for row in out:
        probs = np.asarray(row, dtype=np.float64)
        best = probs.argmax(axis=0)
        share = np.bincount(best.ravel(), minlength=len(names))[: len(names)] / max(1, best.size)
        rest = share[1:]
        label = int(rest.argmax()) + 1 if len(rest) and rest.max() > 0 else 0
        fields.append(
            {
                "label": names[label],
                "confidence": round(float(probs.max(axis=0).mean()), 6),
                "class_share": {n: round(float(s), _DIGITS) for n, s in zip(names, share)},
            }
        )
    return fields


NO_BOX = "(none)"  # a detection record's label when no box reaches the threshold

# the prediction's fields in a record, per task kind
PREDICTION_FIELDS: dict[
    str, Callable[[np.ndarray, list[str], Task, dict[str, Any]], list[dict[str, Any]]]
] = {
    "classification": _class_fields,
    "regression": _value_fields,
    "multilabel": _label_fields,
    "detection": _box_fields,
    "segmentation": _mask_fields,
}


def records(
    bundle: Bundle,
    summaries: list[dict[str, Any]],
    out: np.ndarray,
    emb: np.ndarray | None,
    *,
    ids: list[str] | None = None,
    ts: float | None = None,
    latency_ms: float = 0.0,
    request_items: int | None = None,
) -> list[dict[str, Any]]:
    """The prediction-log records of one call (the server's, the reference's, --inputs');
    `out`: the task outputs `infer` gives."""
    stamp = datetime.fromtimestamp(ts, UTC) if ts is not None else datetime.now(UTC)
    when = stamp.isoformat(timespec="milliseconds")
    ids = ids or new_ids(len(out))
    task, target = bundle.task, bundle.target
    fields = PREDICTION_FIELDS[task.kind](np.asarray(out), list(bundle.classes), task, target)
    result = []
    for i, summary in enumerate(summaries):
        record = {
            "ts": when,
            "id": ids[i],
            "model_version": bundle.version,
            "input": summary,
            **fields[i],
        }
        if emb is not None:
            record["emb"] = [round(v, _DIGITS) for v in emb[i].tolist()]
        record["latency_ms"] = round(float(latency_ms), 3)
        record["request_items"] = int(
            request_items if request_items is not None else len(summaries)
        )
        result.append(record)
    return result


class _RandomIds:
    """Random version-4 UUIDs as 32 hex digits, as uuid.uuid4().hex, from os.urandom bytes
    read 4 KB at a time (uuid4 makes one system call per id: on a busy server each one also
    gives up the GIL and waits to get it back)."""

    CHUNK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)  # a child never repeats the parent's

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0

    def take(self, n: int) -> list[str]:
        size = 16 * n
        with self._lock:
            if self._at + size > len(self._bytes):
                self._bytes, self._at = os.urandom(max(self.CHUNK, size)), 0
            start, self._at = self._at, self._at + size
            data = self._bytes[start : self._at]
        return [
            f"{(int.from_bytes(data[i : i + 16], 'big') & _UUID_CLEAR) | _UUID_V4:032x}"
            for i in range(0, size, 16)
        ]


#: The version (4) and variant (RFC 4122) bits of a random UUID, as uuid.UUID(version=4) sets.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)
_IDS = _RandomIds()


def new_ids(n: int) -> list[str]:
    """n random ids (uuid4 hex: 32 hex digits, 122 random bits each)."""
    return _IDS.take(n)


def rows_to_values(bundle: Bundle, rows: pd.DataFrame) -> list[Any]:
    """Manifest rows -> what `prepare` takes: the image files' bytes, the texts, the series
    (float32 (C, T) arrays, store.series), the clips' bytes, or the rows' feature values (the
    path `dlw predict` and the server take)."""
    if bundle.modality in ("image", "audio"):
        return [Path(p).read_bytes() for p in rows["path"]]
    if bundle.modality == "sequence":
        from dlworkflow.store.series import read_series

        return [read_series(p) for p in rows["path"]]
    if bundle.modality == "text":
        return rows["text"].fillna("").astype(str).tolist()
    return table_records(rows, bundle.preprocessing["features"])


def runtime_inputs(bundle: Bundle, rows: pd.DataFrame) -> np.ndarray:
    """Manifest rows -> the bundle's input array."""
    values = rows_to_values(bundle, rows)
    if bundle.modality == "image":
        return bundle.prepare_images(values)
    if bundle.modality in ("sequence", "audio"):
        return prepare(bundle, values, summarise=False)[0]
    if bundle.modality == "text":
        return bundle.prepare_texts(values)
    return bundle.prepare_rows(values)


def table_records(rows: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    """Rows -> [{feature: python value or None}] (manifest columns are "f:<name>")."""
    import pandas as pd

    out = []
    for _, row in rows.iterrows():
        record = {}
        for name in features:
            value = row["f:" + name] if "f:" + name in row else row.get(name)
            record[name] = (
                None
                if value is None or (not isinstance(value, str) and pd.isna(value))
                else (value.item() if isinstance(value, np.generic) else value)
            )
        out.append(record)
    return out
