"""``GET /downloads/{token}``: an export from the local store, if the signed link is genuine
(403 otherwise) and not expired (410)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from insightdesk.reports.links import ExpiredLink, TamperedLink, verify
from insightdesk.shared.storage import InvalidKey, ObjectStorage


def downloads_app(storage: ObjectStorage, secret: bytes, now: Callable[[], datetime]) -> Starlette:
    async def download(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            grant = verify(secret, token, now())
        except TamperedLink as exc:
            return JSONResponse({"detail": str(exc)}, status_code=403)
        except ExpiredLink as exc:
            return JSONResponse({"detail": str(exc)}, status_code=410)
        try:
            path = storage.local_path(grant.key)
        except InvalidKey:
            return JSONResponse({"detail": "the download link is not valid"}, status_code=403)
        if path is None or not path.is_file():
            return JSONResponse({"detail": "the file is no longer available"}, status_code=410)
        return FileResponse(
            path,
            media_type=grant.content_type,
            filename=grant.filename,
            headers={"Cache-Control": "private, no-store"},
        )

    return Starlette(routes=[Route("/downloads/{token}", download, methods=["GET", "HEAD"])])
