"""Bearer authentication: each alias verifies the token for one principal kind and scope.

A token of another kind (a holder token at a scanner route) is rejected with 401, a token
without the scope with 403, so every route is deny-by-default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

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


def _principal(
    kind: PrincipalKind, scope: Scope, build: Callable[[AccessClaims], P]
) -> Callable[[RuntimeDep, BearerDep], P]:
    def dependency(runtime: RuntimeDep, credentials: BearerDep) -> P:
        claims = _verified(runtime, credentials, kind, scope)
        try:
            return build(claims)
        except (KeyError, ValueError):
            raise Unauthorized("the access token lacks the claims of its kind") from None

    return dependency


CurrentHolder = Annotated[
    HolderPrincipal,
    Depends(_principal(PrincipalKind.holder, Scope.holder_card, HolderPrincipal.from_claims)),
]
CurrentScanner = Annotated[
    ScannerPrincipal,
    Depends(_principal(PrincipalKind.scanner, Scope.scanner_verify, ScannerPrincipal.from_claims)),
]
CurrentAdmin = Annotated[
    AdminPrincipal,
    Depends(_principal(PrincipalKind.admin, Scope.admin, AdminPrincipal.from_claims)),
]
