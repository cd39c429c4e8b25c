"""Short-lived protocol state in the store (shared by every worker), as JSON with an expiry:
pending authorization requests, browser login sessions, authorization codes, access tokens,
device codes. Secrets (codes, tokens, cookies) are keyed by an HMAC, never stored raw."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from app.runtime import Runtime
from app.security.opaque import MAX_SECRET_CHARS, hash_opaque_secret

clock: Callable[[], float] = time.time
"""The provider's clock for the expiries it checks itself (codes, device codes)."""


def now() -> int:
    return int(clock())


def secret_key(runtime: Runtime, kind: str, raw: str) -> str | None:
    """The store key of a secret of `kind`; None for absurd input (nothing to look up)."""
    if not raw or len(raw) > MAX_SECRET_CHARS:
        return None
    return f"oidc:{kind}:{hash_opaque_secret(raw, runtime.secret_hash_key)}"


async def put(runtime: Runtime, key: str, value: dict[str, Any], ttl: float) -> None:
    await runtime.store.set(key, orjson.dumps(value), max(ttl, 1.0))


async def get(runtime: Runtime, key: str | None) -> dict[str, Any] | None:
    if key is None:
        return None
    raw = await runtime.store.get(key)
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def family_revoked_key(family: str) -> str:
    return f"oidc:family-revoked:{family}"


async def mark_family_revoked(runtime: Runtime, family: uuid.UUID | str) -> None:
    """Refuses the family's access tokens on every worker until they have expired."""
    ttl = runtime.settings.oidc_access_token_ttl + 60
    await runtime.store.set(family_revoked_key(str(family)), b"1", ttl)


async def family_is_revoked(runtime: Runtime, family: str) -> bool:
    return await runtime.store.get(family_revoked_key(family)) is not None
