"""One contract for every blob store: the local directory and the S3-compatible one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from app.vault import s3
from app.vault.blobs import BlobStore
from app.vault.errors import BlobNotFound
from tests.app.vault.conftest import s3_store


async def stream(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(store: BlobStore, key: str) -> bytes:
    return b"".join([piece async for piece in store.read(key)])


class Interrupted(Exception):
    pass


async def interrupted(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise Interrupted


class TestBlobStoreContract:
    async def test_put_read_exists_delete(self, blob_store: BlobStore) -> None:
        data = os.urandom(300_000)
        assert await blob_store.put("doc-a", stream(data[:1000], data[1000:])) == len(data)
        assert await blob_store.exists("doc-a")
        assert await read_all(blob_store, "doc-a") == data
        await blob_store.delete("doc-a")
        assert not await blob_store.exists("doc-a")
        await blob_store.delete("doc-a")  # no error for a missing blob

    async def test_an_empty_blob(self, blob_store: BlobStore) -> None:
        assert await blob_store.put("empty", stream()) == 0
        assert await read_all(blob_store, "empty") == b""

    async def test_a_missing_blob_is_not_found(self, blob_store: BlobStore) -> None:
        with pytest.raises(BlobNotFound):
            await read_all(blob_store, "nothing-here")

    async def test_put_replaces(self, blob_store: BlobStore) -> None:
        await blob_store.put("doc-b", stream(b"first"))
        await blob_store.put("doc-b", stream(b"second"))
        assert await read_all(blob_store, "doc-b") == b"second"

    async def test_an_interrupted_upload_leaves_no_blob(self, blob_store: BlobStore) -> None:
        with pytest.raises(Interrupted):
            await blob_store.put("doc-c", interrupted(b"x" * 100_000))
        assert not await blob_store.exists("doc-c")
        assert [info.key async for info in blob_store.listing()] == []
        await blob_store.sweep_temporary(0)

    async def test_list_names_every_blob_with_its_size(self, blob_store: BlobStore) -> None:
        await blob_store.put("one", stream(b"1"))
        await blob_store.put("two", stream(b"22"))
        listed = {info.key: info.size async for info in blob_store.listing()}
        assert listed == {"one": 1, "two": 2}

    @pytest.mark.parametrize("key", ["../escape", "a/b", "", ".hidden", "x" * 200])
    async def test_unsafe_keys_are_refused(self, blob_store: BlobStore, key: str) -> None:
        with pytest.raises(ValueError):
            await blob_store.put(key, stream(b"x"))


class TestMultipart:
    async def test_a_large_upload_goes_in_parts_and_an_interrupted_one_is_aborted(
        self, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(s3, "PART_BYTES", 5 * 1024 * 1024)
        store = await s3_store(s3_endpoint)
        try:
            data = os.urandom(11 * 1024 * 1024)
            pieces = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
            assert await store.put("big", stream(*pieces)) == len(data)
            assert await read_all(store, "big") == data
            with pytest.raises(Interrupted):
                await store.put("cut", interrupted(*pieces[:7]))
            assert not await store.exists("cut")
            client = await store._s3()
            uploads = await client.list_multipart_uploads(Bucket=store.bucket)
            assert uploads.get("Uploads", []) == []
        finally:
            await store.close()
