"""The Labels page: the label-issue candidates of `dlw explore` (reports/explore/records/
label_issues.csv), 25 a page, each with its image, text or row, the given and suggested
labels, the confidence and its decision, and a form to keep, relabel or exclude it.

A decision POSTs (with the CSRF field: csrf.py) to /labels/review, which calls
Project.review_label, the method `dlw review-label` calls (labels/review.csv and the ledger),
then answers 303 back to the same page. A decision the method refuses (a sealed test sample,
a label that is not a class) shows its message on the page, status 409. The next `dlw ingest`
applies the decisions.

Routes (add_label_pages): GET /labels?page=N, GET /labels/image/ID (a candidate's image: only
the path the manifest, or for an excluded one the quarantine, names for a listed candidate;
never a sealed sample) and POST /labels/review. The samples' paths, texts and rows are read
for the candidates only, once per change of the manifest or of the candidates' file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dlworkflow.errors import DlwError
from dlworkflow.project import Project
from dlworkflow.ui.csrf import FIELD, Csrf, checked_form
from dlworkflow.ui.data import IMAGE_MEDIA, cached, servable_image
from dlworkflow.ui.pages import PageFn, not_found
from dlworkflow.ui.paging import paged

if TYPE_CHECKING:
    from dlworkflow.data.label_review import CandidateView, LabelCandidates

PAGE_SIZE = 25
MAX_PAGE = 10_000
MAX_SHOWN = 240  # characters of a text or a row on the page
EXCLUDED_REASON = "excluded in label review"  # data/label_review.py's quarantine reason


@dataclass(frozen=True)
class SampleView:
    path: str = ""
    image: bool = False
    text: str = ""  # a text sample, or a table row's "feature=value, ..."


@dataclass
class CandidateRow:
    c: CandidateView
    sample: SampleView
    number: int  # 1-based position in the list


@dataclass
class LabelsPage:
    view: LabelCandidates
    rows: list[CandidateRow]
    page_number: int
    pages: int
    first: int
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # decision -> candidates


def labels_page(project: Project, page_number: int, error: str | None = None) -> LabelsPage:
    view = project.label_candidates()
    p = paged(view.candidates, page_number, PAGE_SIZE)
    samples = sample_views(project).get
    counts: dict[str, int] = {}
    for c in view.candidates:
        key = c.decision or "unreviewed"
        counts[key] = counts.get(key, 0) + 1
    return LabelsPage(
        view=view,
        rows=[
            CandidateRow(c, samples(c.sample_id) or SampleView(), p["first"] + k)
            for k, c in enumerate(p["items"])
        ],
        page_number=page_number,
        pages=p["pages"],
        first=p["first"],
        error=error,
        counts=counts,
    )


def sample_views(project: Project) -> dict[str, SampleView]:
    """sample id -> what the page shows of it, for every candidate that is not sealed; read
    once per change of the files it comes from (data.cached)."""
    from dlworkflow.data.label_review import candidates_path

    files = (
        project.paths.manifest,
        project.paths.quarantine,
        candidates_path(project),
        project.paths.split_dir / "assignments.parquet",
    )
    return cached(project, "label-samples", files, lambda: _read_samples(project))


def _read_samples(project: Project) -> dict[str, SampleView]:
    import pandas as pd
    import pyarrow.parquet as pq

    from dlworkflow.data.label_review import read_candidates, sealed_ids
    from dlworkflow.store.manifest import FEATURE_PREFIX

    ids = {c["sample_id"] for c in read_candidates(project)}
    if not ids or not project.paths.manifest.is_file():
        return {}
    ids -= sealed_ids(project, ids)
    names = pq.read_schema(project.paths.manifest).names
    wanted = [
        c for c in names if c in ("sample_id", "path", "text") or c.startswith(FEATURE_PREFIX)
    ]
    rows = pd.read_parquet(
        project.paths.manifest, columns=wanted, filters=[("sample_id", "in", sorted(ids))]
    )
    out: dict[str, SampleView] = {}
    features = [c for c in wanted if c.startswith(FEATURE_PREFIX)]
    for record in rows.to_dict("records"):
        text = ""
        if isinstance(record.get("text"), str):
            text = record["text"]
        elif features:
            text = ", ".join(f"{c[len(FEATURE_PREFIX) :]}={record[c]}" for c in features)
        out[str(record["sample_id"])] = _view(project, record.get("path"), text)
    if project.paths.quarantine.is_file():  # excluded by an earlier review: still shown
        q = pd.read_parquet(project.paths.quarantine)
        q = q[q["sample_id"].astype(str).isin(ids - set(out))]
        for sid, path, reason in zip(q["sample_id"], q["path"], q["reason"]):
            if str(reason).startswith(EXCLUDED_REASON):
                out[str(sid)] = _view(project, path, "")
    return out


def _view(project: Project, path: Any, text: str) -> SampleView:
    shown = text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
    if not isinstance(path, str) or not path:
        return SampleView(text=shown)
    file = Path(path) if Path(path).is_absolute() else project.root / path
    image = file.suffix.lower() in IMAGE_MEDIA and file.is_file()
    return SampleView(path=str(file), image=image, text=shown)


def image_file(project: Project, sample_id: str) -> tuple[Path, str] | None:
    """(file, media type) of a listed, unsealed candidate's image: the path its manifest (or
    quarantine) row names, through data.servable_image's checks; else None. A path given in a
    request is never opened."""
    sample = sample_views(project).get(sample_id)
    return servable_image(project, sample.path) if sample is not None and sample.image else None


def add_label_pages(app: FastAPI, root: Path, page: PageFn, cookie: str) -> None:
    csrf = Csrf(cookie)

    def show(request: Request, number: int, error: str | None = None) -> HTMLResponse:
        project = Project(root)
        view = labels_page(project, number, error)
        response = page(
            request,
            "labels",
            project,
            lp=view,
            csrf_field=FIELD,
            csrf=csrf.token(request.cookies.get(cookie)),
        )
        if error:
            response.status_code = 409
        return response

    @app.get("/labels", response_class=HTMLResponse)
    def labels(
        request: Request,
        page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    ) -> HTMLResponse:
        return show(request, page_number)

    @app.get("/labels/image/{sample_id:path}")
    def candidate_image(sample_id: str) -> Response:
        found = image_file(Project(root), sample_id)
        if found is None:
            return not_found("No image for that candidate.")
        path, media = found
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-store"})

    @app.post("/labels/review", response_class=HTMLResponse)
    async def review(request: Request) -> Response:
        form = await checked_form(
            request,
            csrf,
            unchanged="nothing was recorded",
            again="Open the Labels page again and use its buttons.",
        )
        if isinstance(form, Response):
            return form

        def value(name: str) -> str:
            return form.get(name, "")

        number = int(value("page")) if value("page").isdigit() else 1
        number = min(max(number, 1), MAX_PAGE)
        decision = value("decision")
        label = value("label") if decision == "relabel" else None
        if not value("sample_id") or not decision:
            return show(request, number, "Choose keep, relabel or exclude for a candidate.")
        project = Project(root)
        try:
            await run_in_threadpool(project.review_label, value("sample_id"), decision, label)
        except DlwError as exc:
            return show(request, number, exc.render())
        return RedirectResponse(f"/labels?page={number}", status_code=303)
