"""Providers that do real I/O: the file sink on disk, SMTP against an in-process aiosmtpd."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from insightdesk.email.errors import PermanentDeliveryError, TransientDeliveryError
from insightdesk.email.messages import MailFile, OutgoingEmail
from insightdesk.email.providers.file_sink import FileSinkProvider, outbox_file_name
from insightdesk.email.providers.smtp import SmtpProvider


def mail(subject: str = "Hello", to: str = "ada@example.com") -> OutgoingEmail:
    return OutgoingEmail(
        sender="InsightDesk <no-reply@desk.example>",
        to=to,
        subject=subject,
        text="text part\n",
        html="<p>html part</p>",
        message_id="<m1@desk.example>",
        date=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        headers={"X-InsightDesk-Idempotency-Key": "k/1", "X-Trace-Id": "ab" * 16},
    )


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- file sink


async def test_the_file_sink_writes_one_rfc5322_file_per_key(tmp_path: Path) -> None:
    sink = FileSinkProvider(tmp_path / "outbox")
    receipt = await sink.send(mail(), "user.registered/ada")
    assert names(tmp_path / "outbox") == [receipt.provider_message_id]
    assert receipt.provider_message_id == outbox_file_name("user.registered/ada")
    assert receipt.provider_message_id.startswith("user.registered_ada-")
    parsed = parse(sink.path_for("user.registered/ada").read_bytes())
    assert parsed["Message-ID"] == "<m1@desk.example>" and parsed["Subject"] == "Hello"
    assert parsed["X-InsightDesk-Idempotency-Key"] == "k/1"


async def test_a_retry_overwrites_the_file_instead_of_adding_one(tmp_path: Path) -> None:
    sink = FileSinkProvider(tmp_path)
    await sink.send(mail("first"), "k/1")
    await sink.send(mail("second"), "k/1")
    await sink.send(mail("other"), "k/2")
    assert len(names(tmp_path)) == 2  # no temporary files left behind either
    assert parse(sink.path_for("k/1").read_bytes())["Subject"] == "second"


def test_file_names_are_stable_safe_and_distinct() -> None:
    assert outbox_file_name("a/b") == outbox_file_name("a/b")
    assert outbox_file_name("a/b") != outbox_file_name("a_b")  # the digest tells them apart
    assert "/" not in outbox_file_name("../../etc/passwd")
    assert outbox_file_name("../../etc/passwd").endswith(".eml")


async def test_an_unwritable_outbox_is_a_transient_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TransientDeliveryError, match="cannot write"):
        await FileSinkProvider(blocker / "outbox").send(mail(), "k")


# ---------------------------------------------------------------- SMTP


class Recorder:
    """aiosmtpd handler: keeps what arrives; refuses or defers some recipients."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(  # noqa: N802  # aiosmtpd hook names
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  # aiosmtpd hook names
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 queued"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def smtp(port: int) -> SmtpProvider:
    return SmtpProvider(host="127.0.0.1", port=port, starttls=False, timeout=5)


async def test_smtp_delivers_both_parts_and_the_headers(
    smtp_server: tuple[Recorder, int],
) -> None:
    recorder, port = smtp_server
    receipt = await smtp(port).send(mail(), "k/1")
    assert receipt.provider == "smtp" and receipt.provider_message_id == "<m1@desk.example>"
    [(mail_from, rcpt_tos, content)] = recorder.received
    assert mail_from == "no-reply@desk.example" and rcpt_tos == ["ada@example.com"]
    parsed = parse(content)
    assert parsed["Message-ID"] == "<m1@desk.example>"
    assert parsed["X-InsightDesk-Idempotency-Key"] == "k/1"
    assert parsed["X-Trace-Id"] == "ab" * 16
    assert parsed["From"] == "InsightDesk <no-reply@desk.example>"
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and text.get_content().strip() == "text part"
    assert html is not None and "<p>html part</p>" in html.get_content()


async def test_smtp_refusing_the_recipient_is_permanent(
    smtp_server: tuple[Recorder, int],
) -> None:
    _, port = smtp_server
    with pytest.raises(PermanentDeliveryError, match="550"):
        await smtp(port).send(mail(to="nobody@example.com"), "k")


async def test_smtp_deferring_the_recipient_is_transient(
    smtp_server: tuple[Recorder, int],
) -> None:
    _, port = smtp_server
    with pytest.raises(TransientDeliveryError, match="451"):
        await smtp(port).send(mail(to="busy@example.com"), "k")


async def test_no_smtp_server_is_a_transient_failure() -> None:
    with pytest.raises(TransientDeliveryError):
        await smtp(_free_port()).send(mail(), "k")


async def test_smtp_carries_inline_images_and_attachments(
    smtp_server: tuple[Recorder, int],
) -> None:
    recorder, port = smtp_server
    png = b"\x89PNG\r\n\x1a\n" + b"1" * 32
    message = replace(
        mail(),
        html='<p><img src="cid:chart"></p>',
        files=(
            MailFile("chart.png", "image/png", png, inline=True, content_id="chart"),
            MailFile("t.csv", "text/csv", b"a\r\n"),
        ),
    )
    await smtp(port).send(message, "k/2")
    [(_, _, content)] = recorder.received
    parsed = parse(content)
    [image] = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == "<chart>" and image.get_payload(decode=True) == png
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["t.csv"]
