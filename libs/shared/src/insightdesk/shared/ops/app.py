"""``create_console_app``: the operations console as one mountable ASGI app (FastAPI).

It serves the JSON API under ``/api`` (OpenAPI at ``/openapi.json``, docs at ``/docs``), the
dashboard pages and their vendored static assets (nothing is loaded from the internet). Mount
it anywhere (the scheduler serves it under ``/ops``); links follow the mount point. The caller
owns the :class:`QueueClient` (its pool and lifetime).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from insightdesk.shared.errors import InvalidArgument, JobConflict, JobNotFound, QueueNotFound
from insightdesk.shared.ops import api, pages
from insightdesk.shared.ops.auth import CsrfRejected, NotAuthenticated, OperatorAuth
from insightdesk.shared.ops.runtime import Console, base_path
from insightdesk.shared.ops.settings import ConsoleSettings
from insightdesk.shared.queue.client import QueueClient
from insightdesk.shared.queue.control import QueueControl, ScheduleNotFound

DESCRIPTION = """Operations console of the InsightDesk queue engine: queue statistics, failed
jobs and dead letters, job search (keyset pagination: pass `next_cursor` back as `cursor`),
bulk actions, pause/resume, workers, schedules. Operators only: send
`Authorization: Bearer <CONSOLE_TOKEN>`. Bad filters answer 422 naming the field; unknown
jobs, queues and schedules answer 404."""


def _package_dir(name: str) -> Path:
    return Path(str(resources.files(__package__ or "insightdesk.shared.ops").joinpath(name)))


def create_console_app(client: QueueClient, settings: ConsoleSettings) -> FastAPI:
    """The console over ``client``'s schema; refuses to build without a proper token."""
    auth = OperatorAuth(
        settings.operator_token(),
        session_seconds=settings.session_hours * 3600,
        cookie_secure=settings.cookie_secure,
    )
    templates = Jinja2Templates(directory=_package_dir("templates"))
    app = FastAPI(
        title="InsightDesk operations console",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.console = Console(client, QueueControl(client), auth, templates)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=_package_dir("static")), name="static")

    def wants_json(request: Request) -> bool:
        path = request.url.path[len(base_path(request)) :]
        return path.startswith("/api")

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if wants_json(request):
            return JSONResponse(
                {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return RedirectResponse(f"{base_path(request)}/login", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        return PlainTextResponse(f"403 Forbidden: {exc}", status_code=403)

    @app.exception_handler(InvalidArgument)
    async def invalid(request: Request, exc: InvalidArgument) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return PlainTextResponse(f"422 {exc}", status_code=422)

    @app.exception_handler(JobConflict)
    async def conflict(request: Request, exc: JobConflict) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=409)
        return PlainTextResponse(f"409 {exc}", status_code=409)

    async def not_found(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return PlainTextResponse(f"404 {exc}", status_code=404)

    app.add_exception_handler(JobNotFound, not_found)
    app.add_exception_handler(QueueNotFound, not_found)
    app.add_exception_handler(ScheduleNotFound, not_found)
    return app
