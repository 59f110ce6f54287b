"""The explanations page (GET /explanations?split=val|train): what `dlw explain` wrote to
reports/explain/<split>/ (explanations.json and its figures, served read-only by the /reports/
route): the method, a table's permutation importance, and the figures of the most confident
mistakes and of random correct predictions with their labels and confidence. Nothing runs a
model per request; when nothing was explained yet, the page names the command."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from dlworkflow.ui.overview import inside, shown
from dlworkflow.ui.pages import PageFn, not_found

if TYPE_CHECKING:
    from dlworkflow.project import Project

SPLITS = {"val": "validation", "train": "train"}  # never the sealed test set
KINDS = (("mistake", "Most confident mistakes"), ("correct", "Random correct predictions"))


@dataclass
class Card:
    sample_id: str
    true: str
    predicted: str
    confidence: str
    image: str | None  # the figure's URL under /reports/, when it is there


@dataclass
class ExplanationsView:
    split: str
    command: str
    index: dict[str, Any] | None = None
    groups: list[tuple[str, str, list[Card]]] = field(default_factory=list)  # kind, title
    importance: list[dict[str, str]] = field(default_factory=list)
    importance_figure: str | None = None
    stale: bool = False  # made with other weights than the trained model's


def read_index(project: Project, split: str) -> dict[str, Any] | None:
    path = project.paths.reports / "explain" / split / "explanations.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return index if isinstance(index, dict) and isinstance(index.get("items"), list) else None


def figure_url(project: Project, relative: Any) -> str | None:
    """/reports/explain/... for a figure the index names inside reports/explain, else None."""
    if not isinstance(relative, str):
        return None
    folder = project.paths.reports / "explain"
    path = project.root / relative
    within = inside(folder, path)
    return f"/reports/explain/{within}" if within is not None and path.is_file() else None


def explanations(project: Project, split: str) -> ExplanationsView:
    view = ExplanationsView(split=split, command=f"dlw explain --split {split}")
    index = view.index = read_index(project, split)
    if index is None:
        return view
    for kind, title in KINDS:
        cards = [
            Card(
                sample_id=str(i.get("sample_id")),
                true=str(i.get("true")),
                predicted=str(i.get("predicted")),
                confidence=shown(i.get("confidence")),
                image=figure_url(project, i.get("figure")),
            )
            for i in index["items"]
            if isinstance(i, dict) and i.get("kind") == kind
        ]
        view.groups.append((kind, title, cards))
    importance = index.get("importance")
    if isinstance(importance, dict):
        view.importance = [
            {
                "name": str(e.get("name")),
                "drop": shown(e.get("drop")),
                "low": shown(e.get("low")),
                "high": shown(e.get("high")),
            }
            for e in importance.get("features") or []
            if isinstance(e, dict)
        ]
        view.importance_figure = figure_url(project, importance.get("figure"))
    view.stale = _stale(project, index)
    return view


def _stale(project: Project, index: dict[str, Any]) -> bool:
    from dlworkflow.store.trained import trained_meta

    weights = (trained_meta(project) or {}).get("weights_sha256")  # None: none to compare
    return bool(weights) and index.get("weights_sha256") not in (None, weights)


def add_explanation_pages(app: FastAPI, root: Path, page: PageFn) -> None:
    @app.get("/explanations", response_class=HTMLResponse)
    def explanations_page(request: Request, split: str = "val") -> HTMLResponse:
        from dlworkflow.project import Project

        if split not in SPLITS:
            return not_found(
                "No explanations of that split: val or train "
                "(the sealed test set is never explained)."
            )
        project = Project(root)
        return page(
            request,
            "explanations",
            project,
            x=explanations(project, split),
            splits=list(SPLITS.items()),
        )
