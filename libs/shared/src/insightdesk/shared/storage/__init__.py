"""Object storage behind one interface: a local folder by default, any S3-compatible store
(AWS S3, MinIO, Ceph, R2...) by settings.

Services share files by *key* — the reports service writes an export or a chart, the email
service reads it to attach it — so no file ever travels inside a job payload. Keys are relative
paths (``exports/<org>/<id>.csv``); a key that tries to leave the root (``..``, absolute) is
refused. The S3 adapter runs boto3 (blocking) in worker threads; uploads of big files are
multipart, so memory stays bounded whatever the size. Both adapters pass the same contract tests
(``tests/integration/test_storage.py``; S3 against moto's in-process fake). The S3 adapter
lives in :mod:`insightdesk.shared.storage.s3`, and
:func:`insightdesk.shared.storage.factory.make_storage` picks one from settings, so code that
only uses the interface never imports boto3.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings

from insightdesk.shared.errors import InsightDeskError


class StorageError(InsightDeskError):
    """The store failed (unreachable, refused); may heal, so callers retry."""


class ObjectNotFound(StorageError, LookupError):
    """No object has the key."""


class InvalidKey(StorageError, ValueError):
    """A key that is not a clean relative path."""


def check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(p in {"", ".", ".."} for p in key.split("/"))
        or not parts
    ):
        raise InvalidKey(f"not a relative storage key: {key!r}")
    return key


class ObjectStorage(Protocol):
    name: str

    async def put_file(self, key: str, path: Path, content_type: str) -> int:
        """Store the file at ``path`` under ``key``; returns its size in bytes."""

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def read(self, key: str) -> bytes:
        """The object's bytes (for small objects: mail attachments, charts)."""

    async def download(self, key: str, path: Path) -> None:
        """Copy the object to ``path`` (streamed; any size)."""

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    async def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """Where a local store keeps ``key`` (served by the owner's download route); None for a
        remote store."""

    async def presigned_url(
        self, key: str, *, expires_in: int, filename: str, content_type: str
    ) -> str | None:
        """A time-limited URL the store itself serves, or None when it cannot (local)."""


class LocalStorage:
    """Files under ``root``; writes go through a temporary file and a rename."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    def local_path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put_file(self, key: str, path: Path, content_type: str) -> int:
        target = self.local_path(key)

        def copy() -> int:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put.", suffix=".tmp")
            os.close(fd)
            try:
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            return target.stat().st_size

        try:
            return await asyncio.to_thread(copy)
        except OSError as exc:
            raise StorageError(f"cannot store {key!r}: {exc}") from exc

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        target = self.local_path(key)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise StorageError(f"cannot store {key!r}: {exc}") from exc

    async def read(self, key: str) -> bytes:
        path = self.local_path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object {key!r}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key!r}: {exc}") from exc

    async def download(self, key: str, path: Path) -> None:
        source = self.local_path(key)
        try:
            await asyncio.to_thread(shutil.copyfile, source, path)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object {key!r}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key!r}: {exc}") from exc

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.local_path(key).unlink)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.local_path(key).is_file)

    async def presigned_url(
        self, key: str, *, expires_in: int, filename: str, content_type: str
    ) -> str | None:
        return None


class StorageConfig(BaseModel):
    """Where shared files live (see :class:`StorageSettings`)."""

    backend: Literal["local", "s3"] = "local"
    local_dir: Path = Path(".local/storage")
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None


class StorageSettings(BaseSettings):
    """The ``<PREFIX>STORAGE_*`` fields a service's settings class mixes in: ``STORAGE_BACKEND``
    (``local`` | ``s3``), ``STORAGE_DIR``, ``STORAGE_S3_BUCKET``, ``STORAGE_S3_PREFIX``,
    ``STORAGE_S3_ENDPOINT_URL`` (MinIO...), ``STORAGE_S3_REGION``, ``STORAGE_S3_ACCESS_KEY_ID``,
    ``STORAGE_S3_SECRET_ACCESS_KEY`` (without keys boto3's own chain applies: IAM roles...)."""

    storage_backend: Literal["local", "s3"] = "local"
    storage_dir: Path = Path(".local/storage")
    storage_s3_bucket: str | None = None
    storage_s3_prefix: str = ""
    storage_s3_endpoint_url: str | None = None
    storage_s3_region: str | None = None
    storage_s3_access_key_id: str | None = None
    storage_s3_secret_access_key: SecretStr | None = None

    def storage_config(self) -> StorageConfig:
        return StorageConfig(
            backend=self.storage_backend,
            local_dir=self.storage_dir,
            s3_bucket=self.storage_s3_bucket,
            s3_prefix=self.storage_s3_prefix,
            s3_endpoint_url=self.storage_s3_endpoint_url,
            s3_region=self.storage_s3_region,
            s3_access_key_id=self.storage_s3_access_key_id,
            s3_secret_access_key=self.storage_s3_secret_access_key,
        )
