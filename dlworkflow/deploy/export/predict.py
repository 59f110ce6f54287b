"""`dlw predict PATH...`: batch predictions through the exported model (ONNX Runtime, the same
path as `dlw serve`), written as CSV: path, label, confidence, p_<class>..., error.

Image models take image files (folders are searched recursively); text and tabular models take
CSV files with a row per sample (the text column, or the feature columns). A file or row that
cannot be used gets a row with its error and no prediction; the others are still predicted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.deploy.runtime import versions as V
from dlworkflow.deploy.runtime.bundle import Bundle, InputError, load_bundle
from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_write_text
from dlworkflow.results import StepResult

BATCH = 64
_SKIP = {".csv", ".json", ".txt", ".md", ".parquet"}


@dataclass
class PredictResult(StepResult):
    out: Path
    version: int
    n_predicted: int
    n_errors: int
    counts: dict[str, int]

    def title(self) -> str:
        return f"Predictions of model version {self.version}"

    def rows(self) -> list[tuple[str, Any]]:
        top = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items(),
                                                      key=lambda kv: -kv[1])[:10])
        return [("written", str(self.out)), ("predicted", f"{self.n_predicted:,}"),
                ("errors", f"{self.n_errors:,} (see the error column)"),
                ("labels", top or "-")]


def open_version(root: Path, version: int | None) -> Bundle:
    if version is None:
        folder = V.champion_folder(root)
        if folder is None:
            raise V.VersionError(
                "There is no champion model to predict with.",
                expected=f"{V.pointer_path(root)} naming an exported version",
                received=", ".join(f"v{m['version']}" for m in V.versions(root)) or "no exports",
                fix="run `dlw export` (a PASS model becomes the champion), `dlw promote VERSION`,"
                    " or pass --version N")
    else:
        V.read_metadata(root, version)
        folder = V.version_folder(root, version)
    return load_bundle(folder)


def predict_files(root: Path, paths: list[str | Path], *, out: str | Path | None = None,
                  version: int | None = None, text_column: str = "text") -> PredictResult:
    root = Path(root)
    if not paths:
        raise DlwError("Nothing to predict.", expected="one or more files or folders",
                       received="none", fix="dlw predict images/ or dlw predict rows.csv")
    bundle = open_version(root, version)
    out = Path(out) if out is not None else Path("predictions.csv")
    if bundle.modality == "image":
        records = _predict_images(bundle, _expand(paths))
    else:
        records = []
        for path in paths:
            records += _predict_csv(bundle, Path(path), text_column)
    classes = bundle.classes
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "label", "confidence", *[f"p_{c}" for c in classes], "error"])
    counts: dict[str, int] = {}
    for where, proba, error in records:
        if proba is None:
            writer.writerow([where, "", "", *[""] * len(classes), error])
            continue
        k = int(np.argmax(proba))
        counts[classes[k]] = counts.get(classes[k], 0) + 1
        writer.writerow([where, classes[k], f"{float(proba[k]):.6f}",
                         *[f"{float(p):.6f}" for p in proba], ""])
    atomic_write_text(out, buffer.getvalue())
    n_errors = sum(1 for r in records if r[1] is None)
    return PredictResult(out=out, version=bundle.version, n_predicted=len(records) - n_errors,
                         n_errors=n_errors, counts=counts)


def _expand(paths: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file()
                            and not p.name.startswith(".") and p.suffix.lower() not in _SKIP)
        else:
            files.append(path)  # a missing file gets its error row
    return files


Record = tuple[str, "np.ndarray | None", str]


def _predict_images(bundle: Bundle, files: list[Path]) -> list[Record]:
    records: list[Record] = []
    for start in range(0, len(files), BATCH):
        chunk = files[start:start + BATCH]
        pixels, good = [], []
        for i, path in enumerate(chunk):
            try:
                pixels.append(bundle.decode_image(path.read_bytes(), index=start + i))
                good.append(i)
            except InputError as exc:
                records.append((str(path), None, exc.context.get("reason", exc.what)))
            except OSError as exc:
                records.append((str(path), None, f"cannot read the file: {exc.strerror or exc}"))
        if pixels:
            from dlworkflow.preprocess import normalise_pixels

            prep = bundle.preprocessing
            x = normalise_pixels(np.stack(pixels), prep["mean"], prep["std"])
            for i, proba in zip(good, bundle.predict_proba(x)):
                records.append((str(chunk[i]), proba, ""))
    order = {str(p): k for k, p in enumerate(files)}
    return sorted(records, key=lambda r: order.get(r[0], 0))


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
                raise InputError(f"{path} has no column {text_column!r} with the texts.",
                                 received=", ".join(map(str, frame.columns[:10])))
            x = bundle.prepare_texts(frame[text_column].astype(str).tolist())
        else:
            rows = [{k: (None if v == "" else v) for k, v in r.items()}
                    for r in frame.to_dict("records")]
            x = bundle.prepare_rows(rows)
    except InputError as exc:
        return [(str(path), None, exc.what + (f" ({exc.received})" if exc.received else ""))]
    out: list[Record] = []
    for start in range(0, len(x), BATCH):
        for name, proba in zip(names[start:start + BATCH],
                               bundle.predict_proba(x[start:start + BATCH])):
            out.append((name, proba, ""))
    return out
