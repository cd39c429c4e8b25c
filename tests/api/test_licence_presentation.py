"""Showing an e-licence: a single-use presentation QR, read by the scenes that may read its
type, refused elsewhere, replay-protected like the card QR, and in the access log."""

from __future__ import annotations

import httpx
import pytest
import segno
from fastapi import FastAPI

from app.runtime import Runtime
from tests.api.test_access_log import wait_for_entries
from tests.api.test_licences import licence, push
from tests.departments import Department, create_department
from tests.factories import (
    ActiveHolder,
    ScannerCredentials,
    create_active_holder,
    create_organisation,
    create_scanner,
)
from token_service import decode_token
from token_service.codec import PRESENTATION_LICENCE


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    the_runtime: Runtime = app.state.runtime
    return the_runtime


async def scanner_for(
    client: httpx.AsyncClient, runtime: Runtime, scene: str
) -> ScannerCredentials:
    organisation = await create_organisation(client, runtime, scenes=[scene], name=scene)
    return await create_scanner(client, runtime, organisation, scenes=[scene])


async def verify(
    client: httpx.AsyncClient,
    scanner: ScannerCredentials,
    token: str,
    scene: str,
    key: str | None = None,
) -> dict[str, object]:
    headers = dict(scanner.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    response = await client.post(
        "/v1/verify", json={"token": token, "scene": scene}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.fixture
async def linked(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
) -> tuple[Department, ActiveHolder, str]:
    holder = await create_active_holder(client, app)
    traffic = await create_department(client, runtime)
    pushed = await push(client, traffic, traffic.sign(licence(traffic, holder.card)))
    assert pushed.status_code == 201, pushed.text
    return traffic, holder, pushed.json()["licence_id"]


async def present(client: httpx.AsyncClient, holder: ActiveHolder, licence_id: str) -> str:
    response = await client.post(
        f"/v1/me/licences/{licence_id}/presentation", headers=holder.headers
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


class TestPresentation:
    async def test_a_traffic_scanner_reads_the_licence_a_hotel_gets_scene_not_allowed(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        linked: tuple[Department, ActiveHolder, str],
    ) -> None:
        traffic, holder, licence_id = linked
        mine = (await client.get("/v1/me/licences", headers=holder.headers)).json()
        assert mine[0]["verification"]["verified"] is True
        token = await present(client, holder, licence_id)
        hotel = await scanner_for(client, runtime, "hotel")
        refused = await verify(client, hotel, token, "hotel")
        assert refused["verdict"] == "scene_not_allowed"
        assert "holder" not in refused or refused["holder"] is None
        police = await scanner_for(client, runtime, "traffic_check")
        answer = await verify(client, police, token, "traffic_check")
        assert answer["verdict"] == "valid", answer
        shown = answer["holder"]
        assert isinstance(shown, dict)
        assert shown["licence"] == {
            "type": "driving_licence",
            "issuer": f"{traffic.code} Department {traffic.code}",
            "number": holder.card.document_number,
            "holder_name": holder.card.name,
            "category": "C1",
            "valid_from": licence(traffic, holder.card)["valid_from"],
            "valid_until": licence(traffic, holder.card)["valid_until"],
            "status": "valid",
            "verified": True,
            "reason": None,
        }
        entries = await wait_for_entries(client, holder, 1)
        assert [(e["source"], e["scene"]) for e in entries] == [("licence_scan", "traffic_check")]
        assert "licence:driving_licence" in entries[0]["attributes"]

    async def test_the_qr_carries_no_personal_data_and_fits_version_8_at_m(
        self, client: httpx.AsyncClient, linked: tuple[Department, ActiveHolder, str]
    ) -> None:
        _, holder, licence_id = linked
        token = await present(client, holder, licence_id)
        assert segno.make(token, error="m", boost_error=False).version <= 8
        claims = decode_token(token).claims
        assert claims.presentation == PRESENTATION_LICENCE
        assert claims.status_index is None
        for personal in (holder.card.document_number, holder.card.name, holder.card_number):
            assert personal not in token
        # The sealed id is not the card's handle: two presentations cannot be linked.
        again = decode_token(await present(client, holder, licence_id)).claims
        assert again.sealed_handle != claims.sealed_handle

    async def test_replay_rules_are_the_card_qrs(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        linked: tuple[Department, ActiveHolder, str],
    ) -> None:
        _, holder, licence_id = linked
        token = await present(client, holder, licence_id)
        rental = await scanner_for(client, runtime, "car_rental_checkin")
        first = await verify(client, rental, token, "car_rental_checkin", key="scan-1")
        assert first["verdict"] == "valid"
        retry = await verify(client, rental, token, "car_rental_checkin", key="scan-1")
        assert retry["verdict"] == "valid"
        assert retry["holder"] == first["holder"]
        assert (await verify(client, rental, token, "car_rental_checkin"))["verdict"] == "replayed"
        other = await scanner_for(client, runtime, "car_rental_checkin")
        assert (await verify(client, other, token, "car_rental_checkin", key="scan-1"))[
            "verdict"
        ] == "replayed"
        entries = await wait_for_entries(client, holder, 1)
        assert len(entries) == 1  # one read, not one per answer

    async def test_a_scene_that_reads_driving_licences_only_refuses_another_type(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        linked: tuple[Department, ActiveHolder, str],
    ) -> None:
        traffic, holder, _ = linked
        registration = licence(
            traffic, holder.card, document_id="VR-1", type_="vehicle_registration"
        )
        pushed = await push(client, traffic, traffic.sign(registration))
        token = await present(client, holder, pushed.json()["licence_id"])
        rental = await scanner_for(client, runtime, "car_rental_checkin")
        answer = await verify(client, rental, token, "car_rental_checkin")
        assert answer["verdict"] == "scene_not_allowed"

    async def test_another_holders_licence_cannot_be_presented(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        linked: tuple[Department, ActiveHolder, str],
    ) -> None:
        _, _, licence_id = linked
        stranger = await create_active_holder(client, app)
        response = await client.post(
            f"/v1/me/licences/{licence_id}/presentation", headers=stranger.headers
        )
        assert response.status_code == 404
