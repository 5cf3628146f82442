"""Error responses: each domain error becomes one status code with a ``detail``.

* 401 (with ``WWW-Authenticate: Bearer``) no or unknown token;
* 403 the caller's role does not allow it; 404 not in the caller's organization or not theirs;
* 409 conflicting state (duplicate e-mail, a closed ticket, a forbidden status transition);
* 422 invalid input — FastAPI's validation errors, and the domain's own in the same shape:
  ``{"detail": [{"type", "loc", "msg"}]}``: the field and the rule, never the input (which can
  be megabytes, or hold NaN or a lone surrogate that no JSON encoder writes). Locations and
  messages are cut to a few hundred characters with control characters and surrogates escaped,
  and at most ``MAX_ERRORS`` errors are listed.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
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


MAX_ERRORS = 20
MAX_LOC_PART = 64
MAX_MSG = 300


def safe_text(value: object, limit: int) -> str:
    """``value`` as printable, encodable text of at most ``limit`` characters."""
    text = str(value)[: limit + 1]
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    text = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_problem(errors: list[Any]) -> JSONResponse:
    """FastAPI's validation errors without their inputs (see the module docstring)."""
    detail = [
        {
            "type": safe_text(error.get("type", "invalid"), MAX_LOC_PART),
            "loc": [
                part if isinstance(part, int) else safe_text(part, MAX_LOC_PART)
                for part in error.get("loc", ())
            ],
            "msg": safe_text(error.get("msg", ""), MAX_MSG),
        }
        for error in errors[:MAX_ERRORS]
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TicketsError)
    return problem_response(exc)


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(list(exc.errors()))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TicketsError, _handle)
    app.add_exception_handler(RequestValidationError, _handle_validation)
