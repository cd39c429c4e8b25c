"""Other issuers: registration by an administrator, the signed trust list, and their tokens."""

from __future__ import annotations

import base64
import secrets
import time

import cbor2
import httpx
import jwt
import pytest
from fastapi import FastAPI
from pycose.headers import KID
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key
from pycose.messages.sign1message import Sign1Message

from app.runtime import Runtime
from tests.factories import admin_headers, create_scanner
from token_service import (
    KeyRing,
    PublicKeySet,
    Status,
    StatusList,
    TokenIssuer,
    Verdict,
    load_bundle,
    sign_status_list_cwt,
)

CHONGQING = "500000"
CQ_LIST = "https://ecard.cq.example/v1/status-lists/500000"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


@pytest.fixture
def chongqing() -> KeyRing:
    """A second issuer in the same test run: its own key ring, never seen by the service."""
    return KeyRing.ephemeral()


def foreign_token(ring: KeyRing, code: str = CHONGQING, status_index: int = 7) -> str:
    issuer = TokenIssuer(ring, code, secrets.token_bytes(16))
    return issuer.issue(secrets.token_bytes(16), status_index=status_index).token


async def register(
    client: httpx.AsyncClient, runtime: Runtime, ring: KeyRing, **overrides: object
) -> httpx.Response:
    body: dict[str, object] = {
        "code": CHONGQING,
        "name": "Chongqing",
        "token_lifetime": 60,
        "jwks": ring.jwks(),
        "status_list_uri": CQ_LIST,
        **overrides,
    }
    return await client.post("/v1/admin/trusted-issuers", json=body, headers=admin_headers(runtime))


