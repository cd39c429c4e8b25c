"""Deny by default: every route declares the principal it needs, and every
other principal, or none, is refused with 401/403 before the route does anything.

The walk reads the routes from the application itself, so a new route is covered the day it
is added; a route without a principal must be on the explicit public list below.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.auth import RequirePrincipal
from app.security.tokens import AccessTokenCodec, PrincipalKind

PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/cose-keys"),
    ("POST", "/v1/applications"),
    ("POST", "/v1/ecard/activate"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/pin-reset"),
    ("POST", "/v1/oauth/token"),
    ("GET", "/v1/status-lists/{issuer}"),
    ("GET", "/v1/trust-list"),
    ("GET", "/v1/catalog"),
    ("GET", "/v1/catalog/versions/{number}"),
}

# The verify hot path authenticates in its own ASGI fast path (api/routes/verify.py, with a
# cache of decoded scanner tokens) instead of a FastAPI dependency; it demands a scanner.
FAST_PATH_ROUTES = {
    ("POST", "/v1/verify"): PrincipalKind.scanner,
    ("POST", "/v1/verify/batch"): PrincipalKind.scanner,
}


def required_principal(dependant: Dependant) -> RequirePrincipal[object] | None:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, RequirePrincipal):
            return dependency.call
        found = required_principal(dependency)
        if found is not None:
            return found
    return None


def api_routes(
    routes: Iterable[BaseRoute],
) -> Iterator[tuple[str, str, RequirePrincipal[object] | None]]:
    """Every operation with what it requires. Routers are included without prefixes, so a
    route's own path is the path served (FastAPI wraps included routers; we recurse into them)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods):
                yield method, route.path, required_principal(route.dependant)


def tokens(app: FastAPI) -> dict[str, str | None]:
    codec = app.state.runtime.access_tokens
    return {
        "anonymous": None,
        PrincipalKind.holder.value: codec.issue(
            PrincipalKind.holder,
            str(uuid.uuid4()),
            ["card"],
            600,
            extra={"device": str(uuid.uuid4())},
        ).token,
        PrincipalKind.scanner.value: codec.issue(
            PrincipalKind.scanner,
            "scn_walk",
            ["verify"],
            600,
            extra={"org": str(uuid.uuid4()), "scenes": "hospital"},
        ).token,
        PrincipalKind.admin.value: codec.issue(
            PrincipalKind.admin, "adm_walk", ["admin"], 600
        ).token,
    }


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


class TestEveryRouteIsDenyByDefault:
    async def test_routes_without_a_principal_are_exactly_the_public_ones(
        self, app: FastAPI
    ) -> None:
        public = {(method, path) for method, path, needs in api_routes(app.routes) if needs is None}
        assert public == PUBLIC_ROUTES | set(FAST_PATH_ROUTES)

    async def test_every_other_principal_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        bearer = tokens(app)
        checked = 0
        for method, path, needs in api_routes(app.routes):
            required = FAST_PATH_ROUTES.get((method, path)) or (needs and needs.kind)
            if required is None:
                continue
            for kind, token in bearer.items():
                if kind == required.value:
                    continue
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                response = await client.request(method, concrete(path), headers=headers, json={})
                assert response.status_code in (401, 403), (method, path, kind, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                checked += 1
        assert checked >= 3 * 20

    async def test_a_token_without_the_scope_is_forbidden(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        codec = app.state.runtime.access_tokens
        unscoped = codec.issue(
            PrincipalKind.scanner,
            "scn_walk",
            [],
            600,
            extra={"org": str(uuid.uuid4()), "scenes": "hospital"},
        ).token
        response = await client.post(
            "/v1/verify", json={"token": "SSC1:X"}, headers={"Authorization": f"Bearer {unscoped}"}
        )
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("holder", "/v1/me/card"),
        ("scanner", "/v1/scanner/bundle"),
        ("admin", "/v1/admin/misuse/alerts"),
    ],
)
async def test_an_expired_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, kind: str, path: str
) -> None:
    settings = app.state.runtime.settings
    an_hour_ago = AccessTokenCodec(
        settings.secret("token_secret"), f"ssc:{settings.issuer}", clock=lambda: time.time() - 3600
    )
    expired = an_hour_ago.issue(
        PrincipalKind(kind),
        "someone",
        ["card", "verify", "admin"],
        600,
        extra={"device": str(uuid.uuid4()), "org": str(uuid.uuid4())},
    ).token
    response = await client.get(path, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["reason"] == "expired"
