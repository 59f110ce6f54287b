"""What the data pages show, read from the project's records: the manifest and the split's
assignment (the samples, by class), the quarantine (what ingest set aside, with reasons), the
explore run in the ledger and reports/eda.html (the EDA summary and its sections), and the
explore records (reports/explore/records/*.csv: duplicate pairs, the 2-D map, label issues).

Sealed samples (the test set, retrain's fresh slices) are never listed, linked or served: the
visible samples are the manifest's rows whose split is not sealed. Each table is read once and
kept until its file changes (mtime and size), so a page costs a lookup, not a Parquet read."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project

EDA_REPORT = "eda.html"  # under reports/ (dlworkflow.explore.step.REPORT_FILE)
IMAGE_MEDIA = {  # formats a browser shows, served as images; anything else gets no preview
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
MAX_IMAGE_BYTES = 8 << 20  # larger files are not served as thumbnails
MAX_TEXT = 400  # characters of a text sample shown on a card
MAX_FEATURES = 12  # table columns shown per row
FEATURE_PREFIX = "f:"  # the manifest's tabular feature columns (store.manifest.FEATURE_PREFIX)

T = TypeVar("T")
_cache: dict[tuple[str, str], tuple[Any, Any]] = {}
_lock = threading.Lock()


def _stamp(*files: Path) -> tuple[Any, ...]:
    out: list[Any] = []
    for f in files:
        try:
            st = f.stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def cached(project: Project, name: str, files: tuple[Path, ...], build: Callable[[], T]) -> T:
    """build(), kept per project and name until one of `files` changes."""
    key, stamp = (str(project.root), name), _stamp(*files)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    value = build()
    with _lock:
        _cache[key] = (stamp, value)
    return value


# ---- samples ----------------------------------------------------------------------------------


@dataclass
class Samples:
    """The manifest's visible rows (not sealed), their display class and where to find them."""

    modality: str
    rows: pd.DataFrame  # sample_id, label, class, split, path/text/features (visible rows only)
    classes: list[tuple[str, int]]  # (class, count), in natural order
    by_class: dict[str, list[int]]  # class -> row positions
    position: dict[str, int]  # sample_id -> row position
    features: list[str] = field(default_factory=list)  # tabular: the columns shown
    n_sealed: int = 0
    columns: dict[str, list[Any]] = field(default_factory=dict)  # rows' columns as lists

    def __post_init__(self) -> None:
        self.columns = {c: self.rows[c].tolist() for c in self.rows.columns}

    def row(self, sample_id: str) -> dict[str, Any] | None:
        at = self.position.get(sample_id)
        return None if at is None else self.card(at)

    def card(self, at: int) -> dict[str, Any]:
        """One sample as the pages draw it."""
        c = self.columns
        path = c["path"][at] if "path" in c else None
        out: dict[str, Any] = {
            "sample_id": c["sample_id"][at],
            "label": str(c["label"][at]),
            "class": c["class"][at],
            "split": c["split"][at],
            "path": str(path) if _present(path) else "",
            "image": False,
            "text": None,
            "values": [],
        }
        if self.modality == "image" and out["path"]:
            out["image"] = Path(out["path"]).suffix.lower() in IMAGE_MEDIA
        if "text" in c:
            text = str(c["text"][at]) if _present(c["text"][at]) else ""
            out["text"] = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
        if self.features:
            out["values"] = [_short(c[FEATURE_PREFIX + f][at]) for f in self.features]
        return out


def _present(value: Any) -> bool:
    try:
        return not (value is None or bool(value != value))
    except (TypeError, ValueError):
        return False