class TestRegistration:
    async def test_a_registered_issuers_tokens_verify_and_a_removed_ones_do_not(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        token = foreign_token(chongqing)
        assert runtime.token_verifier.verify(token).verdict is Verdict.UNKNOWN_KEY
        registered = await register(client, runtime, chongqing)
        assert registered.status_code == 201, registered.text
        assert sorted(registered.json()["kids"]) == sorted(
            key["kid"] for key in chongqing.jwks()["keys"]
        )
        check = runtime.token_verifier.verify(token)
        assert (check.verdict, check.issuer, check.card_handle) == (
            Verdict.VALID,
            CHONGQING,
            None,
        )
        removed = await client.delete(
            f"/v1/admin/trusted-issuers/{CHONGQING}", headers=admin_headers(runtime)
        )
        assert removed.status_code == 204
        assert runtime.token_verifier.verify(token).verdict is Verdict.UNKNOWN_KEY

    async def test_our_own_tokens_keep_verifying_beside_a_foreign_issuer(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        assert (await register(client, runtime, chongqing)).status_code == 201
        ours = runtime.token_issuer.issue(secrets.token_bytes(16), status_index=1).token
        assert runtime.token_verifier.verify(ours).issuer == runtime.settings.issuer

    async def test_a_cose_key_set_registers_too(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        response = await register(
            client, runtime, chongqing, jwks=None, cose_key_set=b64url(chongqing.cose_key_set())
        )
        assert response.status_code == 201, response.text
        assert runtime.token_verifier.verify(foreign_token(chongqing)).valid

    async def test_refusals(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        assert (await register(client, runtime, chongqing)).status_code == 201
        ours = {"keys": runtime.keyring.jwks()["keys"]}
        cases = {
            "twice": (await register(client, runtime, chongqing), 409),
            "our code": (await register(client, runtime, chongqing, code="360000"), 422),
            "our keys": (await register(client, runtime, chongqing, code="510000", jwks=ours), 422),
            "no keys": (await register(client, runtime, chongqing, code="510000", jwks=None), 422),
            "junk keys": (
                await register(client, runtime, chongqing, code="510000", jwks={"keys": [1]}),
                422,
            ),
        }
        answers = {name: response.status_code for name, (response, _) in cases.items()}
        assert answers == {name: status for name, (_, status) in cases.items()}
        missing = await client.delete(
            "/v1/admin/trusted-issuers/510000", headers=admin_headers(runtime)
        )
        assert missing.status_code == 404

    async def test_only_an_administrator_may_register(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        scanner = await create_scanner(client, runtime)
        response = await client.post(
            "/v1/admin/trusted-issuers",
            json={"code": CHONGQING, "name": "x", "token_lifetime": 60, "jwks": chongqing.jwks()},
            headers=scanner.headers,
        )
        assert response.status_code == 401


class TestTrustList:
    async def test_it_lists_us_and_every_registered_issuer_and_verifies_independently(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        assert (await register(client, runtime, chongqing)).status_code == 201
        our_jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]

        cwt = await client.get("/v1/trust-list")
        assert cwt.headers["content-type"] == "application/trustlist+cwt"
        message = Sign1Message.decode(cwt.content)
        kid, payload = message.get_attr(KID), message.payload
        assert isinstance(kid, bytes) and payload is not None
        jwk = next(k for k in our_jwks if k["kid"] == b64url(kid))
        message.key = EC2Key(crv=P256, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
        assert message.verify_signature()
        entries = cbor2.loads(payload)["issuers"]
        assert [entry["code"] for entry in entries] == [runtime.settings.issuer, CHONGQING]

        signed = (
            await client.get("/v1/trust-list", headers={"Accept": "application/trustlist+jwt"})
        ).text
        jwk = next(k for k in our_jwks if k["kid"] == jwt.get_unverified_header(signed)["kid"])
        claims = jwt.decode(signed, jwt.PyJWK(jwk).key, algorithms=["ES256"])
        listed = {entry["code"]: entry for entry in claims["issuers"]}
        keys = PublicKeySet.from_jwks({"keys": listed[CHONGQING]["keys"]})
        assert keys == PublicKeySet.from_keyring(chongqing)
        assert listed[CHONGQING]["status_list"] == CQ_LIST

    async def test_a_change_replaces_the_cached_list(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        before = await client.get("/v1/trust-list")
        assert (await register(client, runtime, chongqing)).status_code == 201
        after = await client.get(
            "/v1/trust-list", headers={"If-None-Match": before.headers["etag"]}
        )
        assert after.status_code == 200


class TestScannerBundle:
    async def test_bundle_holds_our_list_and_a_current_foreign_one_and_answers_304(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        assert (await register(client, runtime, chongqing)).status_code == 201
        without = await client.get("/v1/scanner/bundle", headers=scanner.headers)
        anchor = PublicKeySet.from_jwks((await client.get("/.well-known/jwks.json")).json())
        bundle = load_bundle(without.content, anchor, now=time.time())
        # Chongqing announces a status list we do not hold yet: left out, never unchecked.
        assert [entry.code for entry in bundle.issuers] == [runtime.settings.issuer]
        assert bundle.scenes == {"museum"}

        cq_list = sign_status_list_cwt(
            StatusList(64),
            uri=CQ_LIST,
            keyring=chongqing,
            issued_at=int(time.time()),
            expires_in=3600,
        )
        uploaded = await client.put(
            f"/v1/admin/trusted-issuers/{CHONGQING}/status-list",
            json={"status_list": b64url(cq_list)},
            headers=admin_headers(runtime),
        )
        assert uploaded.status_code == 200, uploaded.text
        with_list = await client.get("/v1/scanner/bundle", headers=scanner.headers)
        bundle = load_bundle(with_list.content, anchor, now=time.time())
        assert set(bundle.status_lists) == {runtime.settings.issuer, CHONGQING}
        unchanged = await client.get(
            "/v1/scanner/bundle",
            headers={**scanner.headers, "If-None-Match": with_list.headers["etag"]},
        )
        assert unchanged.status_code == 304

    async def test_a_status_list_not_signed_by_the_issuer_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        assert (await register(client, runtime, chongqing)).status_code == 201
        forged = sign_status_list_cwt(
            StatusList(64),
            uri=CQ_LIST,
            keyring=KeyRing.ephemeral(),
            issued_at=int(time.time()),
            expires_in=3600,
        )
        response = await client.put(
            f"/v1/admin/trusted-issuers/{CHONGQING}/status-list",
            json={"status_list": b64url(forged)},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422


async def upload_status_list(
    client: httpx.AsyncClient, runtime: Runtime, ring: KeyRing, statuses: dict[int, Status]
) -> None:
    listed = StatusList(64)
    for index, status in statuses.items():
        listed.set(index, status)
    signed = sign_status_list_cwt(
        listed, uri=CQ_LIST, keyring=ring, issued_at=int(time.time()), expires_in=3600
    )
    uploaded = await client.put(
        f"/v1/admin/trusted-issuers/{CHONGQING}/status-list",
        json={"status_list": b64url(signed)},
        headers=admin_headers(runtime),
    )
    assert uploaded.status_code == 200, uploaded.text


class TestForeignTokensOnline:
    """POST /v1/verify of another issuer's token: trust, its status list, replay."""

    async def scan(
        self, client: httpx.AsyncClient, headers: dict[str, str], token: str
    ) -> dict[str, object]:
        response = await client.post("/v1/verify", json={"token": token}, headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, object] = response.json()
        return answer

    async def test_an_unregistered_issuer_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        answer = await self.scan(client, scanner.headers, foreign_token(chongqing))
        assert answer["verdict"] == Verdict.UNKNOWN_KEY

    async def test_without_the_issuers_status_list_nothing_passes(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        assert (await register(client, runtime, chongqing)).status_code == 201
        answer = await self.scan(client, scanner.headers, foreign_token(chongqing))
        assert answer["verdict"] == Verdict.ISSUER_UNTRUSTED

    async def test_a_listed_card_is_valid_once_with_a_pseudonym_and_no_name(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        assert (await register(client, runtime, chongqing)).status_code == 201
        await upload_status_list(client, runtime, chongqing, {7: Status.VALID})
        token = foreign_token(chongqing, status_index=7)
        first = await self.scan(client, scanner.headers, token)
        again = await self.scan(client, scanner.headers, token)
        assert (first["verdict"], first["iss"]) == (Verdict.VALID, CHONGQING)
        assert set(first["holder"]) == {"pseudonym"}  # type: ignore[arg-type]
        assert again["verdict"] == Verdict.REPLAYED
        later = await self.scan(client, scanner.headers, foreign_token(chongqing, status_index=7))
        assert later["holder"] == first["holder"]

    async def test_a_card_the_issuer_lists_as_lost_is_card_lost(
        self, client: httpx.AsyncClient, runtime: Runtime, chongqing: KeyRing
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        assert (await register(client, runtime, chongqing)).status_code == 201
        await upload_status_list(client, runtime, chongqing, {7: Status.LOST, 8: Status.INVALID})
        lost = await self.scan(client, scanner.headers, foreign_token(chongqing, status_index=7))
        gone = await self.scan(client, scanner.headers, foreign_token(chongqing, status_index=8))
        assert (lost["verdict"], gone["verdict"]) == (Verdict.CARD_LOST, Verdict.CARD_CANCELLED)
