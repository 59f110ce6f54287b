"""The `dlw ui` web app: server-rendered pages over the project's own records.

create_app(root, token=...) -> a FastAPI app. Routes (every one but /health behind the token
gate, auth.py; every POST CSRF-checked, csrf.py):
- GET / : the overview, the nine steps of `dlw status` with their figures and the label review.
- GET /data, /data/samples?class=C&page=N, /data/sample?id=ID, /data/image?id=ID,
  /data/quarantine, /data/duplicates?kind=K, /data/map : what ingest and explore recorded
  (data_routes.py).
- GET /labels?page=N, /labels/image/ID, POST /labels/review : the label-issue candidates and
  the keep / relabel / exclude decisions (Project.review_label; labels.py).
- GET /runs?page=N, /runs/compare?run=ID&run=ID, /runs/study : the MLflow runs, a comparison
  of 2-8 of them, the tune study (run_pages.py).
- GET /evaluation?split=S, /evaluation/S/cell?true=I&predicted=J&page=N, /evaluation/S/image/ID
  : what `dlw evaluate` and `dlw test` recorded, a confusion-matrix cell's samples (train and
  val only) (pages.py).
- GET /explanations?split=S : what `dlw explain` wrote (explanations.py).
- GET /deployment, /deployment/confirm?action=A, POST /deployment/promote, /deployment/rollback
  : the model versions and the change (pages.py).
- GET /monitor : what `dlw monitor` recorded.
- GET /reports/PATH (the reports folder, read-only), /static/..., /health (no token).
The pages read the project afresh on each request (a Project per request), so a step run in a
terminal shows on reload.
"""

from __future__ import annotations

import html
import mimetypes
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from dlworkflow.errors import DlwError
from dlworkflow.project import Project
from dlworkflow.ui.auth import TokenGate, cookie_name
from dlworkflow.ui.data_routes import add_data_pages
from dlworkflow.ui.explanations import add_explanation_pages
from dlworkflow.ui.labels import add_label_pages
from dlworkflow.ui.overview import inside, overview
from dlworkflow.ui.pages import add_pages
from dlworkflow.ui.run_pages import add_run_pages

HERE = Path(__file__).parent
MAX_PAGE = 10_000


def create_app(
    root: str | Path, *, token: str, cookie: str | None = None, secure_cookie: bool = False
) -> FastAPI:
    """The app for the project at `root` (checked now: ProjectNotFoundError, ConfigError).
    cookie: the login cookie's name (default dlw_ui; `dlw ui` passes one naming its port)."""
    project_root = Project.load(root).root
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app = FastAPI(title="dlw ui", docs_url=None, redoc_url=None, openapi_url=None)
    app.middleware("http")(TokenGate(token, cookie or cookie_name(None), secure=secure_cookie))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, name: str, project: Project, **values: Any) -> HTMLResponse:
        context = {
            "page": name,
            "project_name": project.config.name,
            "project_root": str(project.root),
            **values,
        }
        response = templates.TemplateResponse(request, f"{name}.html", context)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(DlwError)
    async def _dlw_error(request: Request, exc: DlwError) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>dlw ui: error</title><link rel='stylesheet' href='/static/ui.css'></head>"
            f"<body><main><h1>dlworkflow could not show this page</h1>"
            f"<pre>{html.escape(exc.render())}</pre></main></body></html>",
            status_code=500,
        )

    @app.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request) -> HTMLResponse:
        project = Project(project_root)
        return page(request, "overview", project, o=overview(project))

    @app.get("/runs", response_class=HTMLResponse)
    def runs(
        request: Request, page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1
    ) -> HTMLResponse:
        from dlworkflow.ui.runs import PAGE_SIZE, runs_page

        project = Project(project_root)
        return page(request, "runs", project, r=runs_page(project, page_number), size=PAGE_SIZE)

    add_pages(app, project_root, page, cookie or cookie_name(None))
    add_data_pages(app, project_root, page, cookie or cookie_name(None))
    add_explanation_pages(app, project_root, page)
    add_run_pages(app, project_root, page)
    add_label_pages(app, project_root, page, cookie or cookie_name(None))

    @app.get("/reports/{path:path}")
    def report_file(path: str) -> Response:
        reports = Project(project_root).paths.reports
        target = reports / path
        if inside(reports, target) is None or not target.is_file():
            return HTMLResponse(
                "<!doctype html><title>not found</title><p>No such report in the project's "
                "reports folder.</p>",
                status_code=404,
            )
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix in (".md", ".json", ".csv", ".txt"):
            media = "text/plain; charset=utf-8"  # shown, not run or downloaded
        return FileResponse(target, media_type=media, headers={"Cache-Control": "no-store"})

    return app
