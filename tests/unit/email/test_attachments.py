"""Inline images and attachments: read from storage by key, carried by every provider (MIME for
the file sink and SMTP, the JSON API's attachments for Resend)."""

from __future__ import annotations

import base64
import email
import json
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from insightdesk.email.errors import PermanentDeliveryError, TransientDeliveryError
from insightdesk.email.handlers import load_files
from insightdesk.email.messages import MailFile, OutgoingEmail
from insightdesk.email.providers.file_sink import FileSinkProvider
from insightdesk.email.providers.resend import ResendProvider
from insightdesk.shared.contracts import Attachment, SendEmail
from insightdesk.shared.storage import LocalStorage, StorageError

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
MAIL = OutgoingEmail(
    sender="InsightDesk <no-reply@desk.example>",
    to="ada@example.com",
    subject="Weekly",
    text="text part\n",
    html='<p><img src="cid:chart"></p>',
    message_id="<m1@desk.example>",
    date=datetime(2026, 3, 2, tzinfo=UTC),
    files=(
        MailFile("chart.png", "image/png", PNG, inline=True, content_id="chart"),
        MailFile("tickets.csv", "text/csv", b"a,b\r\n1,2\r\n"),
    ),
)


def command(*attachments: Attachment) -> SendEmail:
    return SendEmail(
        to="ada@example.com",
        template="weekly-report",
        idempotency_key="k1",
        attachments=list(attachments),
    )


def test_mime_has_the_image_related_to_the_html_and_the_file_attached() -> None:
    parsed = email.message_from_bytes(MAIL.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    types = [p.get_content_type() for p in parsed.walk()]
    assert types.count("multipart/related") == 1
    assert "multipart/alternative" in types
    [image] = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == "<chart>"
    assert image.get_payload(decode=True) == PNG
    [csv_part] = [p for p in parsed.walk() if p.get_filename() == "tickets.csv"]
    assert csv_part.get_content_disposition() == "attachment"
    assert csv_part.get_payload(decode=True) == b"a,b\r\n1,2\r\n"


def test_a_mail_without_files_stays_multipart_alternative() -> None:
    parsed = email.message_from_bytes(replace(MAIL, files=()).as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"


async def test_the_file_sink_writes_the_parts(tmp_path: Path) -> None:
    provider = FileSinkProvider(tmp_path)
    receipt = await provider.send(MAIL, "k1")
    written = (tmp_path / str(receipt.provider_message_id)).read_bytes()
    parsed = email.message_from_bytes(written, policy=policy.default)
    assert {p.get_filename() for p in parsed.walk() if p.get_filename()} == {
        "chart.png",
        "tickets.csv",
    }


async def test_resend_sends_attachments_with_content_ids() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "re-1"})

    provider = ResendProvider(
        api_key=SecretStr("re_test_0123456789"),
        base_url="https://api.resend.test",
        default_retry_after=30,
        transport=httpx.MockTransport(handler),
    )
    await provider.send(MAIL, "k1")
    await provider.aclose()
    body = json.loads(seen[0].content)
    image, attached = body["attachments"]
    assert image == {
        "filename": "chart.png",
        "content": base64.b64encode(PNG).decode(),
        "content_type": "image/png",
        "content_id": "chart",
    }
    assert "content_id" not in attached
    assert base64.b64decode(attached["content"]) == b"a,b\r\n1,2\r\n"


async def test_attachments_are_read_from_storage_by_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_bytes("charts/o/1.png", PNG, "image/png")
    cmd = command(
        Attachment(
            key="charts/o/1.png",
            filename="c.png",
            content_type="image/png",
            inline=True,
            content_id="c",
        )
    )
    [loaded] = await load_files(cmd, storage)
    assert (loaded.data, loaded.inline, loaded.content_id) == (PNG, True, "c")
    assert await load_files(command(), None) == ()


async def test_a_missing_object_is_permanent_and_an_outage_transient(tmp_path: Path) -> None:
    cmd = command(Attachment(key="charts/none.png", filename="c.png"))
    with pytest.raises(PermanentDeliveryError, match="not in storage"):
        await load_files(cmd, LocalStorage(tmp_path))
    with pytest.raises(PermanentDeliveryError, match="no storage"):
        await load_files(cmd, None)

    class Down:
        async def read(self, key: str) -> bytes:
            raise StorageError("connection refused")

    with pytest.raises(TransientDeliveryError):
        await load_files(cmd, Down())


def test_attachment_references_are_validated() -> None:
    with pytest.raises(ValueError, match="relative storage key"):
        Attachment(key="../etc/passwd", filename="x")
    with pytest.raises(ValueError, match="content_id"):
        Attachment(key="a/b.png", filename="b.png", inline=True)
    with pytest.raises(ValueError, match="filename"):
        Attachment(key="a/b.png", filename="../b.png")
    old = SendEmail.model_validate(
        {"to": "a@example.com", "template": "welcome", "idempotency_key": "k"}
    )
    assert old.attachments == []  # an older producer's command still validates
