"""Media in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph...) through boto3.

The URL names the bucket, an optional key prefix and the client's settings::

    s3://bucket/optional/prefix?endpoint_url=http://127.0.0.1:8333&region=us-east-1&addressing_style=path

Credentials come from ``s3://ACCESS_KEY:SECRET_KEY@bucket`` (URL-quoted) when given, else from
boto3's usual chain (environment, ``~/.aws``, instance role). Downloads are presigned GET URLs;
``public_endpoint_url`` signs them for another address of the same storage (the one clients
reach, when the node talks to it on an internal network).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

from workers.media.base import Attachment, check_key
from workers.media.errors import ObjectMissing, StorageUnavailable

__all__ = ["S3Storage"]

_OPTIONS = frozenset({"endpoint_url", "region", "addressing_style", "public_endpoint_url"})
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class _Counting(io.RawIOBase):
    """Counts what boto3 reads from the source stream."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.count += size
        return size


class _Body(io.RawIOBase):
    """A botocore StreamingBody as a file object."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        return size

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Storage:
    def __init__(self, url: str) -> None:
        import boto3  # type: ignore[import-untyped, import-not-found, unused-ignore]
        from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped, import-not-found, unused-ignore]
        from botocore.config import Config  # type: ignore[import-untyped, import-not-found, unused-ignore]

        parts = urlsplit(url)
        credentials, _, bucket = parts.netloc.rpartition("@")
        if parts.scheme != "s3" or not bucket:
            raise ValueError("an S3 storage URL is s3://bucket[/prefix][?endpoint_url=…&region=…]")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = set(query) - _OPTIONS
        if unknown:
            raise ValueError(f"unknown S3 storage option(s) {sorted(unknown)} (known: {sorted(_OPTIONS)})")
        access_key, _, secret_key = credentials.partition(":")
        self.bucket = bucket
        self._prefix = parts.path.strip("/")
        endpoint = query.get("endpoint_url")
        style = query.get("addressing_style", "path" if endpoint else "auto")

        def client(endpoint_url: str | None) -> Any:
            return boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=query.get("region"),
                aws_access_key_id=unquote(access_key) or None,
                aws_secret_access_key=unquote(secret_key) or None,
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": style},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                ),
            )

        self._client = client(endpoint)
        public = query.get("public_endpoint_url")
        self._presigner = client(public) if public else self._client
        # one thread per upload: the source is a stream read in order
        self._transfer = TransferConfig(use_threads=False)
        self._display = f"s3://{bucket}/{self._prefix}" + (f" at {endpoint}" if endpoint else "")

    def __repr__(self) -> str:
        return f"S3Storage({self._display!r})"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def put_stream(self, key: str, stream: IO[bytes], *, content_type: str) -> int:
        counting = _Counting(stream)
        with self._errors(key):
            self._client.upload_fileobj(
                counting,
                self.bucket,
                self._key(key),
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            )
        return counting.count

    def open(self, key: str) -> IO[bytes]:
        with self._errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        return io.BufferedReader(_Body(response["Body"]))

    def delete(self, key: str) -> None:
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectMissing:
            return False
        return True

    def signed_url(self, key: str, *, expires_in: int, attachment: Attachment | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if attachment is not None:  # the bucket answers with these headers: part of the signature
            params["ResponseContentDisposition"] = attachment.disposition()
            params["ResponseContentType"] = attachment.content_type
        url: str = self._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    def close(self) -> None:
        self._client.close()
        if self._presigner is not self._client:
            self._presigner.close()

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """botocore's exceptions as ours: a missing object, or storage that did not answer."""
        from botocore.exceptions import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
            ClientError,
            ConnectionError,
            HTTPClientError,
        )

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if str(error.get("Code")) in _MISSING or status == 404:
                raise ObjectMissing(key) from None
            if status >= 500 or status == 429:
                raise StorageUnavailable(f"object storage answered {status}: {error.get('Message')}") from exc
            raise
        except (ConnectionError, HTTPClientError) as exc:
            raise StorageUnavailable(f"object storage unavailable: {exc}") from exc
