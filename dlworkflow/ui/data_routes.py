"""The data routes (add_data_pages(app, root, page, cookie), called by create_app):

GET /data                          the EDA summary and sections, the classes, links to the rest
GET /data/samples?class=C&page=N   the samples of a class, paged (thumbnails, text or rows;
                                   &size=S: S a page, 4 to 200, default 48)
GET /data/sample?id=ID             one sample: its image/text/row, label, split, and what
                                   explore found about it (label issue, duplicates)
GET /data/image?id=ID              a visible sample's image (data.image_file's checks)
GET /data/quarantine?page=N        what ingest set aside, with the reasons
GET /data/duplicates?kind=K&page=N duplicate pairs side by side (K: all, exact, near)
GET /data/map                      the 2-D map, an inline SVG with hover thumbnails

A sealed sample (test set, fresh slices), an unknown id or class, or a path in place of an id
gets 404; nothing here writes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from dlworkflow.project import Project
from dlworkflow.ui import paging
from dlworkflow.ui.pages import PageFn

SAMPLES_PAGE = 48
MIN_SIZE, MAX_SIZE = 4, 200  # ?size= of the samples pages
PAIRS_PAGE = 20
QUARANTINE_PAGE = 50
MAX_PAGE = 100_000
MAX_ID = 1_000  # characters of a sample id in a request
KINDS = ("all", "exact", "near")


def _not_found(what: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>not found</title><link rel='stylesheet' href='/static/ui.css'>"
        f"<main><h1>Not found</h1><p>{what}</p><p><a href='/data'>The data page</a></p></main>",
        status_code=404,
        headers={"Cache-Control": "no-store"},
    )


def add_data_pages(app: FastAPI, root: Path, page: PageFn, cookie: str) -> None:
    del cookie  # nothing here posts: no CSRF token needed

    @app.get("/data", response_class=HTMLResponse)
    def data_page(request: Request) -> HTMLResponse:
        from dlworkflow.explore.records import DUPLICATE_PAIRS, LABEL_ISSUES, MAP
        from dlworkflow.ui.data import eda, quarantine, record, samples

        project = Project(root)
        if not project.paths.manifest.is_file():
            return page(request, "data", project, found=None, eda=eda(project))
        pairs, points, issues = (record(project, n) for n in (DUPLICATE_PAIRS, MAP, LABEL_ISSUES))
        counts = {
            "quarantined": len(quarantine(project)),
            "exact": _count(pairs, "exact"),
            "near": _count(pairs, "near"),
            "conflicting": int(pairs["conflicting"].astype(bool).sum()) if pairs is not None else 0,
            "points": len(points) if points is not None else None,
            "issues": len(issues) if issues is not None else None,
        }
        return page(
            request, "data", project, found=samples(project), eda=eda(project), counts=counts
        )

    @app.get("/data/samples", response_class=HTMLResponse)
    def samples_page(
        request: Request,
        name: Annotated[str | None, Query(alias="class", max_length=MAX_ID)] = None,
        page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
        size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE)] = SAMPLES_PAGE,
    ) -> HTMLResponse:
        from dlworkflow.ui.data import samples

        project = Project(root)
        if not project.paths.manifest.is_file():
            return _not_found("No dataset yet: run `dlw ingest SOURCE`.")
        found = samples(project)
        if not found.classes:
            return _not_found("The dataset has no samples to show.")
        name = found.classes[0][0] if name is None else name
        if name not in found.by_class:
            return _not_found(f"No class {name!r} among the visible samples.")
        paged = paging.paged(found.by_class[name], page_number, size)
        if page_number > paged["pages"]:
            return _not_found(f"Class {name!r} has {paged['pages']} page(s).")
        paged["items"] = [found.card(at) for at in paged["items"]]
        values = {"found": found, "class_name": name, "p": paged, "size": size}
        return page(request, "data_samples", project, **values)

    @app.get("/data/sample", response_class=HTMLResponse)
    def sample_page(
        request: Request, sample_id: Annotated[str, Query(alias="id", max_length=MAX_ID)]
    ) -> HTMLResponse:
        from dlworkflow.ui.data import samples

        project = Project(root)
        if not project.paths.manifest.is_file():
            return _not_found("No dataset yet: run `dlw ingest SOURCE`.")
        card = samples(project).row(sample_id)
        if card is None:
            return _not_found("No such sample among the train and validation samples.")
        issue, pairs = _findings(project, sample_id)
        return page(request, "data_sample", project, s=card, issue=issue, pairs=pairs)

    @app.get("/data/image")
    def image(sample_id: Annotated[str, Query(alias="id", max_length=MAX_ID)]) -> Response:
        from dlworkflow.ui.data import image_file

        project = Project(root)
        found = image_file(project, sample_id) if project.paths.manifest.is_file() else None
        if found is None:
            return _not_found("No image for that sample.")
        path, media = found
        return FileResponse(
            path,
            media_type=media,
            headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/data/quarantine", response_class=HTMLResponse)
    def quarantine_page(
        request: Request,
        page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    ) -> HTMLResponse:
        from dlworkflow.ui.data import quarantine

        project = Project(root)
        items = quarantine(project)
        reasons: dict[str, int] = {}
        for q in items:
            reasons[q["reason"]] = reasons.get(q["reason"], 0) + 1
        paged = paging.paged(items, page_number, QUARANTINE_PAGE)
        if page_number > paged["pages"]:
            return _not_found(f"The quarantine has {paged['pages']} page(s).")
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:20]
        return page(request, "data_quarantine", project, p=paged, reasons=top)

    @app.get("/data/duplicates", response_class=HTMLResponse)
    def duplicates_page(
        request: Request,
        kind: str = "all",
        page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    ) -> HTMLResponse:
        from dlworkflow.explore.records import DUPLICATE_PAIRS
        from dlworkflow.ui.data import record, samples

        if kind not in KINDS:
            return _not_found(f"No kind {kind!r}: all, exact or near.")
        project = Project(root)
        table = record(project, DUPLICATE_PAIRS) if project.paths.manifest.is_file() else None
        if table is not None and kind != "all":
            table = table[table["kind"] == kind]
        rows = table.to_dict("records") if table is not None else []
        paged = paging.paged(rows, page_number, PAIRS_PAGE)
        if page_number > paged["pages"]:
            return _not_found(f"There are {paged['pages']} page(s) of pairs.")
        if paged["items"]:
            found = samples(project)
            paged["items"] = [
                {
                    **r,
                    "a": found.row(str(r["sample_id_a"])),
                    "b": found.row(str(r["sample_id_b"])),
                    "conflicting": str(r["conflicting"]).lower() in ("true", "1"),
                }
                for r in paged["items"]
            ]
        return page(
            request,
            "data_duplicates",
            project,
            p=paged,
            kind=kind,
            kinds=KINDS,
            recorded=table is not None,
        )

    @app.get("/data/map", response_class=HTMLResponse)
    def map_page(request: Request) -> HTMLResponse:
        from dlworkflow.ui.data_map import map_view

        project = Project(root)
        view = map_view(project) if project.paths.manifest.is_file() else None
        return page(request, "data_map", project, m=view)


def _count(table: Any, kind: str) -> int:
    return 0 if table is None else int((table["kind"] == kind).sum())


def _findings(project: Project, sample_id: str) -> tuple[dict[str, Any] | None, list[Any]]:
    """The sample's label-issue row and duplicate pairs, from the explore records."""
    from dlworkflow.explore.records import DUPLICATE_PAIRS, LABEL_ISSUES
    from dlworkflow.ui.data import record

    issue = None
    issues = record(project, LABEL_ISSUES)
    if issues is not None:
        hit = issues[issues["sample_id"] == sample_id]
        issue = {str(k): v for k, v in hit.iloc[0].items()} if len(hit) else None
    pairs: list[Any] = []
    table = record(project, DUPLICATE_PAIRS)
    if table is not None:
        mine = table[(table["sample_id_a"] == sample_id) | (table["sample_id_b"] == sample_id)]
        for r in mine.head(20).to_dict("records"):
            other = r["sample_id_b"] if r["sample_id_a"] == sample_id else r["sample_id_a"]
            label = r["label_b"] if r["sample_id_a"] == sample_id else r["label_a"]
            pairs.append({"kind": r["kind"], "other": str(other), "label": str(label)})
    return issue, pairs
