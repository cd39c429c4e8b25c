"""The scene catalog as data: public, versioned, with city supplements filed with the province.

The catalog is public (`GET /v1/catalog`, cacheable); the province publishes versions; a city
proposes a supplement, which is visible (under `?region=` of that city only) once the
province approves it, and never when rejected. Every worker serves from its own snapshot,
which a change reaches within a second (`catalog-changes`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from app.catalog.defaults import DEFAULT_SCENES
from app.config import Settings
from app.runtime import Runtime
from tests.api.test_verify import counted_statements, verify
from tests.factories import (
    admin_headers,
    create_organisation,
    create_scannable_card,
    create_scanner,
    persisted_audit,
    qr_token,
)

OLD_CODES = {
    "hospital",
    "bus",
    "metro",
    "library",
    "museum",
    "scenic_spot",
    "hotel",
    "service_hall",
    "sports_venue",
    "rail",
}
"""The codes of the former hard-coded catalog: scanners in the field use them."""

NANCHANG, NANCHANG_DISTRICT, JIUJIANG = "360100", "360102", "360400"
EFFECT_BOUND_SECONDS = 1.0

TRAM: dict[str, Any] = {
    "code": "tram",
    "title_zh": "有轨电车乘车",
    "title_en": "Tram boarding",
    "domain": "transport",
    "attributes": ["pseudonym"],
    "entitlements": ["transport_enabled"],
}


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


def codes(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {scene["code"] for scene in response.json()["scenes"]}


async def propose(
    client: httpx.AsyncClient, runtime: Runtime, region: str = NANCHANG, scene: Any = None
) -> int:
    response = await client.post(
        "/v1/admin/catalog/supplements",
        json={"region": region, "scenes": [scene or TRAM], "note": "trams"},
        headers=admin_headers(runtime, "adm_city"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "proposed"
    assert response.json()["created_by"] == "adm_city"
    number: int = response.json()["number"]
    return number


async def decide(
    client: httpx.AsyncClient, runtime: Runtime, number: int, decision: str
) -> httpx.Response:
    return await client.post(
        f"/v1/admin/catalog/supplements/{number}/decision",
        json={"decision": decision, "reason": "checked"},
        headers=admin_headers(runtime, "adm_province"),
    )


class TestPublicCatalog:
    async def test_the_default_catalog_is_public_with_every_scene_and_its_allow_list(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/catalog")
        body = response.json()
        assert body["province"] == "360000"
        assert body["version"] == 1
        assert body["supplements"] == []
        assert codes(response) >= OLD_CODES | {
            "hospital_settlement",
            "pharmacy",
            "ferry",
            "air_boarding",
            "social_insurance",
            "employment_services",
            "elderly_care",
        }
        hotel = next(scene for scene in body["scenes"] if scene["code"] == "hotel")
        assert hotel["title_zh"] == "酒店入住登记"
        assert hotel["attributes"] == ["document_number", "document_type", "full_name", "pseudonym"]
        bus = next(scene for scene in body["scenes"] if scene["code"] == "bus")
        assert "elderly_preferential" in bus["entitlements"]

    async def test_it_is_cacheable_and_an_unchanged_catalog_answers_304(
        self, client: httpx.AsyncClient
    ) -> None:
        first = await client.get("/v1/catalog")
        assert first.headers["cache-control"].startswith("public, max-age=")
        etag = first.headers["etag"]
        again = await client.get("/v1/catalog", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        other = await client.get("/v1/catalog", headers={"If-None-Match": '"stale"'})
        assert other.status_code == 200

    async def test_version_1_is_the_seeded_default_and_unknown_versions_are_404(
        self, client: httpx.AsyncClient
    ) -> None:
        first = await client.get("/v1/catalog/versions/1")
        assert first.status_code == 200, first.text
        assert first.json()["kind"] == "provincial"
        assert first.json()["status"] == "current"
        assert first.json()["scenes"] == list(DEFAULT_SCENES)
        assert "created_by" not in first.json()
        missing = await client.get("/v1/catalog/versions/999")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

    async def test_a_new_provincial_version_takes_effect_and_the_old_one_is_kept(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        before = await client.get("/v1/catalog")
        scenes = [*DEFAULT_SCENES, {**TRAM, "code": "cable_car", "title_en": "Cable car"}]
        published = await client.post(
            "/v1/admin/catalog/versions",
            json={"scenes": scenes, "note": "cable cars"},
            headers=admin_headers(runtime, "adm_province"),
        )
        assert published.status_code == 201, published.text
        assert published.json()["status"] == "current"
        assert published.json()["based_on"] == 1
        number = published.json()["number"]

        after = await client.get("/v1/catalog", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert after.json()["version"] == number
        assert "cable_car" in codes(after)
        old = await client.get("/v1/catalog/versions/1")
        assert old.json()["status"] == "superseded"
        history = await client.get("/v1/admin/catalog/versions", headers=admin_headers(runtime))
        newest = history.json()[0]
        assert (newest["number"], newest["created_by"]) == (number, "adm_province")
        assert [v["status"] for v in history.json()] == ["current", "superseded"]

    async def test_a_provincial_version_with_a_repeated_code_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await client.post(
            "/v1/admin/catalog/versions",
            json={"scenes": [TRAM, TRAM]},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422
        assert response.json()["scenes"] == ["tram"]
        assert (await client.get("/v1/catalog")).json()["version"] == 1

    async def test_the_catalog_administration_needs_an_admin(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await client.get("/v1/admin/catalog/versions")).status_code == 401
        refused = await client.post(
            "/v1/admin/catalog/supplements", json={"region": NANCHANG, "scenes": [TRAM]}
        )
        assert refused.status_code == 401


class TestCitySupplement:
    async def test_proposed_is_invisible_approved_is_visible_under_that_city_only(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        number = await propose(client, runtime)
        assert "tram" not in codes(await client.get("/v1/catalog", params={"region": NANCHANG}))
        assert (await client.get(f"/v1/catalog/versions/{number}")).status_code == 404

        approved = await decide(client, runtime, number, "approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "approved"
        assert approved.json()["decided_by"] == "adm_province"

        for region in (NANCHANG, NANCHANG_DISTRICT):
            nanchang = await client.get("/v1/catalog", params={"region": region})
            assert "tram" in codes(nanchang)
            assert nanchang.json()["supplements"] == [{"region": NANCHANG, "version": number}]
            tram = next(s for s in nanchang.json()["scenes"] if s["code"] == "tram")
            assert tram["region"] == NANCHANG
        assert "tram" not in codes(await client.get("/v1/catalog", params={"region": JIUJIANG}))
        assert "tram" not in codes(await client.get("/v1/catalog"))
        published = await client.get(f"/v1/catalog/versions/{number}")
        assert published.status_code == 200
        assert published.json()["region"] == NANCHANG

    async def test_a_rejected_supplement_is_never_visible(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        number = await propose(client, runtime)
        rejected = await decide(client, runtime, number, "reject")
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected"
        assert "tram" not in codes(await client.get("/v1/catalog", params={"region": NANCHANG}))
        assert (await client.get(f"/v1/catalog/versions/{number}")).status_code == 404
        again = await decide(client, runtime, number, "approve")
        assert again.status_code == 409
        assert "tram" not in codes(await client.get("/v1/catalog", params={"region": NANCHANG}))

    async def test_a_later_approved_supplement_replaces_the_citys_earlier_one(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        first = await propose(client, runtime)
        assert (await decide(client, runtime, first, "approve")).status_code == 200
        ferry = {**TRAM, "code": "river_bus", "title_en": "River bus"}
        second = await propose(client, runtime, scene=ferry)
        assert (await decide(client, runtime, second, "approve")).status_code == 200
        nanchang = codes(await client.get("/v1/catalog", params={"region": NANCHANG}))
        assert "river_bus" in nanchang
        assert "tram" not in nanchang
        kept = await client.get(f"/v1/catalog/versions/{first}")
        assert kept.json()["status"] == "superseded"

    @pytest.mark.parametrize(
        ("region", "scene"),
        [
            (NANCHANG, {**TRAM, "code": "museum"}),  # a provincial code
            ("360000", TRAM),  # the province is not a city
            ("110100", TRAM),  # a city of another province
        ],
    )
    async def test_a_supplement_that_is_no_city_scene_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, region: str, scene: Any
    ) -> None:
        response = await client.post(
            "/v1/admin/catalog/supplements",
            json={"region": region, "scenes": [scene]},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"

    async def test_another_city_cannot_reuse_an_approved_supplement_code(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        assert (await decide(client, runtime, await propose(client, runtime), "approve")).is_success
        response = await client.post(
            "/v1/admin/catalog/supplements",
            json={"region": JIUJIANG, "scenes": [TRAM]},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422

    async def test_deciding_an_unknown_supplement_is_404(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        assert (await decide(client, runtime, 999, "approve")).status_code == 404
        assert (await decide(client, runtime, 1, "approve")).status_code == 404  # provincial


class TestScenesOfOrganisations:
    async def test_an_approved_city_scene_is_usable_in_that_city_only_and_verifies(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        number = await propose(client, runtime)
        body = {"name": "Tram line 1", "venue_type": "tram", "scenes": ["tram", "bus"]}
        headers = admin_headers(runtime)
        early = await client.post(
            "/v1/admin/organisations", json={**body, "region_code": NANCHANG}, headers=headers
        )
        assert early.status_code == 422
        assert early.json()["type"].endswith("unknown-scene")
        assert (await decide(client, runtime, number, "approve")).status_code == 200

        elsewhere = await client.post(
            "/v1/admin/organisations", json={**body, "region_code": JIUJIANG}, headers=headers
        )
        assert elsewhere.status_code == 422
        created = await client.post(
            "/v1/admin/organisations",
            json={**body, "region_code": NANCHANG_DISTRICT},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["scenes"] == ["bus", "tram"]
        scanner = await create_scanner(client, runtime, created.json()["id"], ["tram"])
        card = await create_scannable_card(runtime)
        await verify(client, scanner, qr_token(runtime, card), "tram")  # warm the card
        with counted_statements(runtime) as statements:
            answer = await verify(client, scanner, qr_token(runtime, card), "tram")
        assert answer.json()["verdict"] == "valid"
        assert set(answer.json()["holder"]) == {"pseudonym"}  # the tram scene's allow-list
        assert statements == []

    async def test_scanners_with_the_old_scene_codes_still_verify(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card = await create_scannable_card(runtime)
        for code in sorted(OLD_CODES):
            organisation = await create_organisation(client, runtime, scenes=[code])
            scanner = await create_scanner(client, runtime, organisation, [code])
            answer = await verify(client, scanner, qr_token(runtime, card), code)
            assert answer.json()["verdict"] == "valid", code
            assert answer.json()["scene"] == code


class TestAudit:
    async def test_every_step_is_audited(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        number = await propose(client, runtime)
        assert (await decide(client, runtime, number, "approve")).status_code == 200
        proposed = await persisted_audit(runtime, "catalog.propose")
        approved = await persisted_audit(runtime, "catalog.approve")
        assert proposed[0]["region"] == approved[0]["region"] == NANCHANG
        assert approved[0]["scenes"] == "tram"


@pytest.fixture
async def second_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another API instance (another worker or machine) on the same database and Redis."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as http:
            yield http


async def appears_within(http: httpx.AsyncClient, region: str, code: str, bound: float) -> bool:
    deadline = time.monotonic() + bound
    while True:
        if code in codes(await http.get("/v1/catalog", params={"region": region})):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("settings", ["servers"], indirect=True)
async def test_an_approval_reaches_another_instance_sharing_redis_within_a_second(
    client: httpx.AsyncClient, runtime: Runtime, second_app: httpx.AsyncClient
) -> None:
    number = await propose(client, runtime)
    assert "tram" not in codes(await second_app.get("/v1/catalog", params={"region": NANCHANG}))
    assert (await decide(client, runtime, number, "approve")).status_code == 200
    assert await appears_within(second_app, NANCHANG, "tram", EFFECT_BOUND_SECONDS)
