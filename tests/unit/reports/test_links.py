"""Signed download links: genuine until they expire, refused when touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from insightdesk.reports.links import (
    Download,
    ExpiredLink,
    TamperedLink,
    link_ttl,
    sign,
    verify,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET = b"k" * 32
GRANT = Download(
    "exports/o/1.csv", "tickets.csv", "text/csv; charset=utf-8", NOW + timedelta(hours=24)
)


def test_a_genuine_link_grants_its_file_until_it_expires() -> None:
    token = sign(SECRET, GRANT)
    assert verify(SECRET, token, NOW) == GRANT
    assert verify(SECRET, token, GRANT.expires_at - timedelta(seconds=1)) == GRANT
    with pytest.raises(ExpiredLink):
        verify(SECRET, token, GRANT.expires_at)


def test_a_tampered_link_is_refused() -> None:
    token = sign(SECRET, GRANT)
    other = sign(SECRET, Download("exports/o/2.csv", "x.csv", "text/csv", GRANT.expires_at))
    payload, _, signature = token.partition(".")
    forged = other.partition(".")[0] + "." + signature  # another file under this signature
    for bad in (forged, payload + "." + signature[:-2] + "AA", payload, "", "a.b.c", "!!.??"):
        with pytest.raises(TamperedLink):
            verify(SECRET, bad, NOW)
    with pytest.raises(TamperedLink):
        verify(b"another key", token, NOW)


def test_a_tampered_and_expired_link_is_tampered_not_expired() -> None:
    token = sign(SECRET, GRANT)
    with pytest.raises(TamperedLink):
        verify(b"x" * 32, token, NOW + timedelta(days=30))


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (None, timedelta(hours=24)),
        (1, timedelta(hours=1)),
        (168, timedelta(days=7)),
        (500, timedelta(days=7)),
    ],
)
def test_links_live_as_asked_but_never_beyond_seven_days(
    asked: int | None, expected: timedelta
) -> None:
    assert link_ttl(asked, 24) == expected
