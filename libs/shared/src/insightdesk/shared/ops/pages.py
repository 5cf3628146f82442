"""The dashboard's server-rendered pages. Each page renders from a few indexed queries and
then keeps itself current by polling the JSON API (see ``static/console.js``); every form POST
carries the session's CSRF token."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from insightdesk.shared.ops.auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    NotAuthenticated,
    Session,
)
from insightdesk.shared.ops.runtime import Console, base_path, console_of
from insightdesk.shared.queue.search import ALL_STATES, MAX_PAGE, JobFilter

router = APIRouter(include_in_schema=False)

ACTION_VERBS = {
    "retry": "retried",
    "cancel": "cancelled",
    "delete": "deleted",
    "redrive": "redriven",
    "resume": "resumed",
}


class PageContext:
    """The signed-in operator's session on a page request."""

    def __init__(self, request: Request) -> None:
        self.console: Console = console_of(request)
        session = self.console.auth.session(request)
        if session is None:
            raise NotAuthenticated("log in first")
        self.session: Session = session
        self.request = request
        self.base = base_path(request)

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        return self.console.templates.TemplateResponse(
            self.request,
            template,
            {
                "base": self.base,
                "csrf": self.console.auth.csrf_token(self.session),
                "message": self.request.query_params.get("msg"),
                **values,
            },
            status_code=status_code,
        )

    async def checked_form(self) -> dict[str, list[str]]:
        """The form fields, after the CSRF check (403 without a valid token)."""
        form = await self.request.form()
        fields: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
        token = fields.get(CSRF_FIELD, [None])[0]
        self.console.auth.check_csrf(self.session, token)
        return fields

    def back(self, path: str, message: str | None = None, **query: str) -> RedirectResponse:
        if message:
            query["msg"] = message
        suffix = f"?{urlencode(query)}" if query else ""
        return RedirectResponse(f"{self.base}{path}{suffix}", status_code=303)


Page = Annotated[PageContext, Depends(PageContext)]


# ---------------------------------------------------------------------- login


@router.get("/login")
async def login_form(request: Request, failed: bool = False) -> Response:
    console = console_of(request)
    nonce = console.auth.login_nonce()
    response = console.templates.TemplateResponse(
        request,
        "login.html",
        {"base": base_path(request), "csrf": console.auth.login_csrf(nonce), "failed": failed},
        status_code=401 if failed else 200,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=console.auth.cookie_secure,
        path=base_path(request) or "/",
        max_age=3600,
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    console = console_of(request)
    console.auth.check_login_csrf(request, csrf_token)
    if not console.auth.token_matches(token):
        return await login_form(request, failed=True)
    value, _session = console.auth.new_session()
    base = base_path(request)
    response = RedirectResponse(f"{base}/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=console.auth.cookie_secure,
        path=base or "/",
        max_age=int(console.auth.session_seconds),
    )
    response.delete_cookie(LOGIN_COOKIE, path=base or "/")
    return response


@router.post("/logout")
async def logout(page: Page) -> Response:
    await page.checked_form()
    response = RedirectResponse(f"{page.base}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=page.base or "/")
    return response


# ---------------------------------------------------------------------- overview


@router.get("/")
async def overview(page: Page) -> Response:
    console = page.console
    return page.render(
        "overview.html",
        queues=await console.queue_rows(),
        workers=await console.control.workers(),
    )


# ---------------------------------------------------------------------- queue


@router.get("/queues/{name}")
async def queue_page(
    page: Page,
    name: str,
    *,
    state: Annotated[list[str], Query()] = [],  # noqa: B006
    key: str | None = None,
    data: str | None = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Response:
    console = page.console
    [row] = await console.queue_rows(name)
    where = JobFilter.build(queues=[name], states=state, singleton_key=key, data=data)
    jobs = await console.control.search(where, cursor=cursor, limit=limit)
    params: list[tuple[str, str]] = [("state", s) for s in state]
    if key:
        params.append(("key", key))
    if data:
        params.append(("data", data))
    return page.render(
        "queue.html",
        queue=row,
        workers=await console.control.workers(name),
        jobs=jobs,
        states=ALL_STATES,
        chosen=set(state),
        key=key or "",
        data=data or "",
        next_query=urlencode([*params, ("cursor", str(jobs.next_cursor))])
        if jobs.next_cursor is not None
        else None,
    )


@router.post("/queues/{name}/{action}")
async def queue_action(page: Page, name: str, action: str) -> Response:
    await page.checked_form()
    if action == "pause":
        await page.console.control.pause(name)
    elif action == "resume":
        await page.console.control.resume(name)
    else:
        return Response("unknown action", status_code=404)
    return page.back(f"/queues/{name}", f"queue {name} {action}d")


# ---------------------------------------------------------------------- job


@router.get("/jobs/{job_id}")
async def job_page(page: Page, job_id: uuid.UUID) -> Response:
    job = await page.console.control.job(job_id)
    return page.render(
        "job.html",
        job=job,
        data=json.dumps(job.data, indent=2, default=str),
        headers=json.dumps(job.headers, indent=2, default=str),
        output=json.dumps(job.output, indent=2, default=str),
    )


@router.post("/jobs/{job_id}/{action}")
async def job_action(page: Page, job_id: uuid.UUID, action: str) -> Response:
    await page.checked_form()
    if action not in ACTION_VERBS:
        return Response("unknown action", status_code=404)
    job = await page.console.control.job(job_id)
    changed = await page.console.control.act(action, [job_id])
    message = f"{len(changed)} job {ACTION_VERBS[action]}"
    if action == "delete" and changed:
        return page.back(f"/queues/{job.name}", message)
    return page.back(f"/jobs/{job_id}", message)


# ---------------------------------------------------------------------- failed and dead letters


@router.get("/failed")
async def failed_page(
    page: Page,
    queue: str | None = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    console = page.console
    rows = await console.queue_rows()
    dead = [r for r in rows if r.is_dead_letter]
    if queue:
        await console.control.queues(queue)  # QueueNotFound (404) for an unknown queue
        states = ["created", "retry"] if any(r.name == queue for r in dead) else ["failed"]
        where = JobFilter.build(queues=[queue], states=states)
    else:
        where = JobFilter.build(states=["failed"])
    jobs = await console.control.search(where, cursor=cursor, limit=100)
    return page.render(
        "failed.html",
        dead_letters=dead,
        failed_queues=[r for r in rows if r.failed],
        queue=queue or "",
        jobs=jobs,
        is_dead=bool(queue) and any(r.name == queue for r in dead),
    )


@router.post("/failed")
async def failed_action(page: Page) -> Response:
    fields = await page.checked_form()
    action = fields.get("action", [""])[0]
    queue = fields.get("queue", [""])[0]
    if action not in ACTION_VERBS:
        return Response("unknown action", status_code=422)
    ids = []
    for raw in fields.get("ids", []):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            return Response(f"not a job id: {raw!r}", status_code=422)
    changed = await page.console.control.act(action, ids)
    message = f"{len(changed)} of {len(ids)} job(s) {ACTION_VERBS[action]}"
    return page.back("/failed", message, **({"queue": queue} if queue else {}))


# ---------------------------------------------------------------------- schedules


@router.get("/schedules")
async def schedules_page(page: Page) -> Response:
    return page.render("schedules.html", schedules=await page.console.control.schedules())


@router.post("/schedules/{name}/run")
async def run_schedule(page: Page, name: str) -> Response:
    await page.checked_form()
    job_id = await page.console.control.run_schedule(name)
    return page.back("/schedules", f"schedule {name} sent job {job_id}")
