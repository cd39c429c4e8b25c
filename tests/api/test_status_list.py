"""GET /v1/status-lists/{issuer}: our signed Token Status List, current to every card change."""

from __future__ import annotations

import base64
import zlib

import cbor2
import httpx
import jwt
import pytest
from fastapi import FastAPI
from pycose.headers import KID
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key
from pycose.messages.sign1message import Sign1Message

from app.cards.models import CardStatus
from app.runtime import Runtime
from app.trust.status_lists import published_status_list, status_list_uri
from tests.app.trust.support import create_listed_card, set_card_status
from token_service import Status, StatusList

CWT = "application/statuslist+cwt"
JWT = "application/statuslist+jwt"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


async def fetch(client: httpx.AsyncClient, runtime: Runtime, accept: str = CWT) -> httpx.Response:
    response = await client.get(
        f"/v1/status-lists/{runtime.settings.issuer}", headers={"Accept": accept}
    )
    assert response.status_code == 200, response.text
    return response


async def jwks(client: httpx.AsyncClient) -> list[dict[str, str]]:
    keys: list[dict[str, str]] = (await client.get("/.well-known/jwks.json")).json()["keys"]
    return keys


def cwt_list(data: bytes) -> StatusList:
    claims = cbor2.loads(cbor2.loads(data).value[2])
    return StatusList.decompress(claims[65533]["lst"], claims[65533]["bits"])


class TestStatusListVerifiesIndependently:
    async def test_cwt_verifies_with_pycose_using_our_jwks(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await fetch(client, runtime)
        assert response.headers["content-type"] == CWT
        message = Sign1Message.decode(response.content)
        raw_kid, payload = message.get_attr(KID), message.payload
        assert isinstance(raw_kid, bytes) and payload is not None
        kid = base64.urlsafe_b64encode(raw_kid).rstrip(b"=").decode()
        jwk = next(key for key in await jwks(client) if key["kid"] == kid)
        message.key = EC2Key(crv=P256, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
        assert message.verify_signature()
        claims = cbor2.loads(payload)
        assert claims[2] == status_list_uri(runtime.settings)
        assert claims[65534] == runtime.settings.status_list_ttl

    async def test_jwt_verifies_with_pyjwt_using_our_jwks(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await fetch(client, runtime, JWT)
        assert response.headers["content-type"] == JWT
        token = response.text
        kid = jwt.get_unverified_header(token)["kid"]
        jwk = next(key for key in await jwks(client) if key["kid"] == kid)
        claims = jwt.decode(
            token, jwt.PyJWK(jwk).key, algorithms=["ES256"], options={"verify_sub": False}
        )
        assert claims["sub"] == status_list_uri(runtime.settings)
        assert claims["status_list"]["bits"] == 2
        size = StatusList(runtime.settings.status_list_size).size
        assert len(zlib.decompress(b64url_decode(claims["status_list"]["lst"]))) * 4 == size


class TestStatusListFollowsCards:
    async def test_a_lost_card_reads_lost_in_the_freshly_fetched_list(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card = await create_listed_card(runtime)
        before = cwt_list((await fetch(client, runtime)).content)
        assert before.get(card.status_index) == Status.VALID
        await set_card_status(runtime, card, CardStatus.lost)
        after = cwt_list((await fetch(client, runtime)).content)
        assert after.get(card.status_index) == Status.LOST

    async def test_each_state_has_its_entry(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        expected = {
            CardStatus.suspended: Status.SUSPENDED,
            CardStatus.cancelled: Status.INVALID,
            CardStatus.active: Status.VALID,
        }
        cards = {status: await create_listed_card(runtime, status) for status in expected}
        listed = cwt_list((await fetch(client, runtime)).content)
        assert {s: listed.get(c.status_index) for s, c in cards.items()} == expected

    async def test_unchanged_list_is_served_from_cache_and_revalidates_with_304(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        first = await fetch(client, runtime)
        assert (
            first.headers["cache-control"] == f"public, max-age={runtime.settings.status_list_ttl}"
        )
        assert first.headers["vary"] == "Accept"
        again = await client.get(
            f"/v1/status-lists/{runtime.settings.issuer}",
            headers={"If-None-Match": first.headers["etag"]},
        )
        assert again.status_code == 304

    async def test_the_ttl_forces_a_fresh_signature(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        issuer = runtime.settings.issuer
        first = await published_status_list(runtime, issuer)
        cached = await published_status_list(runtime, issuer, now=first.issued_at + 1)
        later = first.issued_at + runtime.settings.status_list_ttl
        renewed = await published_status_list(runtime, issuer, now=later)
        assert cached == first
        assert renewed.issued_at == later

    async def test_another_issuers_list_is_not_published_here(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/status-lists/ZZ9999")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
