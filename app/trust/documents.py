"""Signed documents (status list, trust list) cached in the store, shared by every worker.

A document is rebuilt when the counter it depends on (`cards:version`, `trust:version`) moved
since it was signed, or when it is older than its TTL; otherwise every worker serves the
same bytes, so ETags agree across workers and signing happens once per change. The cache key
names the signing key (`signed_cache_key`): after a revocation no worker serves a document
signed by the revoked key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from app.runtime import Runtime
from app.store import Store
from token_service.keys import b64url


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """One document in both signed forms; `version` is the counter it was built at."""

    version: int
    issued_at: int
    cwt: bytes
    jwt: str

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "version": self.version,
                "iat": self.issued_at,
                "cwt": base64.b64encode(self.cwt).decode("ascii"),
                "jwt": self.jwt,
            }
        )

    @classmethod
    def decode(cls, raw: bytes | None) -> SignedDocument | None:
        """None for anything that is not an encoded document (a cache miss, not an error)."""
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            return cls(
                int(data["version"]),
                int(data["iat"]),
                base64.b64decode(data["cwt"], validate=True),
                str(data["jwt"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
            return None


def signed_cache_key(runtime: Runtime, key: str) -> str:
    """The cache key of a document signed by this worker's current signing key: a document
    signed by a key since revoked (or by the key before a rotation) is never served again."""
    return f"{key}:{b64url(runtime.keyring.signing_key.kid)}"


Signer = Callable[[int], Awaitable[tuple[bytes, str]]]
"""Builds and signs a document issued at the given unix time: (CWT bytes, JWT text)."""


async def current_version(store: Store, version_key: str) -> int:
    raw = await store.get(version_key)
    try:
        return 0 if raw is None else int(raw)
    except ValueError:
        return 0


async def cached_document(
    store: Store, key: str, version_key: str, *, ttl: int, now: float, sign: Signer
) -> SignedDocument:
    """The cached document if still current, else a freshly signed one (then cached).

    The version is read before the content is built: a change that lands while building
    leaves the cache one version behind, so the next request rebuilds again.
    """
    version = await current_version(store, version_key)
    cached = SignedDocument.decode(await store.get(key))
    if cached is not None and cached.version == version and 0 <= now - cached.issued_at < ttl:
        return cached
    # One build at a time per document in this process: the requests that arrive meanwhile
    # wait for it and take its result instead of building (and signing) the same again.
    async with _build_lock(store, key):
        version = await current_version(store, version_key)
        cached = SignedDocument.decode(await store.get(key))
        if cached is not None and cached.version == version and 0 <= now - cached.issued_at < ttl:
            return cached
        return await _build(store, key, version, ttl=ttl, now=now, sign=sign)


_locks: weakref.WeakKeyDictionary[Store, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _build_lock(store: Store, key: str) -> asyncio.Lock:
    return _locks.setdefault(store, {}).setdefault(key, asyncio.Lock())


async def _build(
    store: Store, key: str, version: int, *, ttl: int, now: float, sign: Signer
) -> SignedDocument:
    issued_at = int(now)
    cwt, jwt = await sign(issued_at)
    document = SignedDocument(version, issued_at, cwt, jwt)
    await store.set(key, document.encode(), ttl=2 * ttl)
    return document
