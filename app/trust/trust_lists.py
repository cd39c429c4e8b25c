"""The signed trust list we publish: ourselves and every registered issuer.

Its sequence number is its issue time (unix seconds), which only grows, so a verifier that
remembers the last sequence it saw refuses an older list replayed to it.
"""

from __future__ import annotations

import time

from app.runtime import Runtime
from app.trust.documents import SignedDocument, cached_document, signed_cache_key
from app.trust.issuers import TRUST_VERSION, trusted_issuers
from token_service import TrustList, sign_trust_list_cwt, sign_trust_list_jwt

CWT_MEDIA_TYPE = "application/trustlist+cwt"
JWT_MEDIA_TYPE = "application/trustlist+jwt"
_CACHE_KEY = "trust-list"


async def published_trust_list(runtime: Runtime, *, now: float | None = None) -> SignedDocument:
    """The signed trust list, current to the last registry change or the status list TTL."""
    settings = runtime.settings

    async def sign(issued_at: int) -> tuple[bytes, str]:
        async with runtime.database.session() as session:
            issuers = await trusted_issuers(session, runtime)
        trust_list = TrustList(
            sequence=issued_at,
            issued_at=issued_at,
            expires_at=issued_at + settings.bundle_max_age + settings.status_list_ttl,
            issuers=issuers,
        )
        return (
            sign_trust_list_cwt(trust_list, runtime.keyring),
            sign_trust_list_jwt(trust_list, runtime.keyring),
        )

    return await cached_document(
        runtime.store,
        signed_cache_key(runtime, _CACHE_KEY),
        TRUST_VERSION,
        ttl=settings.status_list_ttl,
        now=time.time() if now is None else now,
        sign=sign,
    )
