"""Opaque secrets: refresh tokens, client secrets, one-time codes.

The raw value is returned once to its owner; the database keeps only an HMAC of it under a
server key, so a leaked table yields nothing that can be presented. A prefix (`rt_`, `cs_`)
tells people and secret scanners what a leaked string is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

SECRET_BYTES = 32
KEY_MIN_BYTES = 32
MAX_SECRET_CHARS = 256
_PREFIX_SHAPE = re.compile(r"[a-z][a-z0-9]{0,7}_")


def new_opaque_secret(prefix: str) -> str:
    """`prefix` + 32 random bytes in unpadded base64url, e.g. `rt_Q2hh...` (46 characters)."""
    if not _PREFIX_SHAPE.fullmatch(prefix):
        raise ValueError("prefix must be 1-8 lower-case letters or digits followed by '_'")
    random_part = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=")
    return prefix + random_part.decode("ascii")


def hash_opaque_secret(secret: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of the secret, the value to store and to look the secret up by."""
    if len(key) < KEY_MIN_BYTES:
        raise ValueError(f"the opaque-secret key must be at least {KEY_MIN_BYTES} bytes")
    return hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def constant_time_equals(left: str, right: str) -> bool:
    """Equality whose time does not depend on where the strings differ; any text is accepted
    (`hmac.compare_digest` itself refuses non-ASCII `str`)."""
    return hmac.compare_digest(
        left.encode("utf-8", "surrogatepass"), right.encode("utf-8", "surrogatepass")
    )


def opaque_secret_matches(secret: str, key: bytes, stored_hash: str) -> bool:
    """True when `secret` hashes to `stored_hash`; absurdly long input is refused unhashed."""
    if len(secret) > MAX_SECRET_CHARS:
        return False
    return constant_time_equals(hash_opaque_secret(secret, key), stored_hash)


def form_token(key: bytes, purpose: str, *bound_to: str) -> str:
    """The token a server-rendered form carries against cross-site request forgery: a keyed
    hash of what it is bound to (the browser's cookie, its session or pending request), so a
    token from another browser, session or purpose is refused and nothing need be stored."""
    return hash_opaque_secret("|".join((purpose, *bound_to)), key)


def form_token_matches(presented: str | None, key: bytes, purpose: str, *bound_to: str) -> bool:
    if not presented or len(presented) > MAX_SECRET_CHARS:
        return False
    return constant_time_equals(presented, form_token(key, purpose, *bound_to))
