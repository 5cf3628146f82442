"""The development provider: every mail an RFC 5322 ``.eml`` file in one folder.

The file name is derived from the idempotency key, and each file is written to a temporary
name and renamed into place, so a reader never sees half a mail and a retried job overwrites
its earlier file instead of adding a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path

from insightdesk.email.errors import TransientDeliveryError
from insightdesk.email.messages import DeliveryReceipt, OutgoingEmail, delivery_token

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def outbox_file_name(idempotency_key: str) -> str:
    """A readable prefix of the key plus its digest: stable, unique and file-system safe."""
    prefix = _UNSAFE.sub("_", idempotency_key).strip("._")[:60]
    digest = delivery_token(idempotency_key)[:16]
    return f"{prefix}-{digest}.eml" if prefix else f"{digest}.eml"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class FileSinkProvider:
    name = "file"

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = outbox_dir

    def __repr__(self) -> str:
        return f"FileSinkProvider(outbox_dir={str(self.outbox_dir)!r})"

    def path_for(self, idempotency_key: str) -> Path:
        return self.outbox_dir / outbox_file_name(idempotency_key)

    async def send(self, message: OutgoingEmail, idempotency_key: str) -> DeliveryReceipt:
        path = self.path_for(idempotency_key)
        data = message.as_bytes()

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:  # disk full, permissions: may heal, so retry
            raise TransientDeliveryError(f"cannot write {path}: {exc}") from exc
        return DeliveryReceipt(provider=self.name, provider_message_id=path.name)

    async def aclose(self) -> None:
        return None
