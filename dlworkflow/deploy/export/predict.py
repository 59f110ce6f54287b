"""`dlw predict PATH...`: batch predictions through the exported model (ONNX Runtime, the same
path as `dlw serve`), written as CSV: path, the task's prediction columns
(`task.prediction_columns`), error. Classification: label, confidence, p_<class>...;
regression: value (in the target's units); multi-label: labels ("|"-joined), p_<label>....
Object detection and semantic segmentation (predict_dense.py): one row per box (path, box,
x1..y2 in the image's pixels, label, score), or one row per image with its class shares and
the path of its mask PNG.

Image models take image files (folders are searched recursively); audio models WAV, FLAC or OGG
files (folders too); series models .npy arrays ((channels, steps) or (steps,)) or .json files
holding one series (a list of numbers, or a list of channel lists; null for a missing value);
text and tabular models take CSV files with a row per sample (the text column, or the feature
columns). A file or row that
cannot be used gets a row with its error and no prediction; the others are still predicted.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.deploy.export.predict_dense import DENSE_ROWS
from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_write_text
from dlworkflow.results import StepResult
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import Bundle, InputError, load_bundle
from dlworkflow.store.audio import AUDIO_EXTENSIONS

BATCH = 64
_SKIP = {".csv", ".json", ".txt", ".md", ".parquet"}


@dataclass
class PredictResult(StepResult):
    out: Path
    version: int
    n_predicted: int
    n_errors: int
    counts: dict[str, int]  # predictions per class (multi-label: per label)
    values: dict[str, float] | None = None  # regression: mean, min, max of the values

    def title(self) -> str:
        return f"Predictions of model version {self.version}"

    def rows(self) -> list[tuple[str, Any]]:
        top = ", ".join(
            f"{k}: {v}" for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])[:10]
        )
        rows: list[tuple[str, Any]] = [
            ("written", str(self.out)),
            ("predicted", f"{self.n_predicted:,}"),
            ("errors", f"{self.n_errors:,} (see the error column)"),
        ]
        if self.values is not None:
            v = self.values
            rows.append(
                (
                    "values",
                    f"mean {v['mean']:.4g}, min {v['min']:.4g}, max {v['max']:.4g}"
                    if self.n_predicted
                    else "-",
                )
            )
        else:
            rows.append(("labels", top or "-"))
        return rows


def open_version(root: Path, version: int | None) -> Bundle:
    if version is None:
        folder = V.champion_folder(root)
        if folder is None:
            raise V.VersionError(
                "There is no champion model to predict with.",
                expected=f"{V.pointer_path(root)} naming an exported version",
                received=", ".join(f"v{m['version']}" for m in V.versions(root)) or "no exports",
                fix="run `dlw export` (a PASS model becomes the champion), `dlw promote VERSION`,"
                " or pass --version N",
            )
    else:
        V.read_metadata(root, version)
        folder = V.version_folder(root, version)
    return load_bundle(folder)


def predict_files(
    root: Path,
    paths: list[str | Path],
    *,
    out: str | Path | None = None,
    version: int | None = None,
    text_column: str = "text",
) -> PredictResult:
    root = Path(root)
    if not paths:
        raise DlwError(
            "Nothing to predict.",
            expected="one or more files or folders",
            received="none",
            fix="dlw predict images/ or dlw predict rows.csv",
        )
    bundle = open_version(root, version)
    out = Path(out) if out is not None else Path("predictions.csv")
    if bundle.modality == "image" and bundle.task.kind in DENSE_ROWS:
        return _predict_dense(bundle, _expand(paths), out)
    if bundle.modality == "image":
        records = _predict_images(bundle, _expand(paths))
    elif bundle.modality in SIGNAL_FILES:
        records = _predict_signals(bundle, _expand(paths, SIGNAL_FILES[bundle.modality]))
    else:
        records = []
        for path in paths:
            records += _predict_csv(bundle, Path(path), text_column)
    task, names, target = bundle.task, bundle.classes, bundle.target
    good = [r[1] for r in records if r[1] is not None]
    probe = bundle.outputs_of(np.zeros((1, len(names)), dtype=np.float32))  # the shape of one
    outs = np.stack(good) if good else probe[:0]
    columns = (
        task.prediction_columns(outs, names, target)
        if good
        else {k: [] for k in task.prediction_columns(probe, names, target)}
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", *columns, "error"])
    k = 0
    for where, row, error in records:
        if row is None:
            writer.writerow([where, *[""] * len(columns), error])
            continue
        writer.writerow([where, *[values[k] for values in columns.values()], ""])
        k += 1
    atomic_write_text(out, buffer.getvalue())
    counts, values = summarise(
        [task.prediction(row, names, target) for row in outs],
        fields=task.prediction(probe[0], names, target),
    )
    return PredictResult(
        out=out,
        version=bundle.version,
        n_predicted=len(good),
        n_errors=len(records) - len(good),
        counts=counts,
        values=values,
    )


def _predict_dense(bundle: Bundle, files: list[Path], out: Path) -> PredictResult:
    """A detection or segmentation model's CSV (predict_dense.py: a row per box, or a row
    per image and its mask PNG)."""
    sizes: dict[str, tuple[int, int]] = {}
    records = _predict_images(bundle, files, sizes=sizes)
    rows, counts = DENSE_ROWS[bundle.task.kind](
        bundle, [(where, row, error, sizes.get(where)) for where, row, error in records], out
    )
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    atomic_write_text(out, buffer.getvalue())
    good = sum(1 for r in records if r[1] is not None)
    return PredictResult(
        out=out,
        version=bundle.version,
        n_predicted=good,
        n_errors=len(records) - good,
        counts=counts,
    )


def summarise(
    predictions: list[dict[str, Any]], *, fields: dict[str, Any]
) -> tuple[dict[str, int], dict[str, float] | None]:
    """(predictions per class or label, the values' mean/min/max or None) of
    task.prediction dicts (`fields`: one of them, for its keys): a class counts under
    "label", each of a sample's "labels" once; predictions with a "value" are summarised."""
    counts: dict[str, int] = {}
    for p in predictions:
        for label in p.get("labels", [p["label"]] if "label" in p else []):
            counts[str(label)] = counts.get(str(label), 0) + 1
    if "value" not in fields:
        return counts, None
    values = np.array([float(p["value"]) for p in predictions], dtype=np.float64)
    if not len(values):
        return counts, {"mean": math.nan, "min": math.nan, "max": math.nan}
    return counts, {
        "mean": float(values.mean()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _expand(paths: list[str | Path], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The files of `paths`, folders searched recursively (only `suffixes` when given)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not p.name.startswith(".")
                and (
                    p.suffix.lower() in suffixes
                    if suffixes is not None
                    else p.suffix.lower() not in _SKIP
                )
            )
        else:
            files.append(path)  # a missing file gets its error row
    return files


Record = tuple[str, "np.ndarray | None", str]


def _predict_images(
    bundle: Bundle, files: list[Path], *, sizes: dict[str, tuple[int, int]] | None = None
) -> list[Record]:
    """One record per file; `sizes` (when given) receives each decoded image's (width,
    height) as shown, by path."""
    records: list[Record] = []
    for start in range(0, len(files), BATCH):
        chunk = files[start : start + BATCH]
        pixels, good = [], []
        for i, path in enumerate(chunk):
            try:
                array, shown = bundle.decode_image_sized(path.read_bytes(), index=start + i)
                pixels.append(array)
                good.append(i)
                if sizes is not None:
                    sizes[str(path)] = shown
            except InputError as exc:
                records.append((str(path), None, exc.context.get("reason", exc.what)))
            except OSError as exc:
                records.append((str(path), None, f"cannot read the file: {exc.strerror or exc}"))
        if pixels:
            from dlworkflow.preprocess import normalise_pixels

            prep = bundle.preprocessing
            x = normalise_pixels(np.stack(pixels), prep["mean"], prep["std"])
            for i, out in zip(good, bundle.predict_outputs(x)):
                records.append((str(chunk[i]), out, ""))
    order = {str(p): k for k, p in enumerate(files)}
    return sorted(records, key=lambda r: order.get(r[0], 0))


#: The files of a folder that series and audio models read (any named file is tried).
SIGNAL_FILES = {
    "sequence": (".npy", ".json"),
    "audio": AUDIO_EXTENSIONS,  # those folder ingest reads
}


def _predict_signals(bundle: Bundle, files: list[Path]) -> list[Record]:
    """One record per series or clip file, each prepared and predicted on its own (a file
    that cannot be used gets its error)."""
    records: list[Record] = []
    for path in files:
        try:
            if bundle.modality == "audio":
                x = bundle.prepare_clips([path.read_bytes()])
            else:
                x = bundle.prepare_series([_read_series_file(path)])
            records.append((str(path), bundle.predict_outputs(x)[0], ""))
        except InputError as exc:
            reason = exc.context.get("reason") or exc.what
            records.append((str(path), None, str(reason)))
        except OSError as exc:
            records.append((str(path), None, f"cannot read the file: {exc.strerror or exc}"))
        except ValueError as exc:
            records.append((str(path), None, f"not a series file: {str(exc)[:200]}"))
    return records


def _read_series_file(path: Path) -> Any:
    """A .npy array (never unpickled) or a .json series."""
    import json

    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    return json.loads(path.read_text(encoding="utf-8"))


def _predict_csv(bundle: Bundle, path: Path, text_column: str) -> list[Record]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        return [(str(path), None, "file not found")]
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        return [(str(path), None, f"not a readable CSV: {str(exc).splitlines()[0]}")]
    names = [f"{path}:{i + 2}" for i in range(len(frame))]  # the line in the file
    try:
        if bundle.modality == "text":
            if text_column not in frame:
                raise InputError(
                    f"{path} has no column {text_column!r} with the texts.",
                    received=", ".join(map(str, frame.columns[:10])),
                )
            x = bundle.prepare_texts(frame[text_column].astype(str).tolist())
        else:
            rows = [
                {k: (None if v == "" else v) for k, v in r.items()}
                for r in frame.to_dict("records")
            ]
            x = bundle.prepare_rows(rows)
    except InputError as exc:
        return [(str(path), None, exc.what + (f" ({exc.received})" if exc.received else ""))]
    out: list[Record] = []
    for start in range(0, len(x), BATCH):
        for name, row in zip(
            names[start : start + BATCH], bundle.predict_outputs(x[start : start + BATCH])
        ):
            out.append((name, row, ""))
    return out
