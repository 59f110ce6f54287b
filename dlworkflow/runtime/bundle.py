"""An exported model version, ready to predict with ONNX Runtime; no torch anywhere.

Usage (what `dlw predict` and `dlw serve` do):

    from dlworkflow.runtime.bundle import InputError, load_bundle
    from dlworkflow.runtime.versions import champion_folder, pointer_path

    bundle = load_bundle(champion_folder(project_root), threads=1)   # BundleError if broken
    x = bundle.prepare_images([png_bytes, jpeg_bytes])  # image models: float32 (N, C, H, W)
    x = bundle.prepare_texts(["a fine film"])           # text models: int64 (N, L)
    x = bundle.prepare_rows([{"age": 41, "city": "Oslo"}])  # tabular models: float32 (N, F)
    x = bundle.prepare_series([[0.1, 0.4, 0.3], ...])   # series models: float32 (N, C, T)
    x = bundle.prepare_clips([wav_bytes])               # audio models: float32 (N, S)
    proba = bundle.predict_proba(x)                     # classification: float32 (N, K)
    labels = [bundle.classes[i] for i in proba.argmax(1)]
    out = bundle.predict_outputs(x)    # any task: task.outputs of the logits (see below)
    preds = bundle.predictions(x)      # any task: one JSON-ready dict per row

What the network's outputs mean comes from the task the model was trained for
(`bundle.task`, metadata.json "task") and what travels with it (`bundle.target`, metadata.json
"target": regression's target scaling {"mean", "std"}, multi-label thresholds; "outputs" says
in words how the ONNX output becomes predictions):
the ONNX graph returns raw logits, and `predict_outputs` applies `task.outputs(logits,
target)` (classification: softmax probabilities; regression: (N, 1) values in the target's
units, the standardisation undone; multi-label: sigmoid probabilities per label).
`predictions` turns each row into `task.prediction(...)` ({"label", "confidence",
"probabilities"}; {"value"}; {"labels", "probabilities"}). Exports made before tasks carried
no "outputs": they are classification models. Importing dlworkflow.tasks pulls no torch.

Each `prepare_*` reproduces training exactly (images: `store.images` decoding with the training
pixel/side limits, EXIF/mode normalisation, bilinear resize, then float32 `(x / 255 - mean) /
std`; texts: the WordPiece tokenizer at the saved max_len; rows: the saved train-split table
encoding; series: each a list of numbers (one channel) or of C channel lists (or a (C, T)
array), steps that are null in every channel at the end dropped as padding, inner gaps of at
most data.max_gap steps filled as ingest fills them (store.series.fill_gaps), the batch
NaN-padded (store.series.nan_padded); clips: WAV/FLAC/OGG bytes decoded by store.clips with the
model's ClipSettings) and raises `InputError` (a DlwError; `context["index"]` is the position
of the bad item) for input that is wrong: undecodable or oversized images, a prepare_* that
does not fit the model's modality, non-string texts, rows missing features, series and clips
that break the checks above, arrays of the wrong dtype/shape for `predict_proba`. A server
turns InputError into a 4xx; BundleError (a broken or missing export) is the operator's
problem. `bundle.metadata` is metadata.json (version, model, classes, verdict, parity, ...);
`bundle.version` its number; `bundle.schema` the feature schema of its data (metadata.json
"schema"), or None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.errors import DlwError
from dlworkflow.fileio import read_json, sha256_file
from dlworkflow.preprocess import (
    TOKENIZER,
    TableInputError,
    encode_table,
    n_features,
    normalise_pixels,
    tokenize,
)
from dlworkflow.runtime.versions import METADATA_FILE, ONNX_FILE, TOKENIZER_FILE
from dlworkflow.store.images import MAX_SIDE
from dlworkflow.tasks import TASKS, Task, task_of

FORMAT = 1
MODALITIES = ("image", "text", "tabular", "sequence", "audio")
#: data.max_gap's default (dlworkflow/config.py), for series exports that lack one.
DEFAULT_MAX_GAP = 3
#: Allowed Python types of a series' values (JSON numbers and null; bool is not a number).
_SERIES_VALUE_TYPES = frozenset({int, float, type(None)})
_FLOAT32_MAX = float(np.finfo(np.float32).max)
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own bomb limit, for metadata that lacks one


class InputError(DlwError):
    """Input the model cannot take (the client's mistake: a server answers 4xx)."""


class BundleError(DlwError):
    """An exported model folder that is missing, incomplete or damaged."""


@dataclass
class Bundle:
    folder: Path
    version: int
    metadata: dict[str, Any]
    modality: str
    classes: list[str]
    session: Any = field(repr=False)
    tokenizer: Path | None = None  # text: the export's tokenizer.json (None: the packaged one)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.metadata.get("preprocessing") or {}

    @property
    def schema(self) -> dict[str, Any] | None:
        """The feature schema of the model's data (metadata.json "schema", inferred by `dlw
        ingest`): what `dlw serve` checks requests against; None for older exports."""
        schema = self.metadata.get("schema")
        return schema if isinstance(schema, dict) else None

    @cached_property
    def task(self) -> Task:
        """The task the model was trained for (its outputs' meaning); exports that predate
        tasks are classification models of their modality."""
        return task_of_metadata(self.metadata)

    @property
    def target(self) -> dict[str, Any]:
        """What the outputs need besides the logits (metadata.json "target", the trained
        model's): regression's {"mean", "std"}, multi-label {"thresholds"}; {} for
        classification (and exports made before tasks, whose "target" was the success
        criterion's number)."""
        target = self.metadata.get("target")
        return dict(target) if isinstance(target, dict) else {}

    # ---- inputs ---------------------------------------------------------------------------
    def prepare_images(self, images: list[bytes]) -> np.ndarray:
        """Encoded image files -> float32 (N, C, H, W), normalised as in training."""
        self._expect("image", "prepare_images")
        if isinstance(images, (bytes, bytearray)) or not isinstance(images, Sequence):
            raise InputError(
                "Expected a list of encoded images (bytes).",
                expected="list[bytes]",
                received=type(images).__name__,
            )
        prep = self.preprocessing
        channels, (height, width) = int(prep["channels"]), prep["size"]
        pixels = np.empty((len(images), channels, int(height), int(width)), dtype=np.uint8)
        for i, data in enumerate(images):
            pixels[i] = self.decode_image(data, index=i)
        return normalise_pixels(pixels, prep["mean"], prep["std"])

    def prepare_images_sized(self, images: list[bytes]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """prepare_images, and each image's (width, height) as shown (EXIF orientation
        applied), before the resize to the model's size: what dense predictions (boxes,
        masks) are scaled back to."""
        self._expect("image", "prepare_images")
        if isinstance(images, (bytes, bytearray)) or not isinstance(images, Sequence):
            raise InputError(
                "Expected a list of encoded images (bytes).",
                expected="list[bytes]",
                received=type(images).__name__,
            )
        prep = self.preprocessing
        arrays, sizes = [], []
        for i, data in enumerate(images):
            array, size = self.decode_image_sized(data, index=i)
            arrays.append(array)
            sizes.append(size)
        channels, (height, width) = int(prep["channels"]), prep["size"]
        pixels = (
            np.stack(arrays)
            if arrays
            else np.empty((0, channels, int(height), int(width)), dtype=np.uint8)
        )
        return normalise_pixels(pixels, prep["mean"], prep["std"]), sizes

    def decode_image(self, data: bytes, *, index: int = 0) -> np.ndarray:
        """One encoded image -> uint8 (C, H, W) at the model's size (InputError if unusable)."""
        return self.decode_image_sized(data, index=index)[0]

    def decode_image_sized(
        self, data: bytes, *, index: int = 0
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """decode_image, and the image's (width, height) as shown (EXIF orientation applied)
        before the resize."""
        from dlworkflow.store.images import (
            ImageDecodeError,
            decode_image_bytes,
            normalise,
            to_array,
        )

        self._expect("image", "decode_image")
        prep = self.preprocessing
        try:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ImageDecodeError(f"expected bytes, got {type(data).__name__}")
            img = normalise(
                decode_image_bytes(
                    bytes(data),
                    max_pixels=int(prep.get("max_pixels", DEFAULT_MAX_PIXELS)),
                    max_side=int(prep.get("max_side", MAX_SIDE)),
                )
            )
            array = to_array(
                img,
                channels=int(prep["channels"]),
                size=(int(prep["size"][0]), int(prep["size"][1])),
            )
            return array, (int(img.size[0]), int(img.size[1]))
        except ImageDecodeError as exc:
            raise InputError(
                f"Image {index} cannot be used: {exc.reason}.",
                expected="a PNG, JPEG, TIFF, BMP, WebP, ... or DICOM file within "
                f"{int(prep.get('max_pixels', DEFAULT_MAX_PIXELS)):,} "
                "pixels",
                received=f"{len(data) if hasattr(data, '__len__') else '?'} bytes",
                fix="send the image file's bytes unchanged",
                context={"index": index, "reason": exc.reason},
            ) from None

    def prepare_texts(self, texts: list[str]) -> np.ndarray:
        """Texts -> int64 token ids (N, L), tokenized as in training (saved max_len)."""
        self._expect("text", "prepare_texts")
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError(
                "Expected a list of texts.", expected="list[str]", received=type(texts).__name__
            )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(
                    f"Text {i} is not a string.",
                    expected="str",
                    received=type(text).__name__,
                    context={"index": i},
                )
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate (e.g. "\ud800")
                raise InputError(
                    f"Text {i} is not valid Unicode: {exc.reason}.",
                    expected="valid UTF-8 text",
                    received=repr(text[:40]),
                    context={"index": i},
                ) from exc
        if not texts:
            width = self.metadata["input"]["shape"][1]
            return np.zeros((0, width if isinstance(width, int) else 2), dtype=np.int64)
        ids = tokenize(
            list(texts), int(self.preprocessing["max_len"]), tokenizer_json=self.tokenizer
        )
        width = self.metadata["input"]["shape"][1]
        if isinstance(width, int) and ids.shape[1] < width:  # the export takes exactly max_len
            ids = np.pad(ids, ((0, 0), (0, width - ids.shape[1])))
        return ids

    def prepare_rows(self, rows: list[dict]) -> np.ndarray:
        """Rows {feature: value} -> float32 (N, F) with the train split's encoding."""
        import pandas as pd

        self._expect("tabular", "prepare_rows")
        if isinstance(rows, dict) or not isinstance(rows, Sequence):
            raise InputError(
                "Expected a list of rows (objects of feature: value).",
                expected="list[dict]",
                received=type(rows).__name__,
            )
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InputError(
                    f"Row {i} is not an object of feature: value.",
                    expected="dict",
                    received=type(row).__name__,
                    context={"index": i},
                )
            bad = [
                k
                for k, v in row.items()
                if v is not None and not isinstance(v, (str, int, float, bool, np.generic))
            ]
            if bad:
                raise InputError(
                    f"Row {i} has values that are not numbers or strings.",
                    expected="number, string or null",
                    received=", ".join(map(str, bad[:5])),
                    context={"index": i},
                )
        prep = self.preprocessing
        if not rows:
            return np.zeros((0, n_features(prep)), dtype=np.float32)
        frame = pd.DataFrame(list(rows), dtype=object)
        try:
            return encode_table(frame, prep)
        except TableInputError as exc:
            raise InputError(
                exc.what, expected=exc.expected, received=exc.received, fix=exc.fix
            ) from None

    def prepare_series(self, series: list[Any]) -> np.ndarray:
        """Series -> float32 (N, C, T), NaN after each series' end (the ONNX input). Each item
        is a list of numbers or null (a one-channel series), a list of C such lists (one per
        channel, of equal length), or a (C, T) / (T,) array. Null (NaN) steps at the end of
        every channel are padding and dropped; inner gaps of at most `max_gap` steps are
        filled by linear interpolation (as ingest does); InputError (context "index",
        "reason", "problem") for anything else: not numbers, a wrong channel count, an empty,
        too short or too long series, a longer gap, an infinite value."""
        from dlworkflow.store.series import fill_gaps, nan_padded

        self._expect("sequence", "prepare_series")
        if isinstance(series, (str, bytes, dict)) or not isinstance(series, Sequence):
            raise InputError(
                "Expected a list of series.",
                expected="list of series, each a list of numbers or a list of channel lists",
                received=type(series).__name__,
            )
        prep = self.preprocessing
        channels = int(prep.get("channels") or 1)
        max_gap = int(prep.get("max_gap", DEFAULT_MAX_GAP))
        arrays = []
        for i, item in enumerate(series):
            a = _trim_padding(self._series_array(item, i, channels))
            self._check_length(a.shape[1], i)
            filled, problem = fill_gaps(a, max_gap)
            if problem is not None:
                raise _series_error(
                    i,
                    f"Series {i} cannot be used: {problem}.",
                    "gap",
                    expected=f"at most {max_gap} missing (null) steps in a row inside a series "
                    "(data.max_gap), none at its start",
                    received=problem,
                    fix="send the series without long gaps (interpolate or split it first)",
                )
            arrays.append(filled)
        if not arrays:
            return np.zeros((0, channels, 1), dtype=np.float32)
        return nan_padded(arrays)

    def _series_array(self, item: Any, index: int, channels: int) -> np.ndarray:
        """float64 (C, T) of one series item (null -> NaN), its structure and types checked."""
        expected = (
            "a list of numbers (null for a missing value)"
            if channels == 1
            else f"a list of {channels} channel lists of numbers, all of one length"
        )
        if isinstance(item, np.ndarray):
            if item.dtype.kind not in "fiu" or item.ndim not in (1, 2):
                raise _series_error(
                    index,
                    f"Series {index} is not an array of numbers (channels, steps).",
                    "structure",
                    expected=expected,
                    received=f"{item.dtype} array of shape {list(item.shape)}",
                )
            a = np.asarray(item, dtype=np.float64)
            a = a[None, :] if a.ndim == 1 else a
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], (list, tuple)):
            rows = [self._channel(c, index, j, expected) for j, c in enumerate(item)]
            lengths = {len(r) for r in rows}
            if len(lengths) != 1:
                raise _series_error(
                    index,
                    f"The channels of series {index} have different lengths.",
                    "structure",
                    expected="channel lists of one length (null for a missing value)",
                    received=f"lengths {sorted(lengths)[:5]}",
                )
            a = np.array(rows, dtype=np.float64)
        elif isinstance(item, (list, tuple)):
            a = np.array([self._channel(item, index, 0, expected)], dtype=np.float64)
        else:
            raise _series_error(
                index,
                f"Series {index} is not a list.",
                "structure",
                expected=expected,
                received=type(item).__name__,
            )
        if a.shape[0] != channels:
            raise _series_error(
                index,
                f"Series {index} has {a.shape[0]} channel(s); the model takes {channels}.",
                "channels",
                expected=expected,
                received=f"{a.shape[0]} channel(s)",
                fix="send every channel the model was trained on, in its order",
            )
        if np.isinf(a).any() or (np.abs(a[np.isfinite(a)]) > _FLOAT32_MAX).any():
            raise _series_error(
                index,
                f"Series {index} holds a value beyond what the model's 32-bit numbers hold.",
                "value",
                expected=f"finite numbers within +-{_FLOAT32_MAX:.6g}",
                received="an infinite or too large value",
            )
        return a

    @staticmethod
    def _channel(values: Any, index: int, channel: int, expected: str) -> list[Any]:
        if not isinstance(values, (list, tuple)) or not set(map(type, values)).issubset(
            _SERIES_VALUE_TYPES
        ):
            bad = (
                type(values).__name__
                if not isinstance(values, (list, tuple))
                else next(type(v).__name__ for v in values if type(v) not in _SERIES_VALUE_TYPES)
            )
            raise _series_error(
                index,
                f"Series {index}, channel {channel}: every value must be a number or null.",
                "structure",
                expected=expected,
                received=f"a value of type {bad}",
                fix="send numbers unquoted, missing values as null",
            )
        return list(values)

    def _check_length(self, length: int, index: int) -> None:
        prep = self.preprocessing
        least = max(1, int(prep.get("min_length", 1)))
        most = int(prep.get("max_length", 0)) or None
        if length < least:
            what = "no values" if length == 0 else f"{length} step(s)"
            raise _series_error(
                index,
                f"Series {index} has {what}; the model takes at least {least}.",
                "empty" if length == 0 else "too_short",
                expected=f"at least {least} time step(s) (data.series.min_length)",
                received=what,
            )
        if most is not None and length > most:
            raise _series_error(
                index,
                f"Series {index} has {length:,} steps; the model takes at most {most:,}.",
                "too_long",
                expected=f"at most {most:,} time steps (data.series.max_length)",
                received=f"{length:,} steps",
                fix="send a shorter window of the series",
            )

    def clip_settings(self) -> Any:
        """The model's store.clips.ClipSettings (sample rate, duration policy, limits)."""
        from dlworkflow.store.clips import ClipSettings

        self._expect("audio", "clip_settings")
        return ClipSettings.from_dict(self.preprocessing)

    def prepare_clips(self, clips: list[bytes]) -> np.ndarray:
        """WAV/FLAC/OGG files' bytes -> float32 (N, S) mono waveforms at the model's sample
        rate with its duration policy (store.clips, as in training); InputError (context
        "index", "reason") for a clip that cannot be decoded or breaks the limits."""
        from dlworkflow.runtime.observe import measured_clips

        settings = self.clip_settings()
        if isinstance(clips, (bytes, bytearray, str)) or not isinstance(clips, Sequence):
            raise InputError(
                "Expected a list of audio files (bytes).",
                expected="list[bytes]",
                received=type(clips).__name__,
            )
        for i, clip in enumerate(clips):
            if not isinstance(clip, (bytes, bytearray)):
                raise InputError(
                    f"Clip {i} is not the bytes of an audio file.",
                    expected="bytes of a WAV, FLAC or OGG file",
                    received=type(clip).__name__,
                    context={"index": i, "reason": "not bytes"},
                )
        return measured_clips([bytes(c) for c in clips], settings)[0]

    # ---- prediction -----------------------------------------------------------------------
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, K) class probabilities (softmax of the ONNX model's logits)."""
        x = self._check_array(x)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        logits = self.session.run(["logits"], {"input": x})[0]
        return softmax(logits)

    @property
    def logits_shape(self) -> tuple[int, ...]:
        """The shape of one row of the ONNX output "logits": (K,) with K = len(classes); a
        dense model's map (metadata.json "output" "shape"): detection (C + 4, H/stride,
        W/stride), segmentation (C, H, W)."""
        shape = (self.metadata.get("output") or {}).get("shape") or []
        rest = shape[1:]
        if self.task.dense and rest and all(isinstance(s, int) for s in rest):
            return tuple(int(s) for s in rest)
        return (len(self.classes),)

    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, *logits_shape) raw outputs of the ONNX graph: (N, K), K =
        len(classes); a dense model's maps."""
        x = self._check_array(x)
        if len(x) == 0:
            return np.zeros((0, *self.logits_shape), dtype=np.float32)
        return np.asarray(self.session.run(["logits"], {"input": x})[0])

    def outputs_of(self, logits: np.ndarray) -> np.ndarray:
        """task.outputs of raw logits: what they mean for this model's task (a dense model's
        maps keep their shape: detection's decoded boxes (N, K, 6), segmentation's
        probabilities (N, C, H, W))."""
        if self.task.dense:
            logits = np.asarray(logits, dtype=np.float32)
            if len(logits) == 0:
                return self.empty_outputs()
            return self.task.outputs(logits, self.target)
        logits = np.asarray(logits, dtype=np.float32).reshape(len(logits), -1)
        if len(logits) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self.task.outputs(logits, self.target)

    def empty_outputs(self) -> np.ndarray:
        """Task outputs of no input: the shape of the outputs with 0 rows."""
        if not self.task.dense:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        probe = np.zeros((1, *self.logits_shape), dtype=np.float32)
        return np.asarray(self.task.outputs(probe, self.target))[:0]

    def predict_outputs(self, x: np.ndarray) -> np.ndarray:
        """(N, K) task outputs: classification the softmax probabilities (float32, the same
        numbers as predict_proba); regression (N, 1) values in the target's units;
        multi-label the probability of each label."""
        return self.outputs_of(self.predict_logits(x))

    def predictions(self, x: np.ndarray) -> list[dict[str, Any]]:
        """One JSON-ready prediction per row of x (task.prediction)."""
        return self.predictions_of(self.predict_outputs(x))

    def predictions_of(self, out: np.ndarray) -> list[dict[str, Any]]:
        """task.prediction of every row of task outputs."""
        task, target = self.task, self.target
        return [task.prediction(row, self.classes, target) for row in out]

    def _check_array(self, x: Any) -> np.ndarray:
        spec = self.metadata["input"]
        dtype = np.dtype(spec["dtype"])
        if not isinstance(x, np.ndarray):
            raise InputError(
                "predict_proba takes a numpy array (from prepare_*).",
                expected=f"{spec['dtype']} array",
                received=type(x).__name__,
            )
        shape = spec["shape"]  # e.g. ["batch", 1, 16, 16] or ["batch", "tokens"]
        if x.ndim != len(shape) or any(
            isinstance(s, int) and s != d for s, d in zip(shape, x.shape)
        ):
            raise InputError(
                "The input array does not have the model's shape.",
                expected=str(shape),
                received=str(list(x.shape)),
            )
        if x.dtype != dtype:
            if not np.can_cast(x.dtype, dtype, casting="same_kind"):
                raise InputError(
                    "The input array does not have the model's dtype.",
                    expected=str(dtype),
                    received=str(x.dtype),
                )
            x = x.astype(dtype)
        least = int(self.preprocessing.get("min_samples") or 0)
        if self.modality == "audio" and len(x) and x.shape[1] < least:
            raise InputError(
                "The clips are too short for the model's front end.",
                expected=f"at least {least} samples ({least / self._rate():.3f} s)",
                received=f"{x.shape[1]} samples",
                fix="send longer clips",
            )
        return np.ascontiguousarray(x)

    def _rate(self) -> float:
        return float(self.preprocessing.get("sample_rate") or 16_000)

    def _expect(self, modality: str, method: str) -> None:
        if self.modality != modality:
            raise InputError(
                f"This model takes {self.modality} input; {method} is for {modality} models.",
                expected=f"{self.modality} input",
                received=f"{modality} input",
            )


