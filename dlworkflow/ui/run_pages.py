"""The runs section's further pages (add_run_pages(app, root, page), called by create_app):

GET /runs/compare?run=ID&run=ID... two to eight train or tune runs side by side (compare.py):
    the config diff, the validation metrics and the overlaid curves. Fewer or more runs, or an
    evaluate/test run, get 400 with the reason; an id that is not a run of the project's
    experiment gets 404. Read-only (a GET form on the runs page).
GET /runs/study?page=N the project's tuning study (study.py): trials, the best trial, the
    optimisation history and each trial's MLflow run; with no study yet, the command to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from dlworkflow.project import Project
from dlworkflow.ui.pages import PageFn

MAX_PAGE = 10_000
MAX_IDS = 64  # ids read from the query at all (MAX_RUNS of them are compared)


def add_run_pages(app: FastAPI, root: Path, page: PageFn) -> None:
    @app.get("/runs/compare", response_class=HTMLResponse)
    def compare_page(
        request: Request,
        run: Annotated[list[str] | None, Query(max_length=200)] = None,
    ) -> HTMLResponse:
        from dlworkflow.ui.compare import MAX_RUNS, MIN_RUNS, CompareError, comparison

        project = Project(root)
        try:
            if run is not None and len(run) > MAX_IDS:
                raise CompareError(f"At most {MAX_RUNS} runs can be compared at once.")
            view = comparison(project, run or [])
        except CompareError as exc:
            response = page(
                request,
                "compare",
                project,
                c=None,
                error=exc.message,
                limits=(MIN_RUNS, MAX_RUNS),
            )
            response.status_code = exc.status
            return response
        return page(request, "compare", project, c=view, error=None, limits=(MIN_RUNS, MAX_RUNS))

    @app.get("/runs/study", response_class=HTMLResponse)
    def study(
        request: Request,
        page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    ) -> HTMLResponse:
        from dlworkflow.ui.study import PAGE_SIZE, study_page

        project = Project(root)
        view = study_page(project, page_number, PAGE_SIZE)
        return page(request, "study", project, s=view, size=PAGE_SIZE)
