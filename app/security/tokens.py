"""Short-lived access tokens (JWT, HS256) for every kind of principal.

Each principal kind has its own key, derived from one secret with HKDF (info = the kind), and its
own audience, so a holder token can never be accepted where a scanner token is required, even if
a route forgets to check the kind. Tokens are verified only by this service, so a symmetric
algorithm is enough; the QR tokens, which third parties verify, are a different thing
(`token_service`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.security.errors import InvalidAccessToken, TokenRejection

ALGORITHM = "HS256"
ACCESS_JWT_TYP = "at+jwt"  # RFC 9068: keeps access tokens apart from any other JWT we may sign
SECRET_MIN_BYTES = 32
MAX_TOKEN_CHARS = 4096
_KEY_INFO_PREFIX = b"ssc/access-token/v1/"
_REQUIRED_CLAIMS = ("iss", "sub", "aud", "kind", "scopes", "iat", "exp", "jti")


class PrincipalKind(StrEnum):
    """Who a token speaks for; also its audience and the HKDF info of its key."""

    holder = "holder"
    scanner = "scanner"
    admin = "admin"
    department = "department"
    relying_party = "relying_party"
    channel = "channel"  # a channel app's own client (app.channels)
    channel_holder = "channel_holder"  # a holder's session inside one channel app
    bank = "bank"  # a cooperating bank's API client (app.banks)
    payer = "payer"  # a paying department's API client (app.payments)


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    expires_at: datetime
    jti: str


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified content of an access token; `extra` holds e.g. a device or organisation id."""

    subject: str
    kind: PrincipalKind
    scopes: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    jti: str
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _derive_key(secret: bytes, kind: PrincipalKind) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO_PREFIX + kind.encode()
    )
    return hkdf.derive(secret)


