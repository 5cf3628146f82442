"""One contract for every object store: the local folder and S3 (against moto's in-process fake
of the S3 API) pass the same tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from insightdesk.shared.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    ObjectStorage,
    StorageConfig,
)
from insightdesk.shared.storage.factory import make_storage
from insightdesk.shared.storage.s3 import S3Storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStorage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "store")
        return
    with mock_aws():
        client = boto3.client(
            "s3",
            config=Config(signature_version="s3v4"),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's fake accepts any
        )
        client.create_bucket(Bucket="exports")
        yield S3Storage(client, "exports", prefix="insightdesk")


async def test_a_file_put_is_read_back_and_downloaded(
    storage: ObjectStorage, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"a,b\r\n1,2\r\n" * 1000)
    size = await storage.put_file("exports/org/1.csv", source, "text/csv")
    assert size == source.stat().st_size
    assert await storage.exists("exports/org/1.csv")
    assert await storage.read("exports/org/1.csv") == source.read_bytes()
    target = tmp_path / "out.csv"
    await storage.download("exports/org/1.csv", target)
    assert target.read_bytes() == source.read_bytes()


async def test_bytes_overwrite_and_delete(storage: ObjectStorage) -> None:
    await storage.put_bytes("charts/a.png", b"one", "image/png")
    await storage.put_bytes("charts/a.png", b"two", "image/png")
    assert await storage.read("charts/a.png") == b"two"
    await storage.delete("charts/a.png")
    await storage.delete("charts/a.png")  # a missing object is not an error
    assert not await storage.exists("charts/a.png")


async def test_a_missing_object_is_object_not_found(storage: ObjectStorage, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.read("nope/x.bin")
    with pytest.raises(ObjectNotFound):
        await storage.download("nope/x.bin", tmp_path / "x")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/./b", "", "a\\b"])
async def test_keys_cannot_leave_the_root(storage: ObjectStorage, key: str) -> None:
    with pytest.raises(InvalidKey):
        await storage.put_bytes(key, b"x", "text/plain")


async def test_presigned_urls_only_from_a_remote_store(storage: ObjectStorage) -> None:
    await storage.put_bytes("exports/r.csv", b"x", "text/csv")
    url = await storage.presigned_url(
        "exports/r.csv", expires_in=3600, filename="r.csv", content_type="text/csv"
    )
    if isinstance(storage, LocalStorage):
        assert url is None
        assert storage.local_path("exports/r.csv").read_bytes() == b"x"
    else:
        assert url is not None
        assert "insightdesk/exports/r.csv" in url
        assert "X-Amz-Expires=3600" in url
        assert "X-Amz-Signature=" in url


def test_s3_without_a_bucket_is_a_configuration_error() -> None:
    with pytest.raises(Exception, match="bucket"):
        make_storage(StorageConfig(backend="s3"))
