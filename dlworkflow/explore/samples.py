"""How one sample looks in the report: a thumbnail (images), a snippet (text), its values
(tabular) or a small drawing (series, clips), with a caption."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dlworkflow.explore.render import Raw, esc
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.explore.pixels import PixelReader

SNIPPET_CHARS = 160
SHOWN_VALUES = 8  # feature values shown for a tabular sample


class SampleView:
    def __init__(
        self,
        manifest: pd.DataFrame,
        task: str,
        reader: PixelReader | None,
        *,
        drawn: Callable[[str, Any], str | None] | None = None,
    ) -> None:
        """drawn: (sample id, manifest row) -> a PNG data URI of a series or a clip."""
        self.rows = manifest.set_index(manifest["sample_id"].astype(str), drop=False)
        self.task = task
        self.modality = task_of(task).modality
        self.reader = reader
        self.drawn = drawn
        self._cache: dict[str, str | None] = {}

    def tile(self, sample_id: str, caption: str) -> Raw:
        from dlworkflow.explore.targets import target_kind

        caption = target_kind(self.task).caption(str(caption))  # a dense label in words
        body = self._body(str(sample_id))
        cls = "tile" if self.modality == "image" else "tile wide"
        return Raw(
            f"<div class='{cls}'>{body}<div>{esc(caption)}</div>"
            f"<div class='note'>{esc(_short(sample_id))}</div></div>"
        )

    def pair(self, ids: list[str], captions: list[str], *, conflict: bool, title: str) -> Raw:
        cls = "pair conflict" if conflict else "pair"
        inner = "".join(self.tile(s, c) for s, c in zip(ids, captions))
        return Raw(
            f"<div class='{cls}'><div class='note' style='width:90px'>{esc(title)}"
            f"</div>{inner}</div>"
        )

    def _body(self, sample_id: str) -> str:
        if sample_id not in self.rows.index:
            return "<div class='note'>(not in the manifest)</div>"
        row = self.rows.loc[sample_id]
        if self.modality == "image":
            uri = self._thumb(sample_id, row.get("path"))
            return (
                f"<img src='{esc(uri)}' alt='{esc(sample_id)}'>"
                if uri
                else "<div class='note'>(image unreadable)</div>"
            )
        if self.drawn is not None:
            if sample_id not in self._cache:
                self._cache[sample_id] = self.drawn(sample_id, row)
            uri = self._cache[sample_id]
            return (
                f"<img class='plot' src='{esc(uri)}' alt='{esc(sample_id)}'>"
                if uri
                else f"<div class='note'>({self.modality} unreadable)</div>"
            )
        if self.modality == "text":
            text = str(row.get("text") or "")
            cut = text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
            return f"<div class='snippet'>{esc(cut)}</div>"
        values = [(k[2:], row[k]) for k in self.rows.columns if str(k).startswith("f:")]
        shown = "; ".join(f"{k}={v}" for k, v in values[:SHOWN_VALUES])
        return f"<div class='snippet'>{esc(shown)}</div>"

    def _thumb(self, sample_id: str, path: object) -> str | None:
        if sample_id not in self._cache:
            self._cache[sample_id] = (
                self.reader.thumbnail(sample_id, path) if self.reader is not None else None
            )
        return self._cache[sample_id]


def _short(sample_id: str, limit: int = 40) -> str:
    return sample_id if len(sample_id) <= limit else "…" + sample_id[-limit + 1 :]
