"""Disclosure by allow-list (issue 12, point 3): a valid verify answer carries exactly the
attributes and entitlements the scene's catalog entry lists, nothing else; offline, nothing
beyond the verdict; entitlements only while granted and unexpired; pseudonyms pairwise."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.audit.consumer import parse_entry
from app.audit.log import audit_fields
from app.cards import entitlements
from app.cards.models import Card, CardStatus
from app.cards.snapshot import AttributeView, CardSnapshot
from app.catalog.defaults import DEFAULT_SCENES
from app.catalog.scenes import Attribute, Entitlement
from app.runtime import Runtime
from app.store import Store, StreamEntry
from app.store.redis import RedisStore
from tests.app.trust.support import create_listed_card, listed_token
from tests.factories import (
    ScannerCredentials,
    admin_headers,
    create_organisation,
    create_scannable_card,
    create_scanner,
    qr_token,
)
from token_service import OfflineVerifier, PublicKeySet

ALL_SCENES = [str(row["code"]) for row in DEFAULT_SCENES]
NAME = "张三丰"
DOCUMENT_NUMBER = "110101199003071234"  # what `create_scannable_card` seals
LATER = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    the_runtime: Runtime = app.state.runtime
    return the_runtime


@pytest.fixture
async def everywhere(client: httpx.AsyncClient, runtime: Runtime) -> ScannerCredentials:
    """A scanner of an organisation approved for every scene of the default catalog."""
    organisation = await create_organisation(client, runtime, scenes=ALL_SCENES)
    return await create_scanner(client, runtime, organisation, scenes=ALL_SCENES)


async def verify(
    client: httpx.AsyncClient, scanner: ScannerCredentials, token: str, scene: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/verify", json={"token": token, "scene": scene}, headers=scanner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["verdict"] == "valid", body
    return body


async def grant(
    client: httpx.AsyncClient, runtime: Runtime, card: Card, kind: str, expires_at: datetime
) -> httpx.Response:
    return await client.post(
        f"/v1/admin/cards/{card.card_number}/entitlements",
        json={"kind": kind, "expires_at": expires_at.isoformat()},
        headers=admin_headers(runtime),
    )


def expected_holder(row: dict[str, Any]) -> set[str]:
    return set(row["attributes"]) | ({"entitlements"} if row["entitlements"] else set())


class TestEveryDefaultScene:
    @pytest.mark.parametrize("row", DEFAULT_SCENES, ids=ALL_SCENES)
    async def test_online_answer_is_exactly_the_allow_list(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        everywhere: ScannerCredentials,
        row: dict[str, Any],
    ) -> None:
        card = await create_scannable_card(runtime, name=NAME)
        for kind in Entitlement:
            assert (await grant(client, runtime, card, kind.value, LATER)).status_code == 200
        holder = (await verify(client, everywhere, qr_token(runtime, card), row["code"]))["holder"]

        assert set(holder) == expected_holder(row)
        values = {
            "masked_name": "张*丰",
            "full_name": NAME,
            "document_type": "resident_id",
            "document_number": DOCUMENT_NUMBER,
            "masked_document_number": "110***********1234",
            "age_band": "18_59",  # born 1990-03-07
        }
        for attribute, value in values.items():
            if attribute in row["attributes"]:
                assert holder[attribute] == value
        if row["entitlements"]:
            assert {item["kind"] for item in holder["entitlements"]} == set(row["entitlements"])

    async def test_offline_answer_is_the_verdict_and_the_scene_only(
        self, client: httpx.AsyncClient, runtime: Runtime, everywhere: ScannerCredentials
    ) -> None:
        card = await create_listed_card(runtime)  # named NAME
        bundle = await client.get("/v1/scanner/bundle", headers=everywhere.headers)
        assert bundle.status_code == 200, bundle.text
        anchor = PublicKeySet.from_jwks((await client.get("/.well-known/jwks.json")).json())
        offline = OfflineVerifier(bundle.content, anchor)
        assert (await grant(client, runtime, card, "disability", LATER)).status_code == 200
        assert NAME.encode() not in bundle.content
        assert DOCUMENT_NUMBER.encode() not in bundle.content
        personal = {attribute.value for attribute in Attribute} | {"entitlements", "holder"}
        for scene in ALL_SCENES:
            token = listed_token(runtime, card)
            assert NAME.encode() not in token.encode()
            result = offline.verify(token, scene=scene)
            assert (result.verdict.value, result.accepted, result.scene) == ("valid", True, scene)
            assert not personal & set(type(result).__dataclass_fields__)


class TestEntitlements:
    async def test_shown_only_to_scenes_listing_the_kind(
        self, client: httpx.AsyncClient, runtime: Runtime, everywhere: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        assert (await grant(client, runtime, card, "transport_enabled", LATER)).status_code == 200
        metro = await verify(client, everywhere, qr_token(runtime, card), "metro")
        assert metro["holder"]["entitlements"] == [
            {"kind": "transport_enabled", "expires_at": LATER.isoformat().replace("+00:00", "Z")}
        ]
        museum = await verify(client, everywhere, qr_token(runtime, card), "museum")
        assert "entitlements" not in museum["holder"]  # museums read discounts, not transport
        hotel = await verify(client, everywhere, qr_token(runtime, card), "hotel")
        assert "entitlements" not in hotel["holder"]

    async def test_withdrawn_and_expired_entitlements_are_not_shown(
        self, client: httpx.AsyncClient, runtime: Runtime, everywhere: ScannerCredentials
    ) -> None:
        card = await create_scannable_card(runtime)
        assert (
            await grant(client, runtime, card, "elderly_preferential", LATER)
        ).status_code == 200
        # far enough ahead that the grant and the first scan finish before it, on a busy machine
        soon = datetime.now(UTC) + timedelta(seconds=5)
        assert (await grant(client, runtime, card, "disability", soon)).status_code == 200
        shown = await verify(client, everywhere, qr_token(runtime, card), "elderly_care")
        assert {item["kind"] for item in shown["holder"]["entitlements"]} == {
            "elderly_preferential",
            "disability",
        }
        withdrawn = await client.delete(
            f"/v1/admin/cards/{card.card_number}/entitlements/elderly_preferential",
            headers=admin_headers(runtime),
        )
        assert withdrawn.status_code == 204
        while datetime.now(UTC) <= soon:
            time.sleep(0.05)
        after = await verify(client, everywhere, qr_token(runtime, card), "elderly_care")
        assert "entitlements" not in after["holder"]

    async def test_grant_and_withdraw_are_audited_and_refuse_bad_input(
        self, client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        audited: list[tuple[str, str, dict[str, Any]]] = []
        original = entitlements.record

        async def record(
            store: Store, action: str, actor: str, subject: str = "", data: Any = None
        ) -> str:
            audited.append((action, subject, dict(data or {})))
            return await original(store, action, actor, subject, data)

        monkeypatch.setattr(entitlements, "record", record)
        card = await create_scannable_card(runtime)
        past = datetime.now(UTC) - timedelta(days=1)
        refused = await grant(client, runtime, card, "disability", past)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await grant(client, runtime, card, "flying", LATER)).status_code == 422
        unknown = await client.post(
            "/v1/admin/cards/T000000000000/entitlements",
            json={"kind": "disability", "expires_at": LATER.isoformat()},
            headers=admin_headers(runtime),
        )
        assert unknown.status_code == 404
        absent = await client.delete(
            f"/v1/admin/cards/{card.card_number}/entitlements/veteran_preferential",
            headers=admin_headers(runtime),
        )
        assert absent.status_code == 404
        assert absent.headers["content-type"] == "application/problem+json"
        granted = await grant(client, runtime, card, "veteran_preferential", LATER)
        assert granted.status_code == 200
        assert granted.json()["granted_by"] == "adm_test"
        withdrawn = await client.delete(
            f"/v1/admin/cards/{card.card_number}/entitlements/veteran_preferential",
            headers=admin_headers(runtime),
        )
        assert withdrawn.status_code == 204
        assert [(action, subject, data["kind"]) for action, subject, data in audited] == [
            ("entitlement.granted", str(card.id), "veteran_preferential"),
            ("entitlement.withdrawn", str(card.id), "veteran_preferential"),
        ]


class TestPseudonyms:
    async def test_stable_within_an_organisation_and_different_across(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card = await create_scannable_card(runtime)
        first = await create_scanner(client, runtime, scenes=["museum"])
        same_org = await create_scanner(client, runtime, first.organisation_id, scenes=["museum"])
        other = await create_scanner(client, runtime, scenes=["museum"])

        def pseudonym(body: dict[str, Any]) -> str:
            value: str = body["holder"]["pseudonym"]
            return value

        a = pseudonym(await verify(client, first, qr_token(runtime, card), "museum"))
        a_again = pseudonym(await verify(client, first, qr_token(runtime, card), "museum"))
        a_other_gate = pseudonym(await verify(client, same_org, qr_token(runtime, card), "museum"))
        b = pseudonym(await verify(client, other, qr_token(runtime, card), "museum"))
        assert a == a_again == a_other_gate
        assert a != b


class TestStoreHoldsNoPlaintext:
    async def test_no_name_or_document_number_in_the_store(
        self, client: httpx.AsyncClient, runtime: Runtime, everywhere: ScannerCredentials
    ) -> None:
        if not isinstance(runtime.store, RedisStore):
            pytest.skip("scans the Redis namespace")
        card = await create_scannable_card(runtime, name=NAME)
        assert (await grant(client, runtime, card, "disability", LATER)).status_code == 200
        for scene in ALL_SCENES:
            await verify(client, everywhere, qr_token(runtime, card), scene)
        values = await redis_values(runtime.store)
        assert values, "the namespace holds the card snapshot at least"
        for value in values:
            assert NAME.encode() not in value
            assert DOCUMENT_NUMBER.encode() not in value


async def redis_values(store: RedisStore) -> list[bytes]:
    """Every value of every key of the store's namespace, read by type (not DUMP, which may
    compress and so hide what it holds)."""
    redis = store._redis
    found: list[bytes] = []
    async for key in redis.scan_iter(match=store._prefix + "*"):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            found.append(await redis.get(key))
        elif kind == "hash":
            found.extend(b"%s=%s" % item for item in (await redis.hgetall(key)).items())
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                found.extend(b"%s=%s" % item for item in fields.items())
        elif kind in {"set"}:
            found.extend(await redis.smembers(key))
        elif kind == "zset":
            found.extend(await redis.zrange(key, 0, -1))
        elif kind == "list":
            found.extend(await redis.lrange(key, 0, -1))
    return found


class TestAuditLogKeepsNoView:
    def test_a_scans_audit_record_keeps_the_card_status_without_the_sealed_view(
        self, runtime: Runtime
    ) -> None:
        card_id = uuid.uuid4()
        view = AttributeView.of(NAME, "resident_id", DOCUMENT_NUMBER, None)
        snapshot = CardSnapshot.of(
            CardStatus.active, card_id, "张*丰", view.seal(runtime.pii, card_id)
        )
        fields = {
            **audit_fields("verify", "scn_1", "", {"scene": "hotel"}),
            "outcome": "first",
            "status": snapshot.encode().decode(),
        }
        kept = parse_entry(StreamEntry("1-0", fields)).data
        assert snapshot.view not in kept
        status = orjson.loads(kept)["status"]
        assert status == f"active|{card_id.hex}|张*丰"
        assert CardSnapshot.decode(status.encode()) == CardSnapshot.of(
            CardStatus.active, card_id, "张*丰"
        )
