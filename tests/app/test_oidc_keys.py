"""The ID token keys: a ring of their own (never the QR token keys), rotated by the same
machinery, published with purpose `oidc` at /oidc/jwks.json; tokens signed before a rotation
keep verifying during the retired key's grace."""

from __future__ import annotations

import httpx
import jwt
from fastapi import FastAPI

from app.runtime import Runtime
from app.trust.background import TrustSync
from app.trust.key_rotation import RotationPolicy, rotate_if_due
from token_service.keys import b64url
from token_service.oidc import sign_id_token, verify_id_token


async def test_the_oidc_ring_is_apart_from_the_qr_ring(app: FastAPI) -> None:
    runtime: Runtime = app.state.runtime
    qr_kids = {key.kid for key in runtime.keyring.published()}
    oidc_kids = {key.kid for key in runtime.oidc_keyring.published()}
    assert qr_kids and oidc_kids and qr_kids.isdisjoint(oidc_kids)
    assert runtime.oidc_keyring.signing_key.kid not in qr_kids
    assert (runtime.settings.key_dir / "oidc").is_dir()


async def test_rotation_publishes_and_signs_with_the_next_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    runtime: Runtime = app.state.runtime
    ring = runtime.oidc_keyring
    issuer = runtime.settings.public_url.rstrip("/")
    before = sign_id_token(ring, {"iss": issuer, "sub": "s", "aud": "a"})
    old = ring.signing_key.kid
    upcoming = next(key.kid for key in ring.published() if key.state.value == "next")
    published = (await client.get("/oidc/jwks.json")).json()["keys"]
    assert {key["purpose"] for key in published} == {"oidc"}
    assert b64url(upcoming) in {key["kid"] for key in published}

    due_now = RotationPolicy(rotate_after=1, publish_ahead=0)
    qr_before = runtime.keyring.signing_key.kid
    assert await rotate_if_due(
        ring, runtime.store, due_now, now=ring.published()[0].created_at + 10, purpose="oidc"
    )
    assert ring.signing_key.kid == upcoming
    assert runtime.keyring.signing_key.kid == qr_before, "the QR ring did not move"
    after = sign_id_token(ring, {"iss": issuer, "sub": "s", "aud": "a"})
    assert jwt.get_unverified_header(after)["kid"] == b64url(upcoming)
    for token in (before, after):
        assert verify_id_token(ring, token, issuer=issuer)["sub"] == "s"
    published = {key["kid"] for key in (await client.get("/oidc/jwks.json")).json()["keys"]}
    assert {b64url(old), b64url(upcoming)} <= published


async def test_the_worker_sync_rotates_both_rings(app: FastAPI) -> None:
    runtime: Runtime = app.state.runtime
    sync = TrustSync(runtime)
    sync._policy = RotationPolicy(rotate_after=1e-9, publish_ahead=0)
    oidc_before, qr_before = runtime.oidc_keyring.signing_key.kid, runtime.keyring.signing_key.kid
    await sync.tick()
    assert runtime.oidc_keyring.signing_key.kid != oidc_before
    assert runtime.keyring.signing_key.kid != qr_before
