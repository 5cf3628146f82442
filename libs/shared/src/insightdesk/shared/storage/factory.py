"""Building the configured :class:`insightdesk.shared.storage.ObjectStorage`."""

from __future__ import annotations

from insightdesk.shared.errors import ConfigurationError
from insightdesk.shared.storage import LocalStorage, ObjectStorage, StorageConfig


def make_storage(config: StorageConfig) -> ObjectStorage:
    """The store ``config`` names (builds a boto3 client for S3; nothing connects yet)."""
    if config.backend == "local":
        return LocalStorage(config.local_dir)
    if not config.s3_bucket:
        raise ConfigurationError("an S3 storage backend needs a bucket name")
    import boto3  # noqa: PLC0415  # only services configured for S3 load boto3
    from botocore.config import Config  # noqa: PLC0415

    from insightdesk.shared.storage.s3 import S3Storage  # noqa: PLC0415

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
