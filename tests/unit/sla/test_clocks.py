"""SLA clocks through the handlers, on the in-memory twin with a fake clock and a fake queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from insightdesk.shared.contracts import (
    BusinessCalendarConfig,
    ClockState,
    SlaBreached,
    TicketPriority,
    TicketStatus,
)
from tests.unit.sla.harness import AGENT, CUSTOMER, Harness, TicketStory, policy

MINUTE = timedelta(minutes=1)


async def test_first_response_missed_is_breached_once() -> None:
    h = Harness()
    await h.set_policy(policy())
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.advance(59 * MINUTE)
    assert h.breaches() == []
    assert [w.target for w in h.warnings()] == ["first_response"]  # at 80%: minute 48
    await h.advance(2 * MINUTE)
    assert [(b.target, b.due_at) for b in h.breaches()] == [
        ("first_response", t.created_at + 60 * MINUTE)
    ]
    assert h.targets(t.id)["first_response"].breached
    # the scan finds nothing left to do; a late reply records no second breach
    async with h.units() as unit:
        assert await unit.store.overdue(h.clock.now(), 10) == []
    await h.deliver(t.reply(AGENT))
    assert len(h.breaches()) == 1
    assert h.targets(t.id)["first_response"].state == ClockState.FULFILLED


async def test_answered_in_time_is_not_breached() -> None:
    h = Harness()
    await h.set_policy(policy())
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.advance(30 * MINUTE)
    await h.deliver(t.reply(AGENT))
    await h.advance(10 * 60 * MINUTE)
    assert [b.target for b in h.breaches()] == ["resolution"]
    first = h.targets(t.id)["first_response"]
    assert first.state == ClockState.FULFILLED
    assert not first.breached


async def test_resolution_missed_and_resolved_in_time() -> None:
    h = Harness()
    await h.set_policy(policy())
    late, on_time = TicketStory(h), TicketStory(h)
    for t in (late, on_time):
        await h.deliver(t.created())
        await h.deliver(t.reply(AGENT))
    await h.advance(470 * MINUTE)
    await h.deliver(on_time.status_to(TicketStatus.RESOLVED))
    await h.advance(20 * MINUTE)
    assert [(b.ticket_id, b.target) for b in h.breaches()] == [(late.id, "resolution")]


async def test_pause_and_resume_keep_the_time_used() -> None:
    h = Harness()
    await h.set_policy(policy())
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.deliver(t.reply(AGENT))
    await h.advance(100 * MINUTE)
    await h.deliver(t.status_to(TicketStatus.PENDING))
    assert h.targets(t.id)["resolution"].state == ClockState.PAUSED
    assert h.targets(t.id)["resolution"].remaining_minutes == 380
    await h.advance(24 * 60 * MINUTE)  # a day pending: no breach
    assert h.breaches() == []
    await h.deliver(t.status_to(TicketStatus.OPEN))
    resumed = h.targets(t.id)["resolution"]
    assert resumed.due_at == h.clock.now() + 380 * MINUTE
    await h.advance(381 * MINUTE)
    assert [b.target for b in h.breaches()] == ["resolution"]
    async with h.units() as unit:
        clock = next(
            c for c in (await unit.store.clocks([t.id]))[t.id] if c.target.value == "resolution"
        )
    assert len(clock.pauses) == 1 and clock.pauses[0].resumed_at is not None


async def test_next_response_clock_per_customer_message_awaiting_reply() -> None:
    h = Harness()
    await h.set_policy(policy())
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.deliver(t.reply(AGENT))
    await h.advance(10 * MINUTE)
    await h.deliver(t.reply(CUSTOMER))
    await h.advance(10 * MINUTE)
    await h.deliver(t.reply(CUSTOMER))  # still awaiting the same reply
    nxt = h.targets(t.id)["next_response"]
    assert (nxt.cycle, nxt.state) == (0, ClockState.RUNNING)
    assert nxt.due_at == t.created_at + 130 * MINUTE
    await h.deliver(t.reply(AGENT))
    assert h.targets(t.id)["next_response"].state == ClockState.FULFILLED
    await h.advance(MINUTE)
    await h.deliver(t.reply(CUSTOMER))
    assert h.targets(t.id)["next_response"].cycle == 1
    await h.advance(121 * MINUTE)
    assert [(b.target, b.cycle) for b in h.breaches()] == [("next_response", 1)]


async def test_policy_change_mid_flight_keeps_the_time_used() -> None:
    h = Harness()
    pid = await h.set_policy(policy())
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.advance(40 * MINUTE)
    before = h.targets(t.id)["first_response"]
    tighter = policy(targets=[{"priority": "normal", "first_response": {"minutes": 45}}])
    await h.set_policy(tighter, pid)
    after = h.targets(t.id)["first_response"]
    assert after.due_at == t.created_at + 45 * MINUTE
    assert after.due_at < before.due_at
    assert (
        "resolution" in h.targets(t.id)
        and h.targets(t.id)["resolution"].state == ClockState.STOPPED
    )
    await h.advance(6 * MINUTE)
    # the old version's deadline job (minute 60) finds itself stale: one breach, at minute 45
    await h.advance(30 * MINUTE)
    assert [(b.target, b.due_at) for b in h.breaches()] == [
        ("first_response", t.created_at + 45 * MINUTE)
    ]


async def test_priority_change_moves_to_the_matching_policy() -> None:
    h = Harness()
    await h.set_policy(policy())
    await h.set_policy(
        policy(
            name="urgent",
            is_default=False,
            conditions={"priorities": ["urgent"]},
            targets=[{"priority": "urgent", "first_response": {"minutes": 15}}],
        )
    )
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.advance(10 * MINUTE)
    await h.deliver(t.priority_to(TicketPriority.URGENT))
    assert h.targets(t.id)["first_response"].due_at == t.created_at + 15 * MINUTE
    await h.advance(6 * MINUTE)
    assert [b.target for b in h.breaches()] == ["first_response"]


def office_hours(start: str, end: str) -> BusinessCalendarConfig:
    days = ("monday", "tuesday", "wednesday", "thursday", "friday")
    return BusinessCalendarConfig.model_validate(
        {
            "name": "office",
            "time_zone": "UTC",
            "hours": {d: [{"start": start, "end": end}] for d in days},
        }
    )


async def test_calendar_edit_moves_deadlines_earlier_and_later() -> None:
    h = Harness(datetime(2026, 3, 16, 9, 0, tzinfo=UTC))  # a Monday
    cid = await h.set_calendar(office_hours("09:00", "17:00"))
    await h.set_policy(policy(calendar_id=cid))
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.advance(30 * MINUTE)
    assert h.targets(t.id)["resolution"].due_at == datetime(2026, 3, 16, 17, 0, tzinfo=UTC)
    # shorter days: 450 business minutes left = 150 today, 180 on Tuesday, 120 on Wednesday
    await h.set_calendar(office_hours("09:00", "12:00"), cid)
    later = h.targets(t.id)["resolution"].due_at
    assert later == datetime(2026, 3, 18, 11, 0, tzinfo=UTC)
    # longer days: earlier again; the 30 minutes used under the first calendar are kept
    await h.set_calendar(office_hours("00:00", "24:00"), cid)
    earlier = h.targets(t.id)["resolution"].due_at
    assert earlier == h.clock.now() + 450 * MINUTE
    assert earlier < later
    await h.advance(451 * MINUTE)
    assert {b.target for b in h.breaches()} == {"first_response", "resolution"}
    assert len(h.breaches()) == 2


async def test_duplicate_and_out_of_order_events() -> None:
    h = Harness()
    await h.set_policy(policy())
    t = TicketStory(h)
    created = t.created()
    await h.advance(20 * MINUTE)
    reply = t.reply(AGENT)  # the reply arrives before ticket.created
    assert await h.deliver(reply) is True
    assert await h.deliver(created) is True
    assert await h.deliver(created) is False  # duplicate
    assert await h.deliver(reply) is False
    assert h.targets(t.id)["first_response"].state == ClockState.FULFILLED
    await h.advance(10 * MINUTE)
    pending = t.status_to(TicketStatus.PENDING)
    await h.advance(10 * MINUTE)
    reopened = t.status_to(TicketStatus.OPEN)
    await h.deliver(reopened)
    resolution = h.targets(t.id)["resolution"]
    await h.deliver(pending)  # older than the status already applied: ignored
    assert h.targets(t.id)["resolution"].state == ClockState.RUNNING
    assert h.targets(t.id)["resolution"].due_at == resolution.due_at
    await h.advance(10 * 60 * MINUTE)
    await h.deliver(t.created())
    assert [b.target for b in h.breaches()] == ["resolution"]


async def test_a_duplicated_deadline_job_breaches_once() -> None:
    h = Harness()
    await h.set_policy(policy())
    t = TicketStory(h)
    await h.deliver(t.created())
    deadline = next(
        c
        for c in h.state.jobs.values()
        if c.kind.value == "deadline" and c.target.value == "first_response"
    )
    h.clock.set(deadline.run_at)
    assert (await h.run(deadline)).outcome == "done"
    assert (await h.run(deadline)).outcome == "stale"
    assert len(h.published(SlaBreached)) == 1


async def test_a_ticket_closed_before_its_deadline_job_runs() -> None:
    h = Harness()
    await h.set_policy(policy())
    t = TicketStory(h)
    await h.deliver(t.created())
    deadline = next(
        c
        for c in h.state.jobs.values()
        if c.kind.value == "deadline" and c.target.value == "first_response"
    )
    h.clock.set(deadline.run_at)
    await h.deliver(t.status_to(TicketStatus.CLOSED))
    assert (await h.run(deadline)).outcome == "stale"
    assert h.breaches() == []
    assert all(x.state == ClockState.STOPPED for x in h.targets(t.id).values())


async def test_escalation_levels_each_once() -> None:
    h = Harness()
    await h.set_policy(
        policy(
            escalation=[
                {"after_minutes": 30},
                {"after_minutes": 60, "notify": ["admins", "agents"]},
            ]
        )
    )
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.advance(61 * MINUTE)
    await h.advance(30 * MINUTE)
    levels = [
        (b.escalation_level, b.notify)
        for b in h.published(SlaBreached)
        if b.target == "first_response"
    ]
    assert levels == [(0, ["assignee", "admins"]), (1, ["admins"])]
    await h.advance(30 * MINUTE)
    assert [
        b.escalation_level for b in h.published(SlaBreached) if b.target == "first_response"
    ] == [0, 1, 2]
    # answered: no further escalation of other targets of this ticket for first response
    await h.deliver(t.reply(AGENT))
    await h.advance(600 * MINUTE)
    assert [
        b.escalation_level for b in h.published(SlaBreached) if b.target == "first_response"
    ] == [0, 1, 2]


async def test_warning_minutes_before() -> None:
    h = Harness()
    await h.set_policy(policy(warning={"percent_elapsed": None, "minutes_before": 5}))
    t = TicketStory(h)
    await h.deliver(t.created())
    await h.advance(54 * MINUTE)
    assert h.warnings() == []
    await h.advance(1 * MINUTE)
    assert [(w.target, w.occurred_at) for w in h.warnings()] == [
        ("first_response", t.created_at + 55 * MINUTE)
    ]


async def test_a_policy_arriving_after_the_ticket_starts_its_clocks() -> None:
    h = Harness()
    t = TicketStory(h)
    await h.deliver(t.created())
    assert h.targets(t.id) == {}
    await h.advance(10 * MINUTE)
    await h.set_policy(policy())
    assert h.targets(t.id)["first_response"].due_at == t.created_at + 60 * MINUTE


def zone_office(zone: str) -> BusinessCalendarConfig:
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return BusinessCalendarConfig.model_validate(
        {
            "name": "round the clock but 03:00-04:00",
            "time_zone": zone,
            "hours": {d: [{"start": "04:00", "end": "03:00"}] for d in days},
        }
    )


@pytest.mark.parametrize(
    ("zone", "spring_sunday"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 3, 8, tzinfo=UTC)),
    ],
)
async def test_a_dst_week_counts_the_hours_that_happen(zone: str, spring_sunday: datetime) -> None:
    """Open 04:00-03:00 local every day (23 wall-clock hours, past midnight): the night of the
    spring switch (02:00 -> 03:00) has one real hour less of business time, so a deadline
    across it lands one hour later in UTC than plain arithmetic says, and a week of clocks
    stays exact through it."""
    tz = ZoneInfo(zone)
    saturday = spring_sunday.date() - timedelta(days=1)
    saturday_noon = datetime(saturday.year, saturday.month, saturday.day, 12, tzinfo=tz)
    h = Harness(saturday_noon.astimezone(UTC))
    cid = await h.set_calendar(zone_office(zone))
    await h.set_policy(
        policy(
            calendar_id=cid,
            targets=[
                {
                    "priority": "normal",
                    "first_response": {"minutes": 24 * 60},
                    "resolution": {"minutes": 7 * 23 * 60 - 60},
                }
            ],
        )
    )
    t = TicketStory(h)
    await h.deliver(t.created())
    first = h.targets(t.id)["first_response"].due_at
    # Sat 12:00-Sun 03:00 is 15 wall hours but 14 real ones (the switch); Sun 04:00-14:00 the
    # other 10: due Sunday 14:00 local, not 13:00
    assert first == datetime(
        spring_sunday.year, spring_sunday.month, spring_sunday.day, 14, tzinfo=tz
    )
    # 160 h: 14 h to Sunday 03:00, six full days of 23 h (138 h), 8 h on the next Saturday
    next_saturday = saturday + timedelta(days=7)
    assert h.targets(t.id)["resolution"].due_at == datetime(
        next_saturday.year, next_saturday.month, next_saturday.day, 12, tzinfo=tz
    )
    await h.advance(timedelta(days=8))
    assert [b.target for b in h.breaches()] == ["first_response", "resolution"]
