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
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.auth import RequirePrincipal
from api.h5 import pages
from app.security.roles import AdminRole
from app.security.tokens import AccessTokenCodec, PrincipalKind
from tests.api.test_banks_payments import create_bank, create_payer
from tests.api.test_channels import link, register_channel
from tests.api.test_oidc import log_in, register
from tests.departments import create_department
from tests.factories import (
    CITY,
    admin_headers,
    create_active_holder,
    create_scanner,
    role_headers,
)

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
    ("POST", "/v1/complaints"),  # anyone may complain (with a contact), rate-limited
    ("GET", "/v1/complaints/{tracking_number}"),  # the tracking number is the capability
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/oidc/jwks.json"),
    ("GET", "/v1/shares/{share_id}"),  # a vault share: its secret id is the capability
}

# The OpenID Connect protocol endpoints speak OAuth (form bodies, OAuth error JSON, HTML pages)
# and are left out of the OpenAPI document; their clients authenticate in the request
# (client credentials, PKCE, a bearer access token of the provider's own), tested in
# tests/api/test_oidc.py. Any other route hidden from the document fails the walk below.
OIDC_PROTOCOL_ROUTES = {
    ("GET", "/oidc/authorize"),
    ("POST", "/oidc/authorize"),
    ("GET", "/oidc/authorize/phone"),
    ("POST", "/oidc/token"),
    ("GET", "/oidc/userinfo"),
    ("POST", "/oidc/userinfo"),
    ("POST", "/oidc/revoke"),
    ("POST", "/oidc/introspect"),
    ("POST", "/oidc/device_authorization"),
    ("POST", "/oidc/kiosk_authorization"),
    ("GET", "/oidc/device"),
    ("GET", "/oidc/logout"),
    ("POST", "/oidc/logout"),
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
            for method in sorted(route.methods or ()):
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
        PrincipalKind.department.value: codec.issue(
            PrincipalKind.department,
            "dep_walk",
            ["issue", "consent", "issue:driving_licence"],
            600,
            extra={"issuer": str(uuid.uuid4())},
        ).token,
        PrincipalKind.channel.value: codec.issue(
            PrincipalKind.channel, "chn_walk", ["channel"], 600
        ).token,
        PrincipalKind.channel_holder.value: codec.issue(
            PrincipalKind.channel_holder,
            str(uuid.uuid4()),
            ["channel_card"],
            600,
            extra={"chn": "chn_walk", "lnk": str(uuid.uuid4()), "fam": str(uuid.uuid4())},
        ).token,
    }


