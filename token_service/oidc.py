"""OpenID Connect ID tokens: ES256 JWTs signed with the OIDC key ring (never the QR keys).

A small surface: `sign_id_token` (the header carries the kid of the ring's active key),
`verify_id_token` (our own tokens, e.g. an `id_token_hint`; an allow-list of one algorithm),
and `at_hash` / `s256_challenge` (OIDC Core 3.1.3.6, RFC 7636 4.2).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import jwt

from token_service.errors import TokenServiceError
from token_service.keys import KeyRing, b64url

__all__ = ["IdTokenError", "at_hash", "s256_challenge", "sign_id_token", "verify_id_token"]

ALGORITHM = "ES256"
MAX_TOKEN_CHARS = 8192


class IdTokenError(TokenServiceError, ValueError):
    """An ID token that is not ours, not well formed, or whose signature does not verify."""


def at_hash(access_token: str) -> str:
    """The left half of SHA-256 of the access token, base64url (ES256 uses SHA-256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


def s256_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_id_token(keyring: KeyRing, claims: Mapping[str, Any]) -> str:
    """The compact JWS of `claims`, signed by the ring's active key."""
    signing = keyring.signing_key
    return jwt.encode(
        dict(claims),
        signing.private_key,
        algorithm=ALGORITHM,
        headers={"kid": b64url(signing.kid), "typ": "JWT"},
    )


def verify_id_token(
    keyring: KeyRing, token: str, *, issuer: str, verify_expiry: bool = True
) -> dict[str, Any]:
    """The claims of an ID token we signed (any published key of the ring).

    :raises IdTokenError: anything else.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise IdTokenError("the ID token is too long")
    try:
        header = jwt.get_unverified_header(token)
        kid_text = header.get("kid")
        if not isinstance(kid_text, str):
            raise IdTokenError("the ID token names no key")
        kid = base64.urlsafe_b64decode(kid_text + "=" * (-len(kid_text) % 4))
        public_key = keyring.find(kid)
        if public_key is None:
            raise IdTokenError("the ID token's key is not ours")
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"verify_aud": False, "verify_exp": verify_expiry, "require": ["iss", "sub"]},
        )
    except (jwt.PyJWTError, ValueError) as error:
        if isinstance(error, IdTokenError):
            raise
        raise IdTokenError(f"the ID token is not valid: {error}") from None
    return claims
