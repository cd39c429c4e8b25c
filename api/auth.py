"""Bearer authentication: each alias verifies the token for one principal kind and scope.

A token of another kind (a holder token at a scanner route) is rejected with 401, a token
without the scope with 403, so every route is deny-by-default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import RuntimeDep
from app.errors import Forbidden, Unauthorized
from app.security.principals import AdminPrincipal, HolderPrincipal, ScannerPrincipal, Scope
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
    tests read to prove every route denies every other principal."""

    kind: PrincipalKind
    scope: Scope
    build: Callable[[AccessClaims], P]

    def __call__(self, runtime: RuntimeDep, credentials: BearerDep) -> P:
        claims = _verified(runtime, credentials, self.kind, self.scope)
        try:
            return self.build(claims)
        except (KeyError, ValueError):
            raise Unauthorized("the access token lacks the claims of its kind") from None


CurrentHolder = Annotated[
    HolderPrincipal,
    Depends(RequirePrincipal(PrincipalKind.holder, Scope.holder_card, HolderPrincipal.from_claims)),
]
CurrentScanner = Annotated[
    ScannerPrincipal,
    Depends(
        RequirePrincipal(PrincipalKind.scanner, Scope.scanner_verify, ScannerPrincipal.from_claims)
    ),
]
CurrentAdmin = Annotated[
    AdminPrincipal,
    Depends(RequirePrincipal(PrincipalKind.admin, Scope.admin, AdminPrincipal.from_claims)),
]
