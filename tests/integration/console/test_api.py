"""The console's JSON API over a real database: every endpoint, its 401/404/422 answers."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from insightdesk.shared.queue import (
    CronScheduler,
    JobOptions,
    JobState,
    QueueClient,
    QueueOptions,
    QueuePolicy,
)
from tests.integration.console.conftest import TOKEN


async def _failed_jobs(client: QueueClient, queue: str, n: int) -> list[uuid.UUID]:
    await client.create_queue(queue, QueueOptions(retry_limit=0))
    ids = [i for i in await client.send_many(queue, [{"n": k} for k in range(n)]) if i]
    for job in await client.claim(queue, n):
        await client.fail(job, RuntimeError(f"boom {job.data['n']}"))
    return ids


async def test_requests_without_the_token_or_with_a_wrong_one_are_refused(
    console_app: FastAPI,
) -> None:
    transport = httpx.ASGITransport(app=console_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
        assert (await anon.get("/api/stats")).status_code == 401
        wrong = await anon.get("/api/stats", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        ok = await anon.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


async def test_stats_overview_queues_and_workers(
    api: httpx.AsyncClient, client: QueueClient
) -> None:
    await _failed_jobs(client, "q", 2)
    await client.send_many("q", [{"n": 9}, {"n": 10}])
    await client.send("q", {"n": 11}, None)
    stats = (await api.get("/api/stats")).json()
    [row] = [r for r in stats if r["name"] == "q"]
    assert (row["ready"], row["failed"], row["active"], row["paused"]) == (3, 2, 0, False)
    overview = (await api.get("/api/overview")).json()
    assert {q["name"] for q in overview["queues"]} == {"q"}
    assert overview["workers"] == [] and isinstance(overview["history"], list)
    assert [q["name"] for q in (await api.get("/api/queues")).json()] == ["q"]
    detail = (await api.get("/api/queues/q")).json()
    assert detail["queue"]["ready"] == 3
    assert (await api.get("/api/queues/nope")).status_code == 404
    assert (await api.get("/api/workers")).json() == []
    assert (await api.get("/api/history", params={"seconds": 60})).status_code == 200
    assert (await api.get("/api/history", params={"seconds": -1})).status_code == 422


async def test_pause_and_resume(api: httpx.AsyncClient, client: QueueClient) -> None:
    await client.create_queue("q")
    assert (await api.post("/api/queues/q/pause")).status_code == 204
    assert (await api.get("/api/queues/q")).json()["queue"]["paused"] is True
    await client.send("q", {})
    assert await client.claim("q") == []
    assert (await api.post("/api/queues/q/resume")).status_code == 204
    assert len(await client.claim("q")) == 1
    assert (await api.post("/api/queues/nope/pause")).status_code == 404


async def test_failed_and_retry_the_seed_endpoints(
    api: httpx.AsyncClient, client: QueueClient
) -> None:
    ids = await _failed_jobs(client, "q", 3)
    failed = (await api.get("/api/failed")).json()
    assert {j["id"] for j in failed["jobs"]} == {str(i) for i in ids}
    result = (await api.post("/api/retry", json={"ids": [str(ids[0])]})).json()
    assert (result["requested"], result["affected"]) == (1, 1)
    assert (await client.get_job(ids[0])).state == JobState.RETRY
    assert (await api.post("/api/retry", json={"ids": []})).status_code == 422
    assert (await api.post("/api/retry", json={"ids": ["x"]})).status_code == 422


async def test_search_with_filters_and_pages(api: httpx.AsyncClient, client: QueueClient) -> None:
    await client.create_queue("q")
    ids = await client.send_many("q", [{"n": n, "team": "a" if n < 3 else "b"} for n in range(5)])
    page = (await api.get("/api/jobs", params={"queue": "q", "limit": 2})).json()
    assert [j["id"] for j in page["jobs"]] == [str(ids[4]), str(ids[3])]
    rest = (
        await api.get("/api/jobs", params={"queue": "q", "limit": 5, "cursor": page["next_cursor"]})
    ).json()
    assert [j["id"] for j in rest["jobs"]] == [str(i) for i in reversed(ids[:3])]
    team_a = (await api.get("/api/jobs", params={"data": '{"team": "a"}'})).json()
    assert len(team_a["jobs"]) == 3
    one = (await api.get("/api/jobs", params={"id": str(ids[1])})).json()
    assert [j["id"] for j in one["jobs"]] == [str(ids[1])]
    window = (
        await api.get("/api/jobs", params={"since": "2000-01-01T00:00:00Z", "state": "created"})
    ).json()
    assert len(window["jobs"]) == 5


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"state": "bogus"}, "state"),
        ({"id": "not-a-uuid"}, "id"),
        ({"data": "{not json"}, "data"),
        ({"data": "[1, 2]"}, "data"),
        ({"queue": "Bad Name!"}, "name"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"since": "2026-01-02T00:00:00"}, "since"),
        ({"limit": 0}, "limit"),
        ({"cursor": "abc"}, "cursor"),
    ],
)
async def test_bad_search_filters_are_clear_422s(
    api: httpx.AsyncClient, params: dict[str, str | int], needle: str
) -> None:
    response = await api.get("/api/jobs", params=params)
    assert response.status_code == 422
    assert needle in response.text


async def test_job_detail_actions_and_404s(api: httpx.AsyncClient, client: QueueClient) -> None:
    [job_id] = await _failed_jobs(client, "q", 1)
    detail = (await api.get(f"/api/jobs/{job_id}")).json()
    assert detail["state"] == "failed"
    assert detail["errors"][0]["error"]["message"] == "boom 0"
    assert (await api.post(f"/api/jobs/{job_id}/retry")).json()["affected"] == 1
    assert (await api.post(f"/api/jobs/{job_id}/cancel")).json()["affected"] == 1
    assert (await api.post(f"/api/jobs/{job_id}/resume")).json()["affected"] == 1
    assert (await api.delete(f"/api/jobs/{job_id}")).json()["affected"] == 1
    unknown = uuid.uuid4()
    assert (await api.get(f"/api/jobs/{unknown}")).status_code == 404
    assert (await api.post(f"/api/jobs/{unknown}/retry")).status_code == 404
    assert (await api.delete(f"/api/jobs/{unknown}")).status_code == 404
    assert (await api.get("/api/jobs/not-a-uuid")).status_code == 422
    assert (await api.post(f"/api/jobs/{unknown}/explode")).status_code == 422


async def test_an_action_a_queue_policy_forbids_is_a_409_and_changes_nothing(
    api: httpx.AsyncClient, client: QueueClient
) -> None:
    await client.create_queue("short-q", QueueOptions(policy=QueuePolicy.SHORT))
    first = await client.send("short-q", {"n": 1}, JobOptions(singleton_key="k"))
    assert first is not None
    await client.cancel(first)
    assert await client.send("short-q", {"n": 2}, JobOptions(singleton_key="k")) is not None
    response = await api.post(f"/api/jobs/{first}/resume")
    assert response.status_code == 409
    assert "policy already holds a job for that key" in response.json()["detail"]
    assert (await client.get_job(first)).state is JobState.CANCELLED


async def test_actions_on_chosen_ids_and_bulk_by_filter(
    api: httpx.AsyncClient, client: QueueClient
) -> None:
    ids = await _failed_jobs(client, "q", 5)
    chosen = await api.post("/api/jobs/actions", json={"action": "retry", "ids": [str(ids[0])]})
    assert chosen.json()["affected"] == 1
    bulk = await api.post(
        "/api/jobs/bulk",
        json={"action": "delete", "filter": {"queue": ["q"], "state": ["failed"]}, "batch": 2},
    )
    assert bulk.json() == {"action": "delete", "matched": 4, "affected": 4}
    bad = await api.post("/api/jobs/bulk", json={"action": "delete", "filter": {"state": ["x"]}})
    assert bad.status_code == 422 and "state" in bad.text
    nope = await api.post("/api/jobs/bulk", json={"action": "explode", "filter": {}})
    assert nope.status_code == 422


async def test_redrive_a_dead_letter_queue(api: httpx.AsyncClient, client: QueueClient) -> None:
    await client.create_queue("dlq")
    await client.create_queue("q", QueueOptions(retry_limit=0, dead_letter="dlq"))
    await client.send_many("q", [{"n": n} for n in range(3)])
    for job in await client.claim("q", 3):
        await client.fail(job, RuntimeError("boom"))
    moved = (await api.post("/api/dead-letters/dlq/redrive")).json()
    assert moved == {"queue": "dlq", "matched": 3, "moved": 3}
    stats = {r["name"]: r for r in (await api.get("/api/stats")).json()}
    assert stats["q"]["ready"] == 3 and stats["dlq"]["ready"] == 0
    assert (await api.post("/api/dead-letters/nope/redrive")).status_code == 404


async def test_schedules_and_run_now(api: httpx.AsyncClient, client: QueueClient) -> None:
    await client.create_queue("reports")
    await CronScheduler(client).schedule("digest", "reports", "0 * * * *", data={"kind": "d"})
    [schedule] = (await api.get("/api/schedules")).json()
    assert schedule["name"] == "digest" and schedule["next_slot"]
    ran = (await api.post("/api/schedules/digest/run")).json()
    job = await client.get_job(uuid.UUID(ran["job_id"]))
    assert job.data == {"kind": "d"} and job.headers == {"schedule": "digest", "manual": True}
    assert (await api.post("/api/schedules/nope/run")).status_code == 404


async def test_openapi_documents_the_api(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    paths = set(spec["paths"])
    assert {"/api/stats", "/api/failed", "/api/retry", "/api/jobs", "/api/jobs/{job_id}"} <= paths
    assert not any(p in paths for p in ("/", "/login"))
