"""Image evidence from the manifest's per-image statistics (computed at ingest): sizes, modes,
brightness, contrast, and blank or saturated outliers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

BLANK_CONTRAST = 3.0  # grayscale standard deviation below this: a blank (uniform) image
SATURATED_FRACTION = 0.9  # dark (<= 5) or bright (>= 250) share of pixels above this
SATURATED_ROBUST_Z = 3.5  # ... and this many robust deviations above its class's typical value
SHOWN_OUTLIERS = 24  # outliers shown with thumbnails
STAT_COLUMNS = ("phash", "brightness", "contrast", "dark", "bright")


@dataclass
class Outlier:
    index: int  # row position in the manifest
    sample_id: str
    label: str
    reason: str


@dataclass
class ImageEvidence:
    widths: np.ndarray
    heights: np.ndarray
    modes: dict[str, int]
    brightness: np.ndarray | None
    contrast: np.ndarray | None
    blank: list[Outlier] = field(default_factory=list)
    saturated: list[Outlier] = field(default_factory=list)
    missing_stats: list[str] = field(default_factory=list)

    @property
    def aspect(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.widths / self.heights

    @property
    def n_sizes(self) -> int:
        return len(set(zip(self.widths.tolist(), self.heights.tolist())))


def image_evidence(manifest: pd.DataFrame) -> ImageEvidence:
    missing = [c for c in STAT_COLUMNS if c not in manifest.columns]
    modes = manifest["mode"].astype(str).value_counts()
    evidence = ImageEvidence(
        widths=_floats(manifest, "width"),
        heights=_floats(manifest, "height"),
        modes={str(k): int(v) for k, v in modes.items()},
        brightness=None if "brightness" in missing else _floats(manifest, "brightness"),
        contrast=None if "contrast" in missing else _floats(manifest, "contrast"),
        missing_stats=missing,
    )
    if evidence.contrast is not None:
        evidence.blank = _blank(manifest, evidence.contrast)
    if not {"dark", "bright"} & set(missing):
        blank = {o.index for o in evidence.blank}
        evidence.saturated = _saturated(manifest, blank)
    return evidence


def _floats(manifest: pd.DataFrame, column: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(manifest[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _blank(manifest: pd.DataFrame, contrast: np.ndarray) -> list[Outlier]:
    rows = np.flatnonzero(contrast < BLANK_CONTRAST)
    rows = rows[np.argsort(contrast[rows], kind="stable")]
    return [
        _outlier(manifest, i, f"blank: contrast {contrast[i]:.1f} < {BLANK_CONTRAST}") for i in rows
    ]


def _saturated(manifest: pd.DataFrame, blank: set[int]) -> list[Outlier]:
    """Images mostly black or white, when that is unusual for their class (a dataset of dark
    backgrounds, like MNIST, is not flagged for its dark backgrounds)."""
    out: list[Outlier] = []
    labels = manifest["label"].astype(str).to_numpy()
    for column, word in (("dark", "dark"), ("bright", "bright")):
        values = _floats(manifest, column)
        z = _robust_z_by_class(values, labels)
        rows = np.flatnonzero((values > SATURATED_FRACTION) & (z > SATURATED_ROBUST_Z))
        rows = rows[np.argsort(-values[rows], kind="stable")]
        out += [
            _outlier(
                manifest,
                i,
                f"saturated: {values[i]:.0%} of pixels {word} "
                f"(typical for class {labels[i]}: "
                f"{np.nanmedian(values[labels == labels[i]]):.0%})",
            )
            for i in rows
            if i not in blank
        ]
    return out


def _robust_z_by_class(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = np.zeros_like(values)
    for label in np.unique(labels):
        m = labels == label
        median = np.nanmedian(values[m])
        mad = 1.4826 * np.nanmedian(np.abs(values[m] - median))
        z[m] = (values[m] - median) / max(mad, 0.01)
    return np.nan_to_num(z, nan=0.0)


def _outlier(manifest: pd.DataFrame, i: int | np.integer, reason: str) -> Outlier:
    row = manifest.iloc[int(i)]
    return Outlier(
        index=int(i), sample_id=str(row["sample_id"]), label=str(row["label"]), reason=reason
    )
