"""The evaluation, deployment and monitor routes (add_pages(app, ...), called by create_app).

The promote and rollback forms POST with the login cookie and the CSRF field (csrf.py); a POST
without a valid field gets 403 and changes nothing. A change the CLI would refuse (an unknown
version, a rollback with no earlier champion, a version that may not serve, another run
holding the step's lock) shows the CLI's own message (DlwError.render()), not a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from dlworkflow.errors import DlwError
from dlworkflow.project import Project
from dlworkflow.ui.csrf import FIELD, Csrf, checked_form
from dlworkflow.ui.paging import paged

MAX_PAGE = 10_000
MAX_CLASS = 100_000

PageFn = Callable[..., HTMLResponse]


def not_found(what: str) -> HTMLResponse:
    """The plain 404 page of the evaluation, deployment, explanations and labels routes."""
    return HTMLResponse(
        f"<!doctype html><title>not found</title><p>{what}</p>",
        status_code=404,
        headers={"Cache-Control": "no-store"},
    )


def add_pages(app: FastAPI, root: Path, page: PageFn, cookie: str) -> None:
    csrf = Csrf(cookie)

    def token_of(request: Request) -> str:
        return csrf.token(request.cookies.get(cookie))

    @app.get("/evaluation", response_class=HTMLResponse)
    def evaluation_page(request: Request, split: str = "val") -> HTMLResponse:
        from dlworkflow.ui.evaluation import SPLIT_NAMES, SPLITS, evaluation
        from dlworkflow.ui.overview import shown

        if split not in SPLITS:
            return not_found(f"No split {split!r}: val, train or test.")
        project = Project(root)
        return page(
            request,
            "evaluation",
            project,
            e=evaluation(project, split),
            splits=[(s, SPLIT_NAMES[s]) for s in SPLITS],
            fmt=shown,
        )

    @app.get("/evaluation/{split}/cell", response_class=HTMLResponse)
    def cell_page(
        request: Request,
        split: str,
        true: Annotated[int, Query(ge=0, le=MAX_CLASS)],
        predicted: Annotated[int, Query(ge=0, le=MAX_CLASS)],
        page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    ) -> HTMLResponse:
        from dlworkflow.ui.cells import PAGE_SIZE, assignment
        from dlworkflow.ui.evaluation import SPLIT_NAMES, evaluation

        if split not in ("train", "val"):
            return not_found("Only the train and validation splits list their samples.")
        project = Project(root)
        view = evaluation(project, split)
        if not view.confusion:
            return not_found(f"No confusion matrix recorded: run `{view.command}`.")
        n = len(view.classes)
        if true >= n or predicted >= n:
            return not_found(f"No such cell: there are {n} classes.")
        error, samples = None, []
        try:
            samples = assignment(project, split, view.confusion).cell(true, predicted)
        except DlwError as exc:
            error = exc.render()
        shown = paged(samples, page_number, PAGE_SIZE)
        return page(
            request,
            "cell",
            project,
            split=split,
            split_name=SPLIT_NAMES[split],
            true=true,
            predicted=predicted,
            true_class=view.classes[true],
            predicted_class=view.classes[predicted],
            recorded=view.confusion[true][predicted],
            error=error,
            samples=shown["items"],
            total=shown["total"],
            page_number=page_number,
            has_next=shown["has_next"],
            first=shown["first"],
        )

    @app.get("/evaluation/{split}/image/{sample_id:path}")  # folder ids hold "/"
    def sample_image(split: str, sample_id: str) -> Response:
        from dlworkflow.ui.cells import image_file

        found = image_file(Project(root), split, sample_id)
        if found is None:
            return not_found("No image for that sample of the train or validation split.")
        path, media = found
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-store"})

    @app.get("/deployment", response_class=HTMLResponse)
    def deployment_page(request: Request) -> HTMLResponse:
        from dlworkflow.ui.deployment import deployment

        project = Project(root)
        return page(request, "deployment", project, d=deployment(project), done=None, error=None)

    @app.get("/deployment/confirm", response_class=HTMLResponse)
    def confirm_page(
        request: Request,
        action: str,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> HTMLResponse:
        from dlworkflow.ui.deployment import ACTIONS, confirmation

        if action not in ACTIONS or (action == "promote" and version is None):
            return not_found("Promote takes a version; rollback an optional one.")
        project = Project(root)
        return page(
            request,
            "confirm",
            project,
            c=confirmation(project, action, version),
            csrf_field=FIELD,
            csrf=token_of(request),
        )

    @app.post("/deployment/{action}", response_class=HTMLResponse)
    async def change(request: Request, action: str) -> Response:
        from dlworkflow.ui.deployment import ACTIONS, deployment

        form = await checked_form(
            request,
            csrf,
            unchanged="nothing was changed",
            again="Open the deployment page again and use its buttons.",
        )
        if isinstance(form, Response):
            return form
        if action not in ACTIONS:
            return not_found("No such action: promote or rollback.")
        raw = form.get("version", "")
        project = Project(root)
        version: int | None = None
        if raw:
            if not raw.isdigit():
                return _refused(request, page, project, f"Version {raw!r} is not a number.")
            version = int(raw)
        elif action == "promote":
            return _refused(request, page, project, "Promote needs a version.")
        try:
            if action == "promote":
                assert version is not None
                result: Any = await run_in_threadpool(project.promote, version)
            else:
                result = await run_in_threadpool(lambda: project.rollback(to=version))
        except DlwError as exc:
            return _refused(request, page, project, exc.render())
        return page(
            request,
            "deployment",
            Project(root),
            d=deployment(Project(root)),
            done=result.title(),
            error=None,
        )

    @app.get("/monitor", response_class=HTMLResponse)
    def monitor_page(request: Request) -> HTMLResponse:
        from dlworkflow.ui.monitor import by_name, monitor_view

        project = Project(root)
        return page(request, "monitor", project, m=monitor_view(project), by_name=by_name)


def _refused(request: Request, page: PageFn, project: Project, message: str) -> HTMLResponse:
    from dlworkflow.ui.deployment import deployment

    response = page(request, "deployment", project, d=deployment(project), done=None, error=message)
    response.status_code = 409
    return response
