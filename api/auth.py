"""Bearer authentication: each alias verifies the token for one principal kind and scope.

A token of another kind (a holder token at a scanner route) is rejected with 401, a token
without the scope with 403, so every route is deny-by-default.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import RuntimeDep
from app.channels.service import (
    ChannelHolderPrincipal,
    ChannelPrincipal,
    ensure_channel_session_live,
)
from app.config import Environment, Settings
from app.departments.service import ensure_issuer_live
from app.errors import Forbidden, NotFound, Unauthorized
from app.holders.sessions import ensure_session_live
from app.runtime import Runtime
from app.security.principals import (
    AdminPrincipal,
    ClientPrincipal,
    DepartmentPrincipal,
    HolderPrincipal,
    ScannerPrincipal,
    Scope,
)
from app.security.roles import AdminDuty, admin_may
from app.security.tokens import AccessClaims, PrincipalKind

bearer = HTTPBearer(auto_error=False, description="Access token from /v1/oauth/token or login")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

P = TypeVar("P")


def _verified(
    runtime: RuntimeDep, credentials: BearerDep, kind: PrincipalKind, scope: Scope
) -> AccessClaims:
    if credentials is None:
        raise Unauthorized("a bearer access token is required")
    claims = runtime.access_tokens.decode(credentials.credentials, kind)
    if scope.value not in claims.scopes:
        raise Forbidden(f"this operation needs the {scope.value!r} scope")
    return claims


@dataclass(frozen=True, slots=True)
class RequirePrincipal(Generic[P]):
    """The dependency behind each alias; `kind` and `scope` say what the route demands, which
    tests read to prove every route denies every other principal. `live`, when given, checks
    that the principal's session was not revoked since its token was issued."""

    kind: PrincipalKind
    scope: Scope
    build: Callable[[AccessClaims], P]
    live: Callable[[Runtime, P], Awaitable[None]] | None = None
    duty: AdminDuty | None = None
    """For an administrator: the duty of the route family, which names the roles allowed
    (`app.security.roles.admin_may`); an administrator's route without one allows no role."""

    async def __call__(self, request: Request, runtime: RuntimeDep, credentials: BearerDep) -> P:
        claims = _verified(runtime, credentials, self.kind, self.scope)
        try:
            principal = self.build(claims)
        except (KeyError, ValueError):
            raise Unauthorized("the access token lacks the claims of its kind") from None
        if isinstance(principal, AdminPrincipal) and (
            self.duty is None or not admin_may(principal.role, self.duty, request.method)
        ):
            raise Forbidden(f"the {principal.role.value} role may not do this")
        if self.live is not None:
            await self.live(runtime, principal)
        return principal


def _admin(duty: AdminDuty) -> RequirePrincipal[AdminPrincipal]:
    return RequirePrincipal(PrincipalKind.admin, Scope.admin, AdminPrincipal.from_claims, duty=duty)