class AccessTokenCodec:
    """Issues and verifies access tokens; `decode` either returns claims or raises
    `InvalidAccessToken`, whatever the input."""

    __slots__ = ("_clock", "_issuer", "_keys", "_leeway", "_verified")

    VERIFIED_CACHE_SIZE = 65536
    """Tokens whose signature and claims `decode` already checked, per codec (one per worker).
    A phone presents the same access token every 30 s for the QR; pyjwt's checks cost more
    than the QR's signature. A hit still checks the kind and the lifetime on this clock;
    revocation is checked by the caller on every request either way."""

    def __init__(
        self,
        secret: bytes,
        issuer: str,
        clock: Callable[[], float] = time.time,
        *,
        leeway: timedelta | float = 5.0,
    ) -> None:
        if len(secret) < SECRET_MIN_BYTES:
            raise ValueError(f"the access-token secret must be at least {SECRET_MIN_BYTES} bytes")
        if not issuer:
            raise ValueError("an issuer is required")
        self._keys = {kind: _derive_key(secret, kind) for kind in PrincipalKind}
        self._issuer = issuer
        self._clock = clock
        self._leeway = _seconds(leeway)
        self._verified: dict[tuple[str, PrincipalKind], AccessClaims] = {}

    def issue(
        self,
        kind: PrincipalKind,
        subject: str,
        scopes: Iterable[str],
        ttl: timedelta | int,
        extra: Mapping[str, str] | None = None,
    ) -> IssuedAccessToken:
        """Signs a token for `subject` valid for `ttl` (a timedelta or whole seconds)."""
        lifetime = int(_seconds(ttl))
        if lifetime <= 0:
            raise ValueError("ttl must be at least one second")
        if not subject:
            raise ValueError("a subject is required")
        issued_at = int(self._clock())
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": kind.value,
            "kind": kind.value,
            "scopes": sorted(set(scopes)),
            "iat": issued_at,
            "exp": issued_at + lifetime,
            "jti": jti,
        }
        if extra:
            claims["ext"] = dict(extra)
        token = jwt.encode(
            claims, self._keys[kind], algorithm=ALGORITHM, headers={"typ": ACCESS_JWT_TYP}
        )
        return IssuedAccessToken(token, datetime.fromtimestamp(issued_at + lifetime, UTC), jti)

    def decode(self, token: str, expected_kind: PrincipalKind) -> AccessClaims:
        """Verifies signature, kind, issuer, claims and lifetime in one call.

        :raises InvalidAccessToken: for every failure, with the reason.
        """
        if not isinstance(token, str):
            raise InvalidAccessToken(TokenRejection.malformed)
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidAccessToken(TokenRejection.too_large)
        known = self._verified.get((token, expected_kind))
        if known is not None:
            self._check_lifetime(known)
            return known
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidAccessToken(TokenRejection.malformed) from None
        if header.get("alg") != ALGORITHM:
            raise InvalidAccessToken(TokenRejection.algorithm_not_allowed)
        if header.get("typ") != ACCESS_JWT_TYP:
            raise InvalidAccessToken(TokenRejection.malformed, "not an access token")
        payload = self._verified_payload(token, expected_kind)
        claims = _claims_from(payload, expected_kind)
        self._check_lifetime(claims)
        if len(self._verified) >= self.VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[(token, expected_kind)] = claims
        return claims

    def _check_lifetime(self, claims: AccessClaims) -> None:
        now = self._clock()
        if claims.expires_at.timestamp() <= now - self._leeway:
            raise InvalidAccessToken(TokenRejection.expired)
        if claims.issued_at.timestamp() > now + self._leeway:
            raise InvalidAccessToken(TokenRejection.not_yet_valid)

    def _verified_payload(self, token: str, expected_kind: PrincipalKind) -> dict[str, Any]:
        """Signature, audience, issuer and presence of claims (lifetime is checked on our clock)."""
        try:
            return jwt.decode(
                token,
                self._keys[expected_kind],
                algorithms=[ALGORITHM],
                audience=expected_kind.value,
                issuer=self._issuer,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": list(_REQUIRED_CLAIMS),
                },
            )
        except jwt.InvalidSignatureError:
            reason = (
                TokenRejection.wrong_kind
                if self._signed_for_other_kind(token, expected_kind)
                else TokenRejection.bad_signature
            )
            raise InvalidAccessToken(reason) from None
        except jwt.InvalidAudienceError:
            raise InvalidAccessToken(TokenRejection.wrong_kind) from None
        except jwt.InvalidIssuerError:
            raise InvalidAccessToken(TokenRejection.wrong_issuer) from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidAccessToken(
                TokenRejection.missing_claim, f"access token lacks the {error.claim!r} claim"
            ) from None
        except jwt.InvalidAlgorithmError:
            raise InvalidAccessToken(TokenRejection.algorithm_not_allowed) from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidAccessToken(TokenRejection.malformed) from None

    def _signed_for_other_kind(self, token: str, expected_kind: PrincipalKind) -> bool:
        """Tells a genuine token of another kind from a forgery, for an accurate reason."""
        for kind, key in self._keys.items():
            if kind is expected_kind:
                continue
            try:
                jwt.api_jws.decode(token, key, algorithms=[ALGORITHM])
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
            return True
        return False


def _claims_from(payload: dict[str, Any], expected_kind: PrincipalKind) -> AccessClaims:
    """Checks the shape of each claim; PyJWT only checked presence, audience and issuer."""
    subject, kind, scopes = payload["sub"], payload["kind"], payload["scopes"]
    issued_at, expires_at, jti = payload["iat"], payload["exp"], payload["jti"]
    extra = payload.get("ext", {})
    if kind != expected_kind.value:
        raise InvalidAccessToken(TokenRejection.wrong_kind)
    well_formed = (
        isinstance(subject, str)
        and subject != ""
        and isinstance(scopes, list)
        and all(isinstance(scope, str) for scope in scopes)
        and _is_timestamp(issued_at)
        and _is_timestamp(expires_at)
        and isinstance(jti, str)
        and jti != ""
        and isinstance(extra, dict)
        and all(isinstance(value, str) for value in extra.values())
    )
    if not well_formed:
        raise InvalidAccessToken(TokenRejection.malformed, "access token claims are malformed")
    return AccessClaims(
        subject=subject,
        kind=expected_kind,
        scopes=frozenset(scopes),
        issued_at=datetime.fromtimestamp(issued_at, UTC),
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        jti=jti,
        extra=MappingProxyType(dict(extra)),
    )


_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the last second `datetime` can hold


def _is_timestamp(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_TIMESTAMP