def _series_error(index: int, what: str, problem: str, **fields: Any) -> InputError:
    """An InputError about series `index`; context "problem" says which check failed
    (structure, channels, value, empty, too_short, too_long, gap)."""
    return InputError(what, context={"index": index, "reason": what, "problem": problem}, **fields)


def _trim_padding(a: np.ndarray) -> np.ndarray:
    """The (C, T) series without its trailing steps that are NaN in every channel."""
    real = ~np.isnan(a).all(axis=0)
    if not real.any():
        return a[:, :0]
    return a[:, : int(np.flatnonzero(real)[-1]) + 1]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def task_of_metadata(metadata: dict[str, Any]) -> Task:
    """The Task of an export's metadata.json: its "task" name, or (exports made before tasks)
    the classification task of its modality; BundleError for a task this version lacks."""
    name = metadata.get("task")
    if name:
        try:
            return task_of(str(name))
        except DlwError:
            raise BundleError(
                f"The model was exported for the task {name!r}, which this "
                "version of dlworkflow does not know.",
                expected=", ".join(TASKS.names()),
                received=repr(name),
                fix="serve it with the dlworkflow version that exported it, or export it again",
            ) from None
    modality = metadata.get("modality", "image")
    return next(t for t in map(TASKS.get, TASKS) if t.modality == modality and t.single_label)


