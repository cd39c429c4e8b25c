"""The S3-compatible blob store (production option), through aiobotocore.

`SSC_VAULT_S3_URL=s3://bucket?endpoint=https://host:9000&region=...` with the credentials in
`SSC_VAULT_S3_ACCESS_KEY` / `SSC_VAULT_S3_SECRET_KEY` (or the usual AWS environment). A put
of up to one part (`PART_BYTES`) is a single `PutObject`; a larger one is a multipart upload
completed only after its last part, and aborted on any error, so an object never exists half
written. Parts of uploads a crashed process left are aborted by `sweep_temporary`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.vault.blobs import READ_BYTES, BlobInfo, check_key
from app.vault.errors import BlobNotFound, BlobStoreUnavailable

PART_BYTES = 8 * 1024 * 1024
"""Size of one multipart part (S3 wants at least 5 MiB for every part but the last): the
most an upload holds in memory."""
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region or "us-east-1",
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
            "config": Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        }
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def _s3(self) -> Any:
        if self._client is None:
            session = get_session()
            self._client = await self._stack.enter_async_context(
                session.create_client("s3", **self._options)
            )
        return self._client

    def _object(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def ensure_bucket(self) -> None:
        """Creates the bucket when missing (tests and first starts)."""
        s3 = await self._s3()
        try:
            await s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            await s3.create_bucket(Bucket=self.bucket)
        except BotoCoreError as error:
            raise _unavailable(error) from error

    async def put(self, key: str, data: AsyncIterable[bytes]) -> int:
        name = self._object(key)
        s3 = await self._s3()
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        size = 0
        completed = False
        try:
            async for piece in data:
                buffer += piece
                size += len(piece)
                while len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        started = await s3.create_multipart_upload(Bucket=self.bucket, Key=name)
                        upload_id = started["UploadId"]
                    body = bytes(buffer[:PART_BYTES])
                    del buffer[:PART_BYTES]
                    parts.append(await self._part(s3, name, upload_id, len(parts) + 1, body))
            if upload_id is None:
                await s3.put_object(Bucket=self.bucket, Key=name, Body=bytes(buffer))
            else:
                if buffer or not parts:
                    parts.append(
                        await self._part(s3, name, upload_id, len(parts) + 1, bytes(buffer))
                    )
                await s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            completed = True
        except (BotoCoreError, ClientError, OSError) as error:
            raise _unavailable(error) from error
        finally:
            if not completed and upload_id is not None:
                # On failure the sweeper aborts it later.
                with contextlib.suppress(BotoCoreError, ClientError, OSError):
                    await s3.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload_id
                    )
        return size

    async def _part(
        self, s3: Any, name: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        answer = await s3.upload_part(
            Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"ETag": answer["ETag"], "PartNumber": number}

    async def read(self, key: str) -> AsyncIterator[bytes]:
        name = self._object(key)
        s3 = await self._s3()
        try:
            answer = await s3.get_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _code(error) in _MISSING:
                raise BlobNotFound(f"no stored blob {key!r}") from None
            raise _unavailable(error) from error
        except (BotoCoreError, OSError) as error:
            raise _unavailable(error) from error
        body = answer["Body"]
        try:
            while True:
                try:
                    piece = await body.read(READ_BYTES)
                except (BotoCoreError, OSError) as error:
                    raise _unavailable(error) from error
                if not piece:
                    return
                yield piece
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        s3 = await self._s3()
        try:
            await s3.delete_object(Bucket=self.bucket, Key=self._object(key))
        except (BotoCoreError, ClientError, OSError) as error:
            raise _unavailable(error) from error

    async def exists(self, key: str) -> bool:
        s3 = await self._s3()
        try:
            await s3.head_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise _unavailable(error) from error
        except (BotoCoreError, OSError) as error:
            raise _unavailable(error) from error
        return True

    async def listing(self) -> AsyncIterator[BlobInfo]:
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix) :]
                    yield BlobInfo(key, int(item["Size"]), item["LastModified"].timestamp())
        except (BotoCoreError, ClientError, OSError) as error:
            raise _unavailable(error) from error

    async def sweep_temporary(self, older_than: float) -> int:
        s3 = await self._s3()
        cutoff = time.time() - older_than
        removed = 0
        try:
            answer = await s3.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
            for upload in answer.get("Uploads", ()):
                if upload["Initiated"].timestamp() < cutoff:
                    await s3.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        except (BotoCoreError, ClientError, OSError) as error:
            raise _unavailable(error) from error
        return removed

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _unavailable(error: BaseException) -> BlobStoreUnavailable:
    return BlobStoreUnavailable(f"the S3 document store failed: {type(error).__name__}")
