"""Envelope encryption for stored files: a fresh data key per file, wrapped by a master key.

A file is sealed as a *stream* so that neither sealing nor opening holds the whole file in
memory (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár, 2015):

    blob   = header || chunk_0 || chunk_1 || ... || chunk_n
    header = MAGIC (4) || version (1) || chunk size (4, big-endian) || nonce prefix (7)
    chunk  = AES-256-GCM(data key, nonce = prefix || index (4, big-endian) || last (1),
                         plaintext of `chunk size` bytes (the last: 0..chunk size),
                         associated data = header || context)

Every chunk is authenticated on its own, its nonce names its position (so chunks cannot be
reordered or dropped from the middle) and whether it is the last (so a blob cut at a chunk
boundary, or with chunks appended, fails to open). An empty file is one empty last chunk.
`context` (e.g. the document id) binds the blob to its metadata row: a blob copied onto
another row fails to open.

The data key is wrapped (AES-256-GCM, random nonce, associated data = context) by a master
key named by a key id, which is stored beside the wrapped key; rotating the master key means
rewrapping the 60-byte wrapped keys, never re-encrypting the files.

A reader gets the plaintext chunk by chunk as each is authenticated; an error raised at the
end (truncation) arrives after earlier chunks were handed out, so a caller streaming them on
must abort its own output (an HTTP response is then cut short, never completed).
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterable, AsyncIterator, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from token_service.errors import TokenServiceError

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "HEADER_BYTES",
    "TAG_BYTES",
    "EnvelopeError",
    "MasterKeys",
    "WrappedKey",
    "new_data_key",
    "open_stream",
    "seal_stream",
    "sealed_size",
]

MAGIC = b"SSCE"
VERSION = 1
HEADER_BYTES = 16
TAG_BYTES = 16
KEY_BYTES = 32
NONCE_PREFIX_BYTES = 7
DEFAULT_CHUNK_BYTES = 64 * 1024
MIN_CHUNK_BYTES = 1024
MAX_CHUNK_BYTES = 4 * 1024 * 1024
_WRAP_NONCE_BYTES = 12
_WRAP_AAD = b"ssc/vault/data-key/v1\x00"
_HEADER = struct.Struct(">4sBI7s")


class EnvelopeError(TokenServiceError, ValueError):
    """A sealed blob or wrapped key is malformed, truncated, tampered with or for another
    context, or names an unknown master key."""

    code = "envelope"


def new_data_key() -> bytes:
    """A fresh random AES-256 key for one file."""
    return os.urandom(KEY_BYTES)


class WrappedKey:
    """A data key wrapped by the master key `key_id`: nonce (12) || ciphertext with tag (48)."""

    __slots__ = ("key_id", "wrapped")

    def __init__(self, key_id: str, wrapped: bytes) -> None:
        self.key_id = key_id
        self.wrapped = wrapped


class MasterKeys:
    """The master keys by key id; `active` wraps new data keys, every key unwraps.

    :param keys: key id -> 32-byte key.
    :param active: the key id new data keys are wrapped with.
    """

    __slots__ = ("_active", "_keys")

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise EnvelopeError(f"the active master key {active!r} is not among the keys")
        for key_id, key in keys.items():
            if not key_id or len(key_id) > 32:
                raise EnvelopeError("a master key id has 1 to 32 characters")
            if len(key) != KEY_BYTES:
                raise EnvelopeError(f"master key {key_id!r} must be {KEY_BYTES} bytes")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active

    @property
    def active(self) -> str:
        return self._active

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        """Wraps `data_key` under the active master key, bound to `context`."""
        nonce = os.urandom(_WRAP_NONCE_BYTES)
        aad = _WRAP_AAD + self._active.encode() + b"\x00" + context
        sealed = self._keys[self._active].encrypt(nonce, data_key, aad)
        return WrappedKey(self._active, nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """:raises EnvelopeError: unknown key id, or a wrapped key that fails to open."""
        aead = self._keys.get(wrapped.key_id)
        if aead is None:
            raise EnvelopeError(f"no master key {wrapped.key_id!r} to unwrap the data key")
        blob = wrapped.wrapped
        if len(blob) != _WRAP_NONCE_BYTES + KEY_BYTES + TAG_BYTES:
            raise EnvelopeError("a wrapped data key has the wrong length")
        aad = _WRAP_AAD + wrapped.key_id.encode() + b"\x00" + context
        try:
            return aead.decrypt(blob[:_WRAP_NONCE_BYTES], blob[_WRAP_NONCE_BYTES:], aad)
        except InvalidTag:
            raise EnvelopeError("the wrapped data key failed authentication") from None

    def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        """The same data key wrapped under the active master key (rotation)."""
        return self.wrap(self.unwrap(wrapped, context), context)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 1 << 32:
        raise EnvelopeError("a sealed blob has at most 2**32 chunks")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def sealed_size(plaintext_bytes: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """The size of the blob that `seal_stream` makes of `plaintext_bytes` bytes."""
    chunks = max(1, -(-plaintext_bytes // chunk_bytes))
    return HEADER_BYTES + plaintext_bytes + chunks * TAG_BYTES


async def seal_stream(
    data_key: bytes,
    plaintext: AsyncIterable[bytes],
    context: bytes,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> AsyncIterator[bytes]:
    """Yields the sealed blob of `plaintext` (pieces of any size) piece by piece; at most
    about two chunks are held at a time."""
    if not MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise EnvelopeError(f"chunk size must be {MIN_CHUNK_BYTES}..{MAX_CHUNK_BYTES} bytes")
    aead = AESGCM(data_key)
    prefix = os.urandom(NONCE_PREFIX_BYTES)
    header = _HEADER.pack(MAGIC, VERSION, chunk_bytes, prefix)
    aad = header + context
    yield header
    buffer = bytearray()
    index = 0
    async for piece in plaintext:
        buffer += piece
        # Strictly more than a chunk: only then is it known that this chunk is not the last.
        while len(buffer) > chunk_bytes:
            chunk = bytes(buffer[:chunk_bytes])
            del buffer[:chunk_bytes]
            yield aead.encrypt(_nonce(prefix, index, False), chunk, aad)
            index += 1
    yield aead.encrypt(_nonce(prefix, index, True), bytes(buffer), aad)


async def open_stream(
    data_key: bytes, sealed: AsyncIterable[bytes], context: bytes
) -> AsyncIterator[bytes]:
    """Yields the plaintext of a blob `seal_stream` made, one authenticated chunk at a time.

    :raises EnvelopeError: a bad header, a chunk that fails authentication (tampered, another
        key or context, reordered), or a blob that ends without its last chunk (truncated) or
        goes on after it.
    """
    aead = AESGCM(data_key)
    buffer = bytearray()
    header: bytes | None = None
    aad = b""
    prefix = b""
    sealed_chunk = 0
    index = 0
    async for piece in sealed:
        buffer += piece
        if header is None:
            if len(buffer) < HEADER_BYTES:
                continue
            header = bytes(buffer[:HEADER_BYTES])
            del buffer[:HEADER_BYTES]
            magic, version, chunk_bytes, prefix = _HEADER.unpack(header)
            if magic != MAGIC or version != VERSION:
                raise EnvelopeError("not a sealed blob of a known version")
            if not MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES:
                raise EnvelopeError("the sealed blob names an impossible chunk size")
            sealed_chunk = chunk_bytes + TAG_BYTES
            aad = header + context
        while len(buffer) > sealed_chunk:
            chunk = bytes(buffer[:sealed_chunk])
            del buffer[:sealed_chunk]
            yield _open_chunk(aead, prefix, index, False, chunk, aad=aad)
            index += 1
    if header is None:
        raise EnvelopeError("the sealed blob is shorter than its header")
    yield _open_chunk(aead, prefix, index, True, bytes(buffer), aad=aad)


def _open_chunk(
    aead: AESGCM, prefix: bytes, index: int, last: bool, chunk: bytes, *, aad: bytes
) -> bytes:
    if len(chunk) < TAG_BYTES:
        raise EnvelopeError("the sealed blob is truncated")
    try:
        return aead.decrypt(_nonce(prefix, index, last), chunk, aad)
    except InvalidTag:
        if last:
            raise EnvelopeError(
                "the sealed blob is truncated, extended or tampered with (last chunk)"
            ) from None
        raise EnvelopeError(f"chunk {index} of the sealed blob failed authentication") from None
