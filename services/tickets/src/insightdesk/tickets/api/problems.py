"""Error responses: each domain error becomes one status code with a ``detail``.

* 401 (with ``WWW-Authenticate: Bearer``) no or unknown token;
* 403 the caller's role does not allow it; 404 not in the caller's organization or not theirs;
* 409 conflicting state (duplicate e-mail, a closed ticket, a forbidden status transition);
* 422 invalid input — FastAPI's validation errors, and the domain's own in the same shape:
  ``{"detail": [{"type", "loc", "msg"}]}``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response

from insightdesk.tickets.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TicketsError,
)

STATUS: tuple[tuple[type[TicketsError], int], ...] = (
    (NotAuthenticated, status.HTTP_401_UNAUTHORIZED),
    (Forbidden, status.HTTP_403_FORBIDDEN),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (Conflict, status.HTTP_409_CONFLICT),
    (InvalidInput, status.HTTP_422_UNPROCESSABLE_CONTENT),
)


def problem_response(exc: TicketsError) -> JSONResponse:
    if isinstance(exc, InvalidInput):
        return JSONResponse(
            {"detail": [{"type": exc.kind, "loc": ["body", exc.field], "msg": exc.message}]},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    code = next(
        (code for kind, code in STATUS if isinstance(exc, kind)),
        status.HTTP_400_BAD_REQUEST,
    )
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
    return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)


async def _handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TicketsError)
    return problem_response(exc)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TicketsError, _handle)
