"""Envelope encryption: streamed sealing round trips, and every tampering is caught."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable

import pytest

from token_service.envelope import (
    HEADER_BYTES,
    TAG_BYTES,
    EnvelopeError,
    MasterKeys,
    WrappedKey,
    new_data_key,
    open_stream,
    seal_stream,
    sealed_size,
)

CHUNK = 1024


async def pieces(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def seal(key: bytes, data: bytes, context: bytes = b"doc-1", split: int = 333) -> bytes:
    parts = [data[i : i + split] for i in range(0, len(data), split)] or [b""]
    return b"".join([p async for p in seal_stream(key, pieces(parts), context, chunk_bytes=CHUNK)])


async def unseal(key: bytes, blob: bytes, context: bytes = b"doc-1", split: int = 500) -> bytes:
    parts = [blob[i : i + split] for i in range(0, len(blob), split)]
    return b"".join([p async for p in open_stream(key, pieces(parts), context)])


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 7])
async def test_round_trip_of_every_size_at_chunk_edges(size: int) -> None:
    key = new_data_key()
    data = os.urandom(size)
    blob = await seal(key, data)
    assert len(blob) == sealed_size(size, CHUNK)
    assert await unseal(key, blob) == data
    assert len(data) < 16 or data[:16] not in blob  # no plaintext run in the blob


class TestTamperingIsDetected:
    async def test_truncation_at_a_chunk_boundary(self) -> None:
        key = new_data_key()
        blob = await seal(key, os.urandom(3 * CHUNK + 10))
        cut = blob[: HEADER_BYTES + 2 * (CHUNK + TAG_BYTES)]
        with pytest.raises(EnvelopeError, match="truncated"):
            await unseal(key, cut)

    async def test_truncation_inside_a_chunk_and_of_the_header(self) -> None:
        key = new_data_key()
        blob = await seal(key, os.urandom(2 * CHUNK))
        for length in (len(blob) - 1, HEADER_BYTES + 5, 7):
            with pytest.raises(EnvelopeError):
                await unseal(key, blob[:length])

    async def test_a_chunk_appended_after_the_last(self) -> None:
        key = new_data_key()
        blob = await seal(key, os.urandom(CHUNK))
        with pytest.raises(EnvelopeError):
            await unseal(key, blob + blob[HEADER_BYTES:])

    async def test_reordered_chunks(self) -> None:
        key = new_data_key()
        blob = await seal(key, os.urandom(3 * CHUNK + 1))
        size = CHUNK + TAG_BYTES
        first, second = (
            blob[HEADER_BYTES + i * size : HEADER_BYTES + (i + 1) * size] for i in (0, 1)
        )
        swapped = blob[:HEADER_BYTES] + second + first + blob[HEADER_BYTES + 2 * size :]
        with pytest.raises(EnvelopeError, match="chunk 0"):
            await unseal(key, swapped)

    async def test_a_flipped_bit_another_key_or_another_context(self) -> None:
        key = new_data_key()
        blob = bytearray(await seal(key, os.urandom(2 * CHUNK)))
        blob[HEADER_BYTES + 3] ^= 1
        with pytest.raises(EnvelopeError):
            await unseal(key, bytes(blob))
        good = await seal(key, b"x" * 100)
        with pytest.raises(EnvelopeError):
            await unseal(new_data_key(), good)
        with pytest.raises(EnvelopeError):
            await unseal(key, good, context=b"doc-2")


class TestMasterKeys:
    def test_wrap_unwrap_and_rotation(self) -> None:
        old, new = os.urandom(32), os.urandom(32)
        data_key = new_data_key()
        wrapped = MasterKeys({"k1": old}, "k1").wrap(data_key, b"doc-1")
        assert wrapped.key_id == "k1" and data_key not in wrapped.wrapped
        rotated_keys = MasterKeys({"k1": old, "k2": new}, "k2")
        rewrapped = rotated_keys.rewrap(wrapped, b"doc-1")
        assert rewrapped.key_id == "k2"
        assert MasterKeys({"k2": new}, "k2").unwrap(rewrapped, b"doc-1") == data_key

    def test_unknown_key_id_or_other_context_is_refused(self) -> None:
        keys = MasterKeys({"k1": os.urandom(32)}, "k1")
        wrapped = keys.wrap(new_data_key(), b"doc-1")
        with pytest.raises(EnvelopeError, match="no master key"):
            keys.unwrap(WrappedKey("k9", wrapped.wrapped), b"doc-1")
        with pytest.raises(EnvelopeError):
            keys.unwrap(wrapped, b"doc-2")
        with pytest.raises(EnvelopeError):
            keys.unwrap(WrappedKey("k1", wrapped.wrapped[:-1]), b"doc-1")
