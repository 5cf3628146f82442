"""The S3-compatible adapter of :class:`insightdesk.shared.storage.ObjectStorage` (boto3, run in
worker threads; big uploads are multipart, so memory stays bounded)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from insightdesk.shared.storage import ObjectNotFound, StorageError, check_key


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
