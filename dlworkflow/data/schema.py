"""The feature schema: what the data looks like, inferred at ingest and checked afterwards.

The first ingest of a source infers the schema from the samples it accepts and stores it in
.dlw/data/schema.json (with the dataset version it was inferred from). Every later ingest of
the same source (its data.additions included) checks each sample against it as the manifest
streams (no second decode: the manifest row already holds the image's size and mode):

* hard expectations, whose breach quarantines the sample with the reason (never lost: the
  quarantine keeps it, the original file is only read): a label never seen, an image mode of
  a kind never seen (grayscale vs colour), a categorical value never seen (in the main source:
  fresh labelled data from data.additions keeps it, counted, since a new value is what fresh
  data brings), a number where the schema has text is caught by the table reader with the
  schema's column types;
* soft expectations, whose breach is only counted and reported (the sample is kept): a number
  outside the range seen, an image size or a text length outside the range seen, an image
  format never seen, a missing value in a column that had none.

A deliberate change of the data (a new class, a new kind of image) is accepted with `dlw
ingest --accept-schema`, which infers the schema anew from the data; a new data.source starts
a new schema too. `dlw export` copies the schema into the model's metadata.json, and `dlw
serve` checks requests against it (hard: 422 naming the field; soft: served and logged).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import atomic_write_json, read_json, sha256_json
from dlworkflow.store.manifest import FEATURE_PREFIX

if TYPE_CHECKING:
    from dlworkflow.tasks.base import Task
    from dlworkflow.workspace import Workspace

FORMAT = 1
#: A text column with at most this many distinct values is categorical: its values are the
#: allowed ones. More: free text (its values are not checked).
MAX_CATEGORIES = 50
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
ACCEPT = "run `dlw ingest --accept-schema` if the change is deliberate (it infers the schema anew)"


def schema_path(project: Workspace) -> Path:
    return project.paths.state / "data" / "schema.json"


def read_schema(project: Workspace) -> dict[str, Any] | None:
    try:
        schema = read_json(schema_path(project))
    except (OSError, ValueError):
        return None
    return schema if isinstance(schema, dict) and schema.get("format") == FORMAT else None


def write_schema(project: Workspace, schema: dict[str, Any]) -> None:
    path = schema_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, schema)


def schema_hash(schema: dict[str, Any]) -> str:
    return sha256_json({k: v for k, v in schema.items() if k != "inferred_at"})


def channel_kind(mode: str) -> str:
    """gray or colour: the kind of image a mode holds (what the network's channels see)."""
    return "gray" if mode in GRAY_MODES else "colour"


class _Range:
    __slots__ = ("high", "low")

    def __init__(self) -> None:
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value

    def out(self) -> dict[str, float] | None:
        if self.low > self.high:
            return None
        return {"min": _number(self.low), "max": _number(self.high)}


def _number(value: float) -> float:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


class SchemaBuilder:
    """Infers the schema from the manifest rows as they stream (a few dict look-ups a row)."""

    def __init__(self, task: Task, columns: dict[str, str]) -> None:
        self.task = task
        self.columns = dict(columns)  # tabular: name -> number | string
        self.width, self.height, self.chars, self.target = _Range(), _Range(), _Range(), _Range()
        self.modes: Counter[str] = Counter()
        self.formats: Counter[str] = Counter()
        self.numbers = {c: _Range() for c, k in self.columns.items() if k == "number"}
        self.values: dict[str, set[str] | None] = {
            c: set() for c, k in self.columns.items() if k != "number"
        }
        self.missing: Counter[str] = Counter()
        self.text_missing = 0

    def observe(self, row: dict[str, Any]) -> None:
        modality = self.task.modality
        if modality == "image":
            self.width.add(int(row["width"]))
            self.height.add(int(row["height"]))
            self.modes[str(row["mode"])] += 1
            self.formats[image_format(row.get("origin_path") or row.get("path"))] += 1
        elif modality == "text":
            self.chars.add(len(row.get("text") or ""))
        else:
            for name, bounds in self.numbers.items():
                value = row.get(FEATURE_PREFIX + name)
                if value is None or value != value:
                    self.missing[name] += 1
                else:
                    bounds.add(float(value))
            for name, seen in self.values.items():
                value = row.get(FEATURE_PREFIX + name)
                if value is None:
                    self.missing[name] += 1
                elif seen is not None:
                    seen.add(str(value))
                    if len(seen) > MAX_CATEGORIES:
                        self.values[name] = None
        if self.task.kind == "regression":
            with contextlib.suppress(TypeError, ValueError):
                self.target.add(float(row["label"]))

    def schema(self, *, source: str, version: str, n: int, classes: list[str]) -> dict[str, Any]:
        """The schema of the observed rows (`classes`: the ingest's class or label names)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "task": self.task.name,
            "modality": self.task.modality,
            "source": source,
            "inferred_from": version,
            "n_samples": n,
            "inferred_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if self.task.kind == "regression":
            out["target"] = {"type": "number", **(self.target.out() or {})}
        else:
            out["target"] = {"type": "classes", "values": sorted(classes)}
        if self.task.modality == "image":
            out["image"] = {
                "width": self.width.out(),
                "height": self.height.out(),
                "modes": dict(self.modes.most_common()),
                "channels": sorted({channel_kind(m) for m in self.modes}),
                "formats": dict(self.formats.most_common()),
            }
        elif self.task.modality == "text":
            out["text"] = {"chars": self.chars.out()}
        else:
            features: dict[str, Any] = {}
            for name, kind in self.columns.items():
                if kind == "number":
                    features[name] = {"type": "number", **(self.numbers[name].out() or {})}
                else:
                    seen = self.values[name]
                    features[name] = {
                        "type": "category" if seen is not None else "text",
                        "values": sorted(seen) if seen is not None else None,
                    }
                features[name]["missing"] = self.missing[name] > 0
            out["features"] = features
        return out


def image_format(path: Any) -> str:
    suffix = Path(str(path or "")).suffix.lower().lstrip(".")
    return {"jpeg": "jpg", "tif": "tiff"}.get(suffix, suffix) or "unknown"


_FRESH_ID = re.compile(r"add\d+/")  # the sample ids of data.additions (store/splits.py)


class SchemaChecker:
    """Checks manifest rows against a stored schema: `hard(row)` is the reason to quarantine
    it (or None); soft breaches are counted in `differences` (expectation -> samples)."""

    def __init__(self, schema: dict[str, Any], task: Task) -> None:
        self.schema = schema
        self.task = task
        self.checked = 0
        self.quarantined: Counter[str] = Counter()
        self.differences: Counter[str] = Counter()
        self.outside = 0  # samples kept that break a soft expectation
        target = schema.get("target") or {}
        self.classes = set(target.get("values") or []) if target.get("type") == "classes" else None
        image = schema.get("image") or {}
        self.channels = set(image.get("channels") or [])
        self.formats = set((image.get("formats") or {}).keys())
        self.features = schema.get("features") or {}
        self.allowed = {
            name: set(spec["values"])
            for name, spec in self.features.items()
            if spec.get("type") == "category" and spec.get("values") is not None
        }

    def hard(self, row: dict[str, Any]) -> str | None:
        self.checked += 1
        reason = self._hard(row)
        if reason is not None:
            self.quarantined[reason.split(" (")[0]] += 1
        else:
            self._soft(row)
        return reason

    def _hard(self, row: dict[str, Any]) -> str | None:
        if self.classes is not None and row.get("label") is not None:
            unknown = self.task.unknown_labels(str(row["label"]), self.classes)
            if unknown:
                return (
                    f"label {unknown[0]!r} not in the schema "
                    f"({_few(sorted(self.classes))}); {ACCEPT}"
                )
        if self.task.modality == "image" and self.channels:
            kind = channel_kind(str(row["mode"]))
            if kind not in self.channels:
                return (
                    f"{kind} image (mode {row['mode']}) not in the schema "
                    f"({', '.join(sorted(self.channels))} images only); {ACCEPT}"
                )
        fresh = _FRESH_ID.match(str(row.get("sample_id") or "")) is not None
        for name, allowed in self.allowed.items():
            value = row.get(FEATURE_PREFIX + name)
            if value is not None and str(value) not in allowed:
                if fresh:  # fresh labelled data (data.additions): the new value is the news
                    self.differences[f"{name}: a value never seen (fresh data, kept)"] += 1
                    continue
                return (
                    f"value {str(value)[:30]!r} of column {name!r} never seen "
                    f"(schema: {_few(sorted(allowed))}); {ACCEPT}"
                )
        return None

    def _soft(self, row: dict[str, Any]) -> None:
        breaches = soft_breaches(self.schema, row, manifest=True)
        self.outside += bool(breaches)
        for expectation in breaches:
            self.differences[expectation] += 1

    def record(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "quarantined": sum(self.quarantined.values()),
            "quarantine_reasons": dict(self.quarantined.most_common(10)),
            "outside": self.outside,
            "differences": dict(self.differences.most_common(20)),
        }


def soft_breaches(schema: dict[str, Any], item: dict[str, Any], *, manifest: bool) -> list[str]:
    """The soft expectations one sample breaks (kept, counted): its number, size or length
    outside the range seen, a format never seen, a value missing where none was. `item`: a
    manifest row (manifest=True) or what a server knows of a request item: {"width",
    "height", "format"}, {"chars"} or a row's {feature: value}."""
    out = []
    image = schema.get("image")
    if image:
        for side in ("width", "height"):
            bounds = image.get(side)
            if bounds and item.get(side) is not None and not _within(item[side], bounds):
                out.append(f"{side} outside [{bounds['min']}, {bounds['max']}]")
        fmt = (
            image_format(item.get("origin_path") or item.get("path"))
            if manifest
            else str(item.get("format") or "").lower()
        )
        formats = image.get("formats") or {}
        if fmt and formats and fmt not in formats:
            out.append(f"format {fmt} never seen")
        return out
    text = schema.get("text")
    if text:
        chars = len(item.get("text") or "") if manifest else item.get("chars")
        bounds = text.get("chars")
        if bounds and chars is not None and not _within(chars, bounds):
            out.append(f"text length outside [{bounds['min']}, {bounds['max']}] characters")
        return out
    for name, spec in (schema.get("features") or {}).items():
        value = item.get(FEATURE_PREFIX + name) if manifest else item.get(name)
        if value is None or (isinstance(value, float) and value != value):
            if not spec.get("missing"):
                out.append(f"{name} missing (never missing at ingest)")
            continue
        if spec.get("type") == "number" and "min" in spec:
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if not _within(number, spec):
                out.append(f"{name} outside [{spec['min']}, {spec['max']}]")
    return out


def _within(value: float, bounds: dict[str, Any]) -> bool:
    return bool(bounds["min"] <= value <= bounds["max"])


def _few(values: list[str], n: int = 8) -> str:
    return ", ".join(values[:n]) + (f", ... ({len(values)} in all)" if len(values) > n else "")


def summary(schema: dict[str, Any]) -> str:
    """The schema in one line, for the ledger headline and the report."""
    parts = []
    target = schema.get("target") or {}
    if target.get("type") == "classes":
        parts.append(f"{len(target.get('values') or [])} classes")
    elif "min" in target:
        parts.append(f"target in [{target['min']}, {target['max']}]")
    image = schema.get("image")
    if image and image.get("width"):
        w, h = image["width"], image["height"]
        size = (
            f"{w['min']}x{h['min']}"
            if (w["min"], h["min"]) == (w["max"], h["max"])
            else f"{w['min']}-{w['max']} x {h['min']}-{h['max']}"
        )
        parts.append(
            f"images {size} (width x height), modes {', '.join(image.get('modes') or {})}, "
            f"formats {', '.join(image.get('formats') or {})}"
        )
    text = schema.get("text")
    if text and text.get("chars"):
        parts.append(f"texts of {text['chars']['min']}-{text['chars']['max']} characters")
    features = schema.get("features")
    if features:
        kinds = Counter(spec.get("type") for spec in features.values())
        parts.append(
            f"{len(features)} feature columns ("
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            + f"; {sum(1 for s in features.values() if s.get('missing'))} with missing values)"
        )
    return "; ".join(parts)


def infer_from_manifest(project: Workspace) -> dict[str, Any] | None:
    """The schema of the manifest on disk (a dataset ingested before schemas were inferred,
    or written otherwise); None without a manifest."""
    from dlworkflow.errors import DlwError
    from dlworkflow.store.manifest import read_dataset_info, read_manifest
    from dlworkflow.tasks import task_of

    try:
        manifest, info = read_manifest(project), read_dataset_info(project)
    except (DlwError, OSError, ValueError):
        return None
    columns = {
        c.removeprefix(FEATURE_PREFIX): "number" if manifest[c].dtype.kind == "f" else "string"
        for c in manifest.columns
        if c.startswith(FEATURE_PREFIX)
    }
    builder = SchemaBuilder(task_of(info.task or project.config.task), columns)
    for row in manifest.astype(object).where(manifest.notna(), None).to_dict("records"):
        builder.observe({str(k): v for k, v in row.items()})
    return builder.schema(
        source=info.source, version=info.version, n=len(manifest), classes=list(info.classes)
    )


def serving_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """What travels with an exported model (metadata.json "schema"): the input expectations,
    their source and dataset version; the target's expectations stay with the data."""
    if not schema:
        return None
    keep = ("format", "task", "modality", "source", "inferred_from", "image", "text", "features")
    return {k: schema[k] for k in keep if k in schema}