def load_bundle(folder: str | Path, *, threads: int | None = None) -> Bundle:
    """Open v<N>/ (metadata.json + model.onnx, checked against its recorded sha256) in an
    ONNX Runtime CPU session; `threads` sets intra-op threads, which then sleep instead of
    spinning when idle (None: ONNX Runtime's defaults)."""
    import onnxruntime as ort

    folder = Path(folder)
    meta_path, onnx_path = folder / METADATA_FILE, folder / ONNX_FILE
    if not meta_path.is_file() or not onnx_path.is_file():
        raise BundleError(
            f"{folder} is not a complete exported model.",
            expected=f"{METADATA_FILE} and {ONNX_FILE}",
            received=", ".join(sorted(p.name for p in folder.iterdir()))
            if folder.is_dir()
            else "no such folder",
            fix="run `dlw export`",
        )
    try:
        meta = read_json(meta_path)
    except (OSError, ValueError) as exc:
        raise BundleError(
            f"{meta_path} is not valid JSON.", received=str(exc), fix="run `dlw export` again"
        ) from None
    if meta.get("format") != FORMAT or meta.get("modality") not in MODALITIES:
        raise BundleError(
            f"{meta_path} is not a dlworkflow export this version can read.",
            expected=f"format {FORMAT}, modality one of {', '.join(MODALITIES)}",
            received=f"format {meta.get('format')!r}, modality {meta.get('modality')!r}",
            fix="run `dlw export` again with this version of dlworkflow",
        )
    _check_recorded_hash(folder, meta, ONNX_FILE)
    task_of_metadata(meta)  # a task this version lacks is refused now, not at a request
    tokenizer = _text_tokenizer(folder, meta) if meta["modality"] == "text" else None
    options = ort.SessionOptions()
    if threads is not None:  # a server's share of the cores: its threads sleep when idle
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own exception types)
        raise BundleError(
            f"ONNX Runtime cannot load {onnx_path}.",
            received=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            fix="run `dlw export` again",
        ) from None
    return Bundle(
        folder=folder,
        version=int(meta["version"]),
        metadata=meta,
        modality=meta["modality"],
        classes=[str(c) for c in meta["classes"]],
        session=session,
        tokenizer=tokenizer,
    )


