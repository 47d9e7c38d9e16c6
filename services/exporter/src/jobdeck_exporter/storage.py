"""Where finished export files go: one small interface, a local directory or S3.

An export is built in a local spool file first (xlsxwriter needs a file, and a file is
what makes memory flat whatever the size), then ``put`` into storage under a key, and a
download URL made for it that ends when the export expires:

- ``file:///path``: the file is moved under that directory; the exporter serves it at
  ``/exports/<key>`` with an HMAC-signed, expiring URL (``signing.py``).
- ``s3://bucket/prefix``: a multipart upload through aioboto3 (parts of 8 MiB), and a
  presigned GET whose response names the file (``Content-Disposition``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from jobdeck_exporter.signing import UrlSigner

PART_BYTES = 8 * 1024 * 1024
MAX_PRESIGN_S = 7 * 86_400  # SigV4 presigned URLs live at most a week


class StorageError(Exception):
    """Storage refused or failed an operation."""


class Storage(Protocol):
    async def put(self, key: str, path: Path, content_type: str, filename: str) -> None:
        """Store the file at ``path`` under ``key`` (the spool file may be moved away)."""

    async def url(self, key: str, filename: str, expires_at: datetime) -> str:
        """A download URL for ``key`` that stops working at ``expires_at``."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing what is not there is not an error."""

    async def check(self) -> None:
        """Raise unless storage is reachable (readiness)."""


def attachment(filename: str) -> str:
    """``Content-Disposition`` naming the file (ASCII names only reach here: see the API)."""
    return f'attachment; filename="{filename}"'


class LocalStorage:
    """A directory; files are served by the exporter itself under ``/exports/``."""

    def __init__(self, root: Path, signer: UrlSigner, public_url: str = "") -> None:
        self.root = root
        self.signer = signer
        self.public_url = public_url.rstrip("/")

    def path_of(self, key: str) -> Path | None:
        """The file of ``key``, or None if the key would leave the root."""
        path = (self.root / key).resolve()
        root = self.root.resolve()
        return path if path.is_relative_to(root) and path != root else None

    async def put(self, key: str, path: Path, content_type: str, filename: str) -> None:
        target = self.path_of(key)
        if target is None:
            raise StorageError(f"key {key!r} is outside the storage directory")
        await asyncio.to_thread(_move, path, target)

    async def url(self, key: str, filename: str, expires_at: datetime) -> str:
        return self.signer.url(self.public_url, key, int(expires_at.timestamp()))

    async def delete(self, key: str) -> None:
        target = self.path_of(key)
        if target is not None:
            await asyncio.to_thread(_remove, target, self.root.resolve())

    async def check(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.move(source, partial)  # a rename on one filesystem, else a copy
    os.replace(partial, target)  # readers never see a half-written file


def _remove(target: Path, root: Path) -> None:
    target.unlink(missing_ok=True)
    parent = target.parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()  # only once empty
        except OSError:
            break
        parent = parent.parent


class S3Storage:
    """An S3 bucket (or anything speaking its API) under a key prefix."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str = "", region: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.session = aioboto3.Session()
        self.client_options: dict[str, Any] = {
            "config": Config(signature_version="s3v4", retries={"max_attempts": 3}),
        }
        if endpoint_url:
            self.client_options["endpoint_url"] = endpoint_url
        if region:
            self.client_options["region_name"] = region

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _client(self) -> Any:
        return self.session.client("s3", **self.client_options)

    async def put(self, key: str, path: Path, content_type: str, filename: str) -> None:
        """One PUT for a small file, else a multipart upload of 8 MiB parts read one at a
        time (memory stays at one part); a failed multipart upload is aborted."""
        target = {"Bucket": self.bucket, "Key": self.object_key(key)}
        meta = {"ContentType": content_type, "ContentDisposition": attachment(filename)}
        try:
            with path.open("rb") as source:
                first = await asyncio.to_thread(source.read, PART_BYTES)
                async with self._client() as s3:
                    if len(first) < PART_BYTES:
                        await s3.put_object(Body=io.BytesIO(first), **target, **meta)
                    else:
                        await self._multipart(s3, source, first, target, meta)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"upload to s3://{self.bucket} failed: {exc}") from exc
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def _multipart(
        self,
        s3: Any,
        source: BinaryIO,
        first: bytes,
        target: dict[str, str],
        meta: dict[str, str],
    ) -> None:
        upload = await s3.create_multipart_upload(**target, **meta)
        upload_id = upload["UploadId"]
        parts = []
        try:
            chunk, number = first, 1
            while chunk:
                part = await s3.upload_part(
                    Body=io.BytesIO(chunk), PartNumber=number, UploadId=upload_id, **target
                )
                parts.append({"ETag": part["ETag"], "PartNumber": number})
                chunk, number = await asyncio.to_thread(source.read, PART_BYTES), number + 1
            await s3.complete_multipart_upload(
                UploadId=upload_id, MultipartUpload={"Parts": parts}, **target
            )
        except BaseException:
            with contextlib.suppress(BotoCoreError, ClientError):
                await s3.abort_multipart_upload(UploadId=upload_id, **target)
            raise

    async def url(self, key: str, filename: str, expires_at: datetime) -> str:
        ttl = max(1, min(MAX_PRESIGN_S, int(expires_at.timestamp() - time.time())))
        params = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "ResponseContentDisposition": attachment(filename),
        }
        async with self._client() as s3:
            url: str = await s3.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl)
        return url

    async def delete(self, key: str) -> None:
        try:
            async with self._client() as s3:
                await s3.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"delete from s3://{self.bucket} failed: {exc}") from exc

    async def check(self) -> None:
        try:
            async with self._client() as s3:
                await s3.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"bucket {self.bucket!r} unreachable: {exc}") from exc


def open_storage(
    url: str, signer: UrlSigner, public_url: str = "", endpoint_url: str = "", region: str = ""
) -> Storage:
    """The storage ``JOBDECK_STORAGE_URL`` names (checked at start-up by ``ExporterConfig``)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(Path(parts.path), signer, public_url)
    if parts.scheme == "s3":
        return S3Storage(parts.netloc, parts.path, endpoint_url, region)
    raise ValueError(f"JOBDECK_STORAGE_URL {url!r}: use file:///path or s3://bucket/prefix")