@dataclass(frozen=True)
class Principals:
    """A bearer token of every principal kind (and none), and the credentials of the clients
    that authenticate themselves: API clients at /v1/oauth/token, a relying party at the
    OpenID Connect endpoints."""

    bearer: dict[str, str | None]
    api_clients: dict[str, tuple[str, str]]
    relying_party: tuple[str, str]


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
async def principals(app: FastAPI, client: httpx.AsyncClient) -> Principals:
    """Real principals where the service registers them: a holder (applied, approved,
    activated), a scanner, an issuer, a cooperating bank and a paying department with tokens
    of their clients from /v1/oauth/token, and a relying party with the access token of an
    authorization-code login (PKCE) of that holder, a channel app with the holder's session in
    it once linked; the administrator is minted (`tokens`; its roles have their own walk). The
    relying party's ID token comes along as a bearer too."""
    runtime = app.state.runtime
    holder = await create_active_holder(client, app)
    scanner = await create_scanner(client, runtime)
    issuer = await create_department(client, runtime, code="360000-walk")
    bank = await create_bank(client, runtime, "WALK")
    payer = await create_payer(client, runtime)
    relying_party = await register(client, app)
    login = await log_in(client, relying_party, holder)
    assert login["access_token"].startswith("sat_")
    channel = await register_channel(client, runtime)
    in_channel = await link(client, channel, holder)
    bearer = {
        **tokens(app),
        PrincipalKind.holder.value: holder.access_token,
        PrincipalKind.scanner.value: scanner.access_token,
        PrincipalKind.department.value: issuer.access_token,
        PrincipalKind.bank.value: _token(bank.headers),
        PrincipalKind.payer.value: _token(payer.headers),
        PrincipalKind.relying_party.value: login["access_token"],
        PrincipalKind.channel.value: _token(channel.headers),
        PrincipalKind.channel_holder.value: in_channel["access_token"],
        "relying_party_id_token": login["id_token"],
    }
    assert {"anonymous", *(kind.value for kind in PrincipalKind)} <= set(bearer)
    return Principals(
        bearer,
        {
            PrincipalKind.scanner.value: (scanner.client_id, scanner.client_secret),
            PrincipalKind.department.value: (issuer.client_id, issuer.client_secret),
            PrincipalKind.bank.value: (bank.client_id, bank.secret),
            PrincipalKind.payer.value: (payer.client_id, payer.secret),
        },
        (relying_party["client_id"], relying_party["client_secret"]),
    )


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def hidden_routes(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from hidden_routes(included.routes)
        elif isinstance(route, APIRoute) and not route.include_in_schema:
            for method in sorted(route.methods or ()):
                yield method, route.path


class TestEveryRouteIsDenyByDefault:
    async def test_routes_hidden_from_the_document_are_exactly_the_oidc_protocol_and_pages(
        self, app: FastAPI
    ) -> None:
        """The holder's pages (/h5/) have their own walk below (a session cookie)."""
        hidden = {
            item
            for item in hidden_routes(app.routes)
            if not item[1].startswith(("/docs", "/openapi", "/h5/"))
        }
        assert hidden == OIDC_PROTOCOL_ROUTES

    async def test_routes_without_a_principal_are_exactly_the_public_ones(
        self, app: FastAPI
    ) -> None:
        public = {(method, path) for method, path, needs in api_routes(app.routes) if needs is None}
        assert public == PUBLIC_ROUTES | set(FAST_PATH_ROUTES)

    async def test_every_other_principal_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, principals: Principals
    ) -> None:
        """Every route times every principal kind (the relying party's ID token too)."""
        checked: dict[str, int] = {}
        guarded: dict[str, int] = {}
        for method, path, needs in api_routes(app.routes):
            required = FAST_PATH_ROUTES.get((method, path)) or (needs.kind if needs else None)
            if required is None:
                continue
            guarded[required.value] = guarded.get(required.value, 0) + 1
            for kind, token in principals.bearer.items():
                if kind == required.value:
                    continue
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                response = await client.request(method, concrete(path), headers=headers, json={})
                assert response.status_code in (401, 403), (method, path, kind, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                checked[kind] = checked.get(kind, 0) + 1
        # Each kind was tried on every route that needs another one.
        assert checked == {
            kind: sum(guarded.values()) - guarded.get(kind, 0) for kind in principals.bearer
        }
        assert set(guarded) == {kind.value for kind in PrincipalKind} - {"relying_party"}

    async def test_the_principal_a_route_needs_is_let_through(
        self, app: FastAPI, client: httpx.AsyncClient, principals: Principals
    ) -> None:
        """The other half of the matrix: with the kind it needs (a real registered principal
        where there is one), no route answers 401 or the generic 403 of a missing scope; an
        unknown id answers 404, an empty body 422, a rule of the domain its own problem. The
        administrator's routes have their own walk, role by role (below)."""
        let_through: dict[str, int] = {}
        for method, path, needs in api_routes(app.routes):
            required = FAST_PATH_ROUTES.get((method, path)) or (needs.kind if needs else None)
            if required is None or required is PrincipalKind.admin:
                continue
            token = principals.bearer[required.value]
            assert token is not None
            response = await client.request(
                method, concrete(path), headers={"Authorization": f"Bearer {token}"}, json={}
            )
            assert response.status_code != 401, (method, path, response.text)
            if response.status_code == 403:
                assert response.json()["type"] != "/problems/forbidden", (method, path)
            let_through[required.value] = let_through.get(required.value, 0) + 1
        assert set(let_through) == {kind.value for kind in PrincipalKind} - {
            PrincipalKind.admin.value,
            PrincipalKind.relying_party.value,  # its token is for the OIDC endpoints only
        }

    async def test_the_oidc_endpoints_refuse_every_other_principal(
        self, client: httpx.AsyncClient, principals: Principals
    ) -> None:
        """The protocol routes outside the walk above: userinfo takes the relying party's access
        token only; the client-authenticated endpoints take a relying party's credentials,
        never an API client's (a bank's, a payer's...); /v1/oauth/token the reverse."""
        for kind, token in principals.bearer.items():
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            for method in ("GET", "POST"):
                answer = await client.request(method, "/oidc/userinfo", headers=headers)
                expected = 200 if kind == PrincipalKind.relying_party.value else 401
                assert answer.status_code == expected, (kind, method, answer.text)
        forms = {
            "/oidc/token": {"grant_type": "client_credentials"},
            "/oidc/introspect": {"token": str(principals.bearer["relying_party"])},
            "/oidc/revoke": {"token": str(principals.bearer["relying_party"])},
            "/oidc/device_authorization": {"scope": "openid"},
            "/oidc/kiosk_authorization": {"qr_token": "SSC1:X", "scope": "openid"},
        }
        for kind, credentials in principals.api_clients.items():
            for path, form in forms.items():
                refused = await client.post(path, data=form, auth=credentials)
                assert refused.status_code == 401, (kind, path, refused.text)
                assert refused.json()["error"] == "invalid_client", (kind, path)
        as_api_client = await client.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=principals.relying_party,
        )
        assert as_api_client.status_code == 401, as_api_client.text
        still = await client.get(
            "/oidc/userinfo",
            headers={"Authorization": f"Bearer {principals.bearer['relying_party']}"},
        )
        assert still.status_code == 200  # not revoked by the refused attempts

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