def _check_recorded_hash(folder: Path, meta: dict[str, Any], name: str) -> None:
    """A file of the export must match the sha256 that metadata.json recorded for it."""
    expected_sha = (meta.get("files") or {}).get(name)
    if expected_sha and sha256_file(folder / name) != expected_sha:
        raise BundleError(
            f"{folder / name} does not match the hash recorded at export: the "
            "file was changed or corrupted.",
            expected=f"sha256 {expected_sha[:16]}...",
            fix="run `dlw export` again",
        )


def _text_tokenizer(folder: Path, meta: dict[str, Any]) -> Path | None:
    """The export's own tokenizer.json (checked), else None for the packaged one (exports made
    before the vocabulary travelled with the model). A tokenizer that cannot be used is refused
    here, not at the first request."""
    if meta["preprocessing"].get("tokenizer") != TOKENIZER:
        raise BundleError(
            "The model uses a tokenizer this version of dlworkflow lacks.",
            expected=TOKENIZER,
            received=repr(meta["preprocessing"].get("tokenizer")),
            fix="export the model again with this version",
        )
    own = folder / TOKENIZER_FILE
    if TOKENIZER_FILE in (meta.get("files") or {}):
        if not own.is_file():
            raise BundleError(
                f"{own} is missing: the export records it.",
                expected=TOKENIZER_FILE,
                fix="run `dlw export` again",
            )
        _check_recorded_hash(folder, meta, TOKENIZER_FILE)
    tokenizer = own if own.is_file() else None
    tokenize(["ready"], 2, tokenizer_json=tokenizer)
    return tokenizer
