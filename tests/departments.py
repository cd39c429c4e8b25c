"""Test helpers for issuers (departments): register one through the admin API with a signing
key, get its client an access token, and sign documents as it would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from app.runtime import Runtime
from tests.factories import admin_headers, bearer
from token_service.jws import PrivateKey, public_jwk, sign_document


@dataclass
class Department:
    issuer_id: str
    code: str
    client_id: str
    client_secret: str
    access_token: str
    key: PrivateKey
    kid: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)

    def sign(self, payload: dict[str, Any], key: PrivateKey | None = None, kid: str = "") -> str:
        return sign_document(payload, key or self.key, kid or self.kid)


def new_key(alg: str = "ES256") -> PrivateKey:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


async def register_key(
    http: httpx.AsyncClient, runtime: Runtime, issuer_id: str, key: PrivateKey, kid: str
) -> dict[str, Any]:
    response = await http.post(
        f"/v1/admin/issuers/{issuer_id}/keys",
        json={"jwk": public_jwk(key, kid)},
        headers=admin_headers(runtime),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def client_token(http: httpx.AsyncClient, client_id: str, secret: str) -> str:
    token = await http.post(
        "/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert token.status_code == 200, token.text
    access_token: str = token.json()["access_token"]
    return access_token


async def create_department(
    http: httpx.AsyncClient,
    runtime: Runtime,
    *,
    code: str = "360000-traffic",
    types: list[str] | None = None,
    alg: str = "ES256",
    kind: str = "department",
) -> Department:
    """An issuer of `kind` (department, training_institution, employer) with one active key
    (kid `<code>-1`) and an access token of its client."""
    created = await http.post(
        "/v1/admin/issuers",
        json={
            "code": code,
            "name": f"Department {code}",
            "issued_types": types or ["driving_licence", "vehicle_registration"],
            "kind": kind,
        },
        headers=admin_headers(runtime),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key, kid = new_key(alg), f"{code}-1"
    await register_key(http, runtime, body["id"], key, kid)
    client_id = body["client_ids"][0]
    token = await client_token(http, client_id, body["client_secret"])
    return Department(body["id"], code, client_id, body["client_secret"], token, key, kid)