# --- administrator roles: every admin route x every role -------------------------------------


def allowed_roles(method: str, path: str) -> set[AdminRole]:
    """The specification of who may call an administrative route, written apart from the code
    (`app.security.roles`) so that a route given a wider duty by mistake fails here."""
    allowed = {AdminRole.provincial_admin}
    if method == "GET":
        allowed.add(AdminRole.auditor)  # reads everything, writes nothing
    card_lifecycle = (
        path.startswith("/v1/admin/cards/")
        and not path.endswith("/credit-records")
        and "/entitlements" not in path  # granted by administrators, not at the counter
    )
    if card_lifecycle or path.startswith("/v1/admin/applications/"):
        allowed.add(AdminRole.operator)  # the service-hall counter
    if path.startswith("/v1/admin/complaints"):
        allowed.add(AdminRole.city_admin)  # its own city's (see the region tests below)
    if (method, path) in {
        ("GET", "/v1/admin/catalog/versions"),  # its own city's supplements
        ("POST", "/v1/admin/catalog/supplements"),  # proposes for its own city; never decides
    }:
        allowed.add(AdminRole.city_admin)
    return allowed


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, needs in api_routes(app.routes)
        if needs is not None and needs.kind is PrincipalKind.admin
    ]


class TestEveryAdminRouteTimesEveryRole:
    async def test_every_admin_route_lives_under_the_admin_prefix(self, app: FastAPI) -> None:
        routes = admin_routes(app)
        assert len(routes) >= 25
        assert all(path.startswith("/v1/admin/") for _, path in routes), routes

    @pytest.mark.parametrize("role", list(AdminRole))
    async def test_a_role_is_allowed_exactly_its_routes(
        self, app: FastAPI, client: httpx.AsyncClient, role: AdminRole
    ) -> None:
        """Allowed: the route runs (an unknown id answers 404, an empty body 422, a list 200);
        refused: 403 before the route does anything."""
        headers = role_headers(app.state.runtime, role)
        outcomes = {}
        for method, path in admin_routes(app):
            response = await client.request(method, concrete(path), headers=headers, json={})
            assert response.status_code != 401, (method, path, response.text)
            outcomes[method, path] = response.status_code != 403
            if response.status_code == 403:
                assert response.headers["content-type"] == "application/problem+json"
        expected = {route: role in allowed_roles(*route) for route in outcomes}
        assert outcomes == expected

    async def test_a_token_from_before_roles_is_a_provincial_administrators(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        headers = admin_headers(app.state.runtime)  # no role claim
        for method, path in [
            ("GET", "/v1/admin/organisations"),
            ("GET", "/v1/admin/complaints"),
            ("POST", "/v1/admin/trusted-issuers"),
        ]:
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code not in (401, 403), (method, path, response.text)

    @pytest.mark.parametrize(
        "extra",
        [
            {"role": "root"},
            {"role": "city_admin"},  # a city administrator of no city
            {"role": "city_admin", "region": "36"},
            {"role": "auditor", "region": CITY},  # only a city administrator has a city
        ],
    )
    async def test_a_role_claim_that_makes_no_sense_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, extra: dict[str, str]
    ) -> None:
        token = app.state.runtime.access_tokens.issue(
            PrincipalKind.admin, "adm_odd", ["admin"], 600, extra
        ).token
        response = await client.get(
            "/v1/admin/complaints", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401


OTHER_CITY = "360200"


async def file(client: httpx.AsyncClient, region: str) -> str:
    """Files an anonymous complaint about `region`; returns its tracking number."""
    filed = await client.post(
        "/v1/complaints",
        json={
            "kind": "venue_refused_ecard",
            "details": "refused at the gate",
            "region_code": region,
            "contact": "13800138000",
        },
    )
    assert filed.status_code == 201, filed.text
    return str(filed.json()["tracking_number"])


class TestACityAdministratorActsOnItsCityOnly:
    async def complaint_ids(self, client: httpx.AsyncClient, app: FastAPI) -> dict[str, str]:
        await file(client, CITY)
        await file(client, OTHER_CITY)
        listed = await client.get(
            "/v1/admin/complaints",
            headers=role_headers(app.state.runtime, AdminRole.provincial_admin),
        )
        assert listed.status_code == 200
        return {row["region_code"]: row["id"] for row in listed.json()}

    @pytest.mark.parametrize(
        ("method", "step", "body"),
        [
            ("GET", "", None),
            ("POST", "/assign", {}),
            ("POST", "/answer", {"answer": "done"}),
            ("POST", "/close", {}),
        ],
    )
    async def test_another_citys_complaint_is_forbidden(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        method: str,
        step: str,
        body: dict[str, str] | None,
    ) -> None:
        ids = await self.complaint_ids(client, app)
        city_admin = role_headers(app.state.runtime, AdminRole.city_admin, CITY)
        path = f"/v1/admin/complaints/{ids[OTHER_CITY]}{step}"
        refused = await client.request(method, path, headers=city_admin, json=body)
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/outside-region"
        own = await client.request(
            method, f"/v1/admin/complaints/{ids[CITY]}{step}", headers=city_admin, json=body
        )
        assert own.status_code == 200, own.text

    async def test_its_list_shows_its_city_only_and_refuses_another(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await self.complaint_ids(client, app)
        city_admin = role_headers(app.state.runtime, AdminRole.city_admin, CITY)
        listed = await client.get("/v1/admin/complaints", headers=city_admin)
        assert listed.status_code == 200
        assert {row["region_code"] for row in listed.json()} == {CITY}
        other = await client.get(
            "/v1/admin/complaints", params={"region": OTHER_CITY}, headers=city_admin
        )
        assert other.status_code == 403

    async def test_the_auditor_reads_any_city_and_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        ids = await self.complaint_ids(client, app)
        auditor = role_headers(app.state.runtime, AdminRole.auditor)
        for complaint_id in ids.values():
            read = await client.get(f"/v1/admin/complaints/{complaint_id}", headers=auditor)
            assert read.status_code == 200
            closed = await client.post(
                f"/v1/admin/complaints/{complaint_id}/close", headers=auditor, json={}
            )
            assert closed.status_code == 403
            assert (
                await client.get(f"/v1/admin/complaints/{complaint_id}", headers=auditor)
            ).json()["status"] == "open"


TRAM = {
    "code": "tram",
    "title_zh": "有轨电车乘车",
    "title_en": "Tram boarding",
    "domain": "transport",
    "attributes": ["pseudonym"],
    "entitlements": [],
}


class TestACityAdministratorProposesItsCitysSupplementOnly:
    async def propose(self, app: FastAPI, client: httpx.AsyncClient, region: str) -> httpx.Response:
        return await client.post(
            "/v1/admin/catalog/supplements",
            json={"region": region, "scenes": [TRAM], "note": "trams"},
            headers=role_headers(app.state.runtime, AdminRole.city_admin, CITY),
        )

    async def test_it_proposes_for_its_own_city(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        proposed = await self.propose(app, client, CITY)
        assert proposed.status_code == 201, proposed.text
        assert proposed.json()["region"] == CITY
        listed = await client.get(
            "/v1/admin/catalog/versions",
            headers=role_headers(app.state.runtime, AdminRole.city_admin, CITY),
        )
        assert listed.status_code == 200
        assert {row["region"] for row in listed.json()} == {CITY}

    async def test_another_citys_supplement_is_forbidden(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        refused = await self.propose(app, client, OTHER_CITY)
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/outside-region"

    async def test_it_cannot_decide_even_its_own_citys_supplement(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        proposed = await self.propose(app, client, CITY)
        number = proposed.json()["number"]
        path = f"/v1/admin/catalog/supplements/{number}/decision"
        decided = await client.post(
            path,
            json={"decision": "approve"},
            headers=role_headers(app.state.runtime, AdminRole.city_admin, CITY),
        )
        assert decided.status_code == 403
        province = await client.post(
            path,
            json={"decision": "approve"},
            headers=role_headers(app.state.runtime, AdminRole.provincial_admin),
        )
        assert province.status_code == 200, province.text


# --- the holder's pages (/h5/): a session cookie instead of a bearer token --------------------

H5_PUBLIC_ROUTES = {
    ("GET", "/h5/"),  # sends to the card or to sign in
    ("GET", "/h5/login"),
    ("POST", "/h5/login"),
    ("GET", "/h5/activate"),
    ("POST", "/h5/activate"),
    ("POST", "/h5/care"),  # elder mode, per device
    ("GET", "/h5/launch"),  # a channel's single-use launch ticket is the credential
}


def depends_on(dependant: Dependant, call: object) -> bool:
    return any(d.call is call or depends_on(d, call) for d in dependant.dependencies)


def h5_routes(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str, bool]]:
    """Every page route, and whether it demands the holder's page session."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from h5_routes(included.routes)
        elif isinstance(route, APIRoute) and route.path.startswith("/h5/"):
            for method in sorted(route.methods or ()):
                yield method, route.path, depends_on(route.dependant, pages.holder_page)


class TestEveryPageIsDenyByDefault:
    async def test_pages_without_a_session_are_exactly_the_public_ones(self, app: FastAPI) -> None:
        routes = list(h5_routes(app.routes))
        assert len(routes) >= 15
        assert {(m, p) for m, p, needs in routes if not needs} == H5_PUBLIC_ROUTES

    async def test_a_bearer_token_is_no_page_session(
        self, app: FastAPI, client: httpx.AsyncClient, principals: Principals
    ) -> None:
        """Without the session cookie every holder page sends to sign in, whatever bearer
        token comes along (the page fetch answers 401); a form is refused before it is read."""
        for method, path, needs in h5_routes(app.routes):
            if not needs:
                continue
            for token in principals.bearer.values():
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                response = await client.request(method, concrete(path), headers=headers)
                if path.endswith("/qr"):  # the page script's code fetches
                    assert response.status_code == 401, (method, path)
                else:
                    assert response.status_code == 303, (method, path)
                    assert response.headers["location"] == "/h5/login"
