"""The issuer registry: departments as API clients with scopes per document type, and their
signing keys (registered, rotated, revoked by administrators)."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlmodel import select

from app.clients.models import ApiClient
from app.departments.errors import SignatureRejected
from app.departments.models import IssuerKey
from app.departments.service import issuer_keys, signature_state, verify_with
from app.security.tokens import PrincipalKind
from tests.departments import create_department, new_key, register_key
from tests.factories import admin_headers, bearer
from token_service.jws import public_jwk


async def _keys(app: FastAPI, issuer_id: str) -> list[IssuerKey]:
    async with app.state.runtime.database.session() as session:
        return list(await issuer_keys(session, uuid.UUID(issuer_id)))


class TestIssuerClients:
    async def test_a_department_gets_a_token_with_a_scope_per_document_type(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        department = await create_department(client, app.state.runtime)
        claims = app.state.runtime.access_tokens.decode(
            department.access_token, PrincipalKind.department
        )
        assert claims.scopes == {
            "consent",
            "issue",
            "issue:driving_licence",
            "issue:vehicle_registration",
        }
        assert claims.extra["issuer"] == department.issuer_id
        async with app.state.runtime.database.session() as session:
            stored = (
                await session.exec(
                    select(ApiClient).where(ApiClient.client_id == department.client_id)
                )
            ).one()
        assert stored.kind == "department"
        assert str(stored.issuer_id) == department.issuer_id

    async def test_an_unknown_document_type_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/v1/admin/issuers",
            json={"code": "x", "name": "X", "issued_types": ["passport_of_mars"]},
            headers=admin_headers(app.state.runtime),
        )
        assert response.status_code == 422
        listed = await client.get("/v1/admin/issuers", headers=admin_headers(app.state.runtime))
        assert listed.json() == []

    async def test_a_duplicate_code_is_a_conflict(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await create_department(client, app.state.runtime)
        again = await client.post(
            "/v1/admin/issuers",
            json={"code": "360000-traffic", "name": "X", "issued_types": ["driving_licence"]},
            headers=admin_headers(app.state.runtime),
        )
        assert again.status_code == 409
        assert again.json()["type"] == "/problems/issuer-exists"

    async def test_a_disabled_issuers_tokens_stop_at_once(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        department = await create_department(client, app.state.runtime)
        before = await client.get("/v1/issuer", headers=bearer(department.access_token))
        assert before.status_code == 200
        disabled = await client.patch(
            f"/v1/admin/issuers/{department.issuer_id}",
            json={"enabled": False},
            headers=admin_headers(app.state.runtime),
        )
        assert disabled.status_code == 200, disabled.text
        after = await client.get("/v1/issuer", headers=bearer(department.access_token))
        assert after.status_code == 401
        token = await client.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(department.client_id, department.client_secret),
        )
        assert token.status_code == 401


class TestKeys:
    async def test_a_private_jwk_is_refused_and_nothing_stored(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        department = await create_department(client, app.state.runtime)
        jwk = public_jwk(new_key(), "leak")
        jwk["d"] = "AAAA"
        response = await client.post(
            f"/v1/admin/issuers/{department.issuer_id}/keys",
            json={"jwk": jwk},
            headers=admin_headers(app.state.runtime),
        )
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/invalid-issuer-key"
        assert [key.kid for key in await _keys(app, department.issuer_id)] == [department.kid]

    async def test_rotation_and_revocation(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        runtime = app.state.runtime
        department = await create_department(client, runtime)
        old = department.sign({"n": 1})
        new_signing_key = new_key("EdDSA")
        await register_key(client, runtime, department.issuer_id, new_signing_key, "k2")
        retired = await client.post(
            f"/v1/admin/issuers/{department.issuer_id}/keys/{department.kid}/retire",
            headers=admin_headers(runtime),
        )
        assert retired.json()["status"] == "retired"
        keys = await _keys(app, department.issuer_id)
        # A retired key verifies what it signed, but signs no new push.
        assert signature_state(keys, old).valid
        try:
            verify_with(keys, old, ingest=True)
        except SignatureRejected as error:
            assert error.extensions["reason"] == "key_retired"
        else:
            raise AssertionError("a retired key must not sign a push")
        assert verify_with(keys, department.sign({"n": 2}, new_signing_key, "k2"), ingest=True)
        revoked = await client.post(
            f"/v1/admin/issuers/{department.issuer_id}/keys/{department.kid}/revoke",
            json={"reason": "key compromised"},
            headers=admin_headers(runtime),
        )
        assert revoked.json()["status"] == "revoked"
        state = signature_state(await _keys(app, department.issuer_id), old)
        assert not state.valid
        assert state.reason == "key_revoked"
        listed = await client.get(
            f"/v1/admin/issuers/{department.issuer_id}/keys", headers=admin_headers(runtime)
        )
        assert [(k["kid"], k["status"]) for k in listed.json()] == [
            (department.kid, "revoked"),
            ("k2", "active"),
        ]