CurrentHolder = Annotated[
    HolderPrincipal,
    Depends(
        RequirePrincipal(
            PrincipalKind.holder,
            Scope.holder_card,
            HolderPrincipal.from_claims,
            ensure_session_live,
        )
    ),
]
QrHolder = Annotated[
    HolderPrincipal,
    Depends(RequirePrincipal(PrincipalKind.holder, Scope.holder_card, HolderPrincipal.from_claims)),
]
"""The holder on the QR routes: the session's revocation mark is read with the binding and the
card state in one store round trip (`app.holders.qr_state.qr_card`), not here."""
CurrentScanner = Annotated[
    ScannerPrincipal,
    Depends(
        RequirePrincipal(PrincipalKind.scanner, Scope.scanner_verify, ScannerPrincipal.from_claims)
    ),
]
CurrentIssuer = Annotated[
    DepartmentPrincipal,
    Depends(
        RequirePrincipal(
            PrincipalKind.department,
            Scope.issuer_push,
            DepartmentPrincipal.from_claims,
            ensure_issuer_live,
        )
    ),
]
"""An issuer's client (department, training institution, employer) pushing signed documents;
each type needs `issue:<type>` too, checked with the issuer's registry entry
(`app.departments.service.require_issuable`)."""
ConsentingIssuer = Annotated[
    DepartmentPrincipal,
    Depends(
        RequirePrincipal(
            PrincipalKind.department,
            Scope.issuer_consent,
            DepartmentPrincipal.from_claims,
            ensure_issuer_live,
        )
    ),
]
"""An issuer's client asking holders for consent and reading what they approved."""
CurrentChannel = Annotated[
    ChannelPrincipal,
    Depends(RequirePrincipal(PrincipalKind.channel, Scope.channel, ChannelPrincipal.from_claims)),
]
"""A channel app's own client (client credentials): asks holders to link it."""
CurrentChannelHolder = Annotated[
    ChannelHolderPrincipal,
    Depends(
        RequirePrincipal(
            PrincipalKind.channel_holder,
            Scope.channel_holder,
            ChannelHolderPrincipal.from_claims,
            ensure_channel_session_live,
        )
    ),
]
"""A holder's session inside a channel app: refused on every worker once unlinked."""
CurrentBank = Annotated[
    ClientPrincipal,
    Depends(RequirePrincipal(PrincipalKind.bank, Scope.bank, ClientPrincipal.from_claims)),
]
"""A cooperating bank's API client: confirms the accounts holders bind to it."""
CurrentPayer = Annotated[
    ClientPrincipal,
    Depends(RequirePrincipal(PrincipalKind.payer, Scope.disburse, ClientPrincipal.from_claims)),
]
"""A paying department's API client: submits disbursements."""
# The administrative route families (roles per duty: `app.security.roles.DUTY_ROLES`; an
# auditor reads, GET, every one of them and writes none).
CurrentAdmin = Annotated[AdminPrincipal, Depends(_admin(AdminDuty.administer))]
"""The provincial administrator's routes (and the auditor's reads of them)."""
CardCounterAdmin = Annotated[AdminPrincipal, Depends(_admin(AdminDuty.card_counter))]
"""Card lifecycle at the service-hall counter and application review: also the operator."""
RegionalAdmin = Annotated[AdminPrincipal, Depends(_admin(AdminDuty.regional))]
"""Per-region duties (complaints, city catalog supplements): also a city administrator, for
its own city only, which the route checks with `app.security.roles.require_region`."""


async def require_metrics_access(request: Request) -> None:
    """Who may read `/metrics`, one rule:

    - `SSC_METRICS_PORT` set: metrics are served only on that listener (`ssc serve` binds it
      on `SSC_METRICS_HOST`, default 127.0.0.1), with the token when `SSC_METRICS_TOKEN` is
      set too; on the API's listener `/metrics` answers 404.
    - otherwise `SSC_METRICS_TOKEN` set: `Authorization: Bearer <token>` is required (401).
    - otherwise: served in development and test; refused (404) in production, where
      metrics need a token or a listener of their own.

    The token is read from the header directly, not through a security scheme: whether it is
    needed depends on the deployment, and the OpenAPI document must not claim it always is.
    """
    settings: Settings = request.app.state.settings
    if settings.metrics_port is not None:
        server = request.scope.get("server")
        if server is None or server[1] != settings.metrics_port:
            raise NotFound("metrics are served on the metrics listener only")
    elif settings.metrics_token is None and settings.environment is Environment.production:
        raise NotFound("metrics need SSC_METRICS_TOKEN or SSC_METRICS_PORT in production")
    if settings.metrics_token is None:
        return
    expected = settings.metrics_token.get_secret_value().encode()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    presented = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(presented, expected):
        raise Unauthorized("the metrics bearer token is required")


MetricsAccess = Annotated[None, Depends(require_metrics_access)]
