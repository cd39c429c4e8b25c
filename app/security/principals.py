"""Who is calling: one typed principal per kind, built from a verified
access token. Scopes name what a route needs; deny by default.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from app.security.roles import DEFAULT_ROLE, REGION_CLAIM, ROLE_CLAIM, AdminRole, checked_role
from app.security.tokens import AccessClaims


class Scope(StrEnum):
    holder_card = "card"  # own card, QR tokens, lifecycle of own card
    scanner_verify = "verify"
    admin = "admin"
    channel = "channel"  # a channel app's client: ask holders to link
    channel_holder = "channel_card"  # a holder's session in a channel: the e-card inside it


SESSION_FAMILY_CLAIM = "fam"
"""The `ext` claim of a holder access token naming its session (refresh token) family."""


@dataclass(frozen=True, slots=True)
class HolderPrincipal:
    card_id: uuid.UUID
    device_pk: uuid.UUID
    scopes: frozenset[str]
    family: uuid.UUID | None = None
    """The session family of the token, so that revoking the family reaches it; None only in
    tokens issued before tokens carried it (they expire within `access_token_ttl`)."""

    @classmethod
    def from_claims(cls, claims: AccessClaims) -> HolderPrincipal:
        """:raises ValueError: when the claims lack the holder's card or device."""
        family = claims.extra.get(SESSION_FAMILY_CLAIM)
        return cls(
            uuid.UUID(claims.subject),
            uuid.UUID(claims.extra["device"]),
            claims.scopes,
            uuid.UUID(family) if family is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ScannerPrincipal:
    client_id: str
    organisation_id: uuid.UUID
    scenes: frozenset[str]
    scopes: frozenset[str]

    @classmethod
    def from_claims(cls, claims: AccessClaims) -> ScannerPrincipal:
        scenes = claims.extra.get("scenes", "")
        return cls(
            claims.subject,
            uuid.UUID(claims.extra["org"]),
            frozenset(scene for scene in scenes.split(",") if scene),
            claims.scopes,
        )


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    client_id: str
    scopes: frozenset[str]
    role: AdminRole = DEFAULT_ROLE
    region: str | None = None
    """The city of a city administrator (`app.security.roles`); None for every other role."""

    @classmethod
    def from_claims(cls, claims: AccessClaims) -> AdminPrincipal:
        """A token without a role is a provincial administrator's (issued before roles).

        :raises ValueError: for an unknown role, or a region that does not fit the role.
        """
        role, region = checked_role(claims.extra.get(ROLE_CLAIM), claims.extra.get(REGION_CLAIM))
        return cls(claims.subject, claims.scopes, role, region)