def _short(value: Any) -> str:
    if not _present(value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "…"


def samples(project: Project) -> Samples:
    paths = project.paths
    files = (paths.manifest, paths.split_dir / "assignments.parquet", paths.config)
    return cached(project, "samples", files, lambda: _load_samples(project))


def _load_samples(project: Project) -> Samples:
    import numpy as np

    from dlworkflow.explore.targets import groups
    from dlworkflow.store import read_manifest
    from dlworkflow.store.splits import is_sealed
    from dlworkflow.tasks import task_of

    task = project.config.task
    manifest = read_manifest(project)
    ids = manifest["sample_id"].astype(str)
    split = ids.map(lambda _: "")
    if (project.paths.split_dir / "split.json").is_file():
        from dlworkflow.store import read_assignments

        table = read_assignments(project)
        split_of = dict(zip(table["sample_id"].astype(str), table["split"].astype(str)))
        split = ids.map(lambda s: split_of.get(s, "")).astype(str)
    sealed = split.map(is_sealed).astype(bool).to_numpy()
    keep = [c for c in ("sample_id", "label", "path", "text") if c in manifest.columns]
    features = [c[len(FEATURE_PREFIX) :] for c in manifest.columns if c.startswith(FEATURE_PREFIX)]
    keep += [FEATURE_PREFIX + c for c in features[:MAX_FEATURES]]
    rows = manifest.loc[~sealed, keep].reset_index(drop=True)
    rows["sample_id"] = rows["sample_id"].astype(str)
    rows["split"] = split[~sealed].to_numpy()
    labels = rows["label"].astype(str).to_numpy()
    rows["class"] = groups(task, labels) if len(rows) else np.array([], dtype=str)
    by_class: dict[str, list[int]] = {}
    for at, name in enumerate(rows["class"].tolist()):
        by_class.setdefault(name, []).append(at)
    classes = sorted(((c, len(v)) for c, v in by_class.items()), key=lambda cv: natural(cv[0]))
    return Samples(
        modality=task_of(task).modality,
        rows=rows,
        classes=classes,
        by_class=by_class,
        position={s: i for i, s in enumerate(rows["sample_id"].tolist())},
        features=features[:MAX_FEATURES],
        n_sealed=int(sealed.sum()),
    )


def natural(text: str) -> tuple[Any, ...]:
    """Sort key: numbers by value ("2" before "10"), then text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text))


def image_file(project: Project, sample_id: str) -> tuple[Path, str] | None:
    """(file, media type) of a visible sample's image: servable_image of the path its manifest
    row names. A path given in a request is never opened; a sealed or unknown id gets None."""
    row = samples(project).row(sample_id)
    return servable_image(project, row["path"]) if row is not None and row["image"] else None


def servable_image(project: Project, path: str) -> tuple[Path, str] | None:
    """(file, media type) of an image the pages may serve, or None: `path` as a project record
    names it (relative to the project root or absolute), an allow-listed format (IMAGE_MEDIA),
    an existing regular file of at most MAX_IMAGE_BYTES. The one check of every image route
    (/data/image, /labels/image, /evaluation/S/image): each passes only a path it looked up
    among its visible (not sealed) samples, never one from a request."""
    if not path:
        return None
    file = Path(path) if Path(path).is_absolute() else project.root / path
    media = IMAGE_MEDIA.get(file.suffix.lower())
    try:
        if media is None or not file.is_file() or file.stat().st_size > MAX_IMAGE_BYTES:
            return None
    except OSError:
        return None
    return file, media


# ---- quarantine -------------------------------------------------------------------------------


def quarantine(project: Project) -> list[dict[str, str]]:
    """What ingest set aside (.dlw/quarantine.parquet): sample id, path, label and reason."""
    path = project.paths.quarantine

    def load() -> list[dict[str, str]]:
        if not path.is_file():
            return []
        from dlworkflow.store import read_quarantine

        table = read_quarantine(project)
        columns = ("sample_id", "path", "label", "reason")
        return [
            {c: str(r[c]) if _present(r[c]) else "" for c in columns}
            for r in table.to_dict("records")
        ]

    return cached(project, "quarantine", (path,), load)


# ---- explore records --------------------------------------------------------------------------


def records_folder(project: Project) -> Path:
    from dlworkflow.explore.records import records_dir

    return records_dir(project.paths.reports)


def record(project: Project, name: str) -> pd.DataFrame | None:
    """A records table (label_issues.csv, duplicate_pairs.csv, map.csv), None when absent.
    Rows naming a sample that is not visible now (sealed, or gone since) are dropped."""
    path = records_folder(project) / name

    def load() -> pd.DataFrame | None:
        import pandas as pd

        if not path.is_file():
            return None
        id_columns = ("sample_id", "sample_id_a", "sample_id_b")
        table = pd.read_csv(path, dtype={c: str for c in (*id_columns, "label", "given")})
        visible = samples(project).position
        for c in id_columns:
            if c in table.columns:
                table = table[table[c].isin(visible)]
        return table.reset_index(drop=True)

    paths = project.paths
    return cached(project, "record:" + name, (path, paths.manifest, _assignments(project)), load)


def _assignments(project: Project) -> Path:
    return project.paths.split_dir / "assignments.parquet"


# ---- the EDA report ---------------------------------------------------------------------------


@dataclass
class Eda:
    report: str | None  # the report's URL, None before `dlw explore`
    sections: list[tuple[str, str]]  # (anchor, title) in the report's order
    figures: list[tuple[str, str]]  # (name, value) from the explore run's summary
    warnings: list[str]
    headline: str
    when: str
    test_set: str


_SECTION = re.compile(r"<section id='([\w-]+)'><h2>([^<]{1,120})</h2>")


def eda(project: Project) -> Eda:
    from dlworkflow.ui.overview import shown

    path = project.paths.reports / EDA_REPORT

    def sections() -> list[tuple[str, str]]:
        if not path.is_file():
            return []
        import html

        text = path.read_text(encoding="utf-8", errors="replace")
        return [(a, html.unescape(t)) for a, t in _SECTION.findall(text)]

    run = project.ledger.latest("explore")
    summary = run.summary if run is not None else {}
    names = (
        ("samples explored", "n_samples"),
        ("imbalance ratio", "imbalance_ratio"),
        ("label-issue candidates", "label_issues"),
        ("checked for label issues", "label_checked"),
        ("samples mapped", "embedded"),
        ("searched for near duplicates", "near_searched"),
    )
    figures = [(n, shown(summary[k])) for n, k in names if summary.get(k) is not None]
    return Eda(
        report=f"/reports/{EDA_REPORT}" if path.is_file() else None,
        sections=cached(project, "eda-sections", (path,), sections),
        figures=figures,
        warnings=[str(w) for w in summary.get("warnings", [])],
        headline=str(summary.get("headline", "")),
        when=(run.ended or run.started)[:19].replace("T", " ") if run is not None else "",
        test_set=str(summary.get("test_set", "")),
    )
