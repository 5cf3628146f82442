"""Object storage behind one interface: a local folder by default, any S3-compatible store
(AWS S3, MinIO, Ceph, R2...) by settings.

Services share files by *key* — the reports service writes an export or a chart, the email
service reads it to attach it — so no file ever travels inside a job payload. Keys are relative
paths (``exports/<org>/<id>.csv``); a key that tries to leave the root (``..``, absolute) is
refused. The S3 adapter runs boto3 (blocking) in worker threads; uploads of big files are
multipart, so memory stays bounded whatever the size. Both adapters pass the same contract tests
(``tests/integration/test_storage.py``; S3 against moto's in-process fake).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings

from insightdesk.shared.errors import ConfigurationError, InsightDeskError


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


class S3Storage:
    """Objects in ``bucket`` (under ``prefix``) of an S3-compatible store, through boto3."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, *, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def local_path(self, key: str) -> Path | None:
        return None

    async def _call(self, action: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise ObjectNotFound(f"no object {key!r}") from exc
            raise StorageError(f"S3 {action} {key!r} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {action} {key!r} failed: {exc}") from exc

    async def put_file(self, key: str, path: Path, content_type: str) -> int:
        await self._call(
            "upload",
            key,
            self._client.upload_file,
            str(path),
            self.bucket,
            self._key(key),
            ExtraArgs={"ContentType": content_type},
        )
        return (await asyncio.to_thread(path.stat)).st_size

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(
            "put",
            key,
            self._client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    async def read(self, key: str) -> bytes:
        def get() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            body: bytes = response["Body"].read()
            return body

        result: bytes = await self._call("get", key, get)
        return result

    async def download(self, key: str, path: Path) -> None:
        await self._call(
            "download", key, self._client.download_file, self.bucket, self._key(key), str(path)
        )

    async def delete(self, key: str) -> None:
        await self._call(
            "delete", key, self._client.delete_object, Bucket=self.bucket, Key=self._key(key)
        )

    async def exists(self, key: str) -> bool:
        try:
            await self._call(
                "head", key, self._client.head_object, Bucket=self.bucket, Key=self._key(key)
            )
        except ObjectNotFound:
            return False
        return True

    async def presigned_url(
        self, key: str, *, expires_in: int, filename: str, content_type: str
    ) -> str | None:
        url: str = await self._call(
            "presign",
            key,
            self._client.generate_presigned_url,
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in,
        )
        return url


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


def make_storage(config: StorageConfig) -> ObjectStorage:
    """The store ``config`` names (builds a boto3 client for S3; nothing connects yet)."""
    if config.backend == "local":
        return LocalStorage(config.local_dir)
    if not config.s3_bucket:
        raise ConfigurationError("an S3 storage backend needs a bucket name")
    import boto3  # noqa: PLC0415  # only services configured for S3 load boto3
    from botocore.config import Config  # noqa: PLC0415

    client = boto3.client(
        "s3",
        config=Config(signature_version="s3v4"),
        endpoint_url=config.s3_endpoint_url,
        region_name=config.s3_region,
        aws_access_key_id=config.s3_access_key_id,
        aws_secret_access_key=(
            None
            if config.s3_secret_access_key is None
            else config.s3_secret_access_key.get_secret_value()
        ),
    )
    return S3Storage(client, config.s3_bucket, prefix=config.s3_prefix)


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
