"""Pixels for exploration: small arrays of many images (cached through the store) and PNG
thumbnails of the few samples the report shows. An image that cannot be read is skipped and
counted, never fatal."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.store import ImageDecodeError, decode_image, image_tensor
from dlworkflow.store.images import to_array

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace

THUMB_SIDE = 64  # longest side of a thumbnail, in pixels


@dataclass
class PixelReader:
    """Reads images of one project; remembers which could not be read."""

    project: Workspace
    failed: dict[str, str] = field(default_factory=dict)  # sample_id -> reason

    @property
    def max_pixels(self) -> int:
        return self.project.config.data.max_image_pixels

    def arrays(
        self, rows: pd.DataFrame, *, channels: int, size: tuple[int, int], progress: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 [n, C, H, W], ok mask [n]) for the rows; unreadable images are zeros."""
        try:
            data = image_tensor(
                self.project,
                rows,
                channels=channels,
                size=size,
                max_pixels=self.max_pixels,
                progress=progress,
            )
            return data, np.ones(len(rows), dtype=bool)
        except ImageDecodeError:
            pass  # one bad file: read them one by one, skipping the bad ones
        out = np.zeros((len(rows), channels, size[0], size[1]), dtype=np.uint8)
        ok = np.zeros(len(rows), dtype=bool)
        for i, (sid, path) in enumerate(zip(rows["sample_id"], rows["path"])):
            img = self._decode(str(sid), path)
            if img is not None:
                out[i] = to_array(img, channels=channels, size=size)
                ok[i] = True
            if progress is not None:
                progress(i + 1, len(rows))
        return out, ok

    def gray(self, rows: pd.DataFrame, *, side: int, progress: Any = None) -> np.ndarray:
        """float32 [n, side, side] grayscale; NaN for unreadable images."""
        data, ok = self.arrays(rows, channels=1, size=(side, side), progress=progress)
        out = data[:, 0].astype(np.float32)
        out[~ok] = np.nan
        return out

    def thumbnail(self, sample_id: str, path: Any) -> str | None:
        """A data: URI (PNG, base64) of the image, or None if it cannot be read."""
        from PIL import Image

        from dlworkflow.store.images import normalise

        img = self._decode(sample_id, path)
        if img is None:
            return None
        try:
            img = normalise(img)
            img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            img.save(buffer, format="PNG", optimize=True)
        except (OSError, ValueError) as exc:
            self.failed[sample_id] = f"thumbnail failed: {exc}"
            return None
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def _decode(self, sample_id: str, path: Any) -> Any:
        if path is None or (isinstance(path, float) and np.isnan(path)):
            self.failed[sample_id] = "no path"
            return None
        try:
            return decode_image(str(path), max_pixels=self.max_pixels)
        except ImageDecodeError as exc:
            self.failed[sample_id] = exc.reason
            return None


def stratified_sample(labels: pd.Series, *, limit: int, seed: int) -> np.ndarray:
    """Positions of at most `limit` rows, every class represented in proportion (at least a few
    of each), deterministic for a seed; all rows when there are few enough."""
    n = len(labels)
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    codes = labels.astype("category").cat.codes.to_numpy()
    chosen = []
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        take = max(min(len(members), 10), int(round(limit * len(members) / n)))
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    picked = np.sort(np.concatenate(chosen))
    if len(picked) > limit:
        picked = np.sort(rng.choice(picked, size=limit, replace=False))
    return picked


def pick_per_class(labels: pd.Series, *, k: int, seed: int) -> dict[str, np.ndarray]:
    """class -> positions of up to k rows of that class, a deterministic random choice."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    values = labels.astype(str).to_numpy()
    for label in sorted(set(values), key=_natural):
        members = np.flatnonzero(values == label)
        out[label] = np.sort(rng.choice(members, size=min(k, len(members)), replace=False))
    return out


def _natural(text: str) -> tuple[int, Any]:
    return (0, int(text)) if text.isdigit() else (1, text)
