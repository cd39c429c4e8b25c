"""Misuse signals: alerts raised off the hot path from persisted verify events, and what an
administrator does with them (close, credit-record notes, suspension through the lifecycle)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.audit.chain import AuditRecord
from app.cards.models import Card, CardStatus
from app.cards.snapshot import CardSnapshot
from app.misuse.watch import MisuseWatch
from app.runtime import Runtime
from tests.factories import (
    ActiveHolder,
    admin_headers,
    create_active_holder,
    create_scannable_card,
    create_scanner,
)

NANCHANG = {"latitude": 28.6829, "longitude": 115.8579}
URUMQI = {"latitude": 43.8256, "longitude": 87.6168}
ALERT_WAIT_SECONDS = 10.0


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def located_venue(
    client: httpx.AsyncClient, runtime: Runtime, name: str, where: dict[str, float]
) -> str:
    response = await client.post(
        "/v1/admin/organisations",
        json={
            "name": name,
            "venue_type": "museum",
            "region_code": "360100",
            "scenes": ["museum"],
            **where,
        },
        headers=admin_headers(runtime),
    )
    assert response.status_code == 201, response.text
    assert response.json()["latitude"] == where["latitude"]
    organisation_id: str = response.json()["id"]
    return organisation_id


async def alerts(client: httpx.AsyncClient, runtime: Runtime, **params: Any) -> list[Any]:
    response = await client.get(
        "/v1/admin/misuse/alerts", params=params, headers=admin_headers(runtime)
    )
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()
    return found


async def wait_for_alerts(client: httpx.AsyncClient, runtime: Runtime) -> list[Any]:
    """The background audit consumer persists the scans, then the watch raises alerts."""
    deadline = time.monotonic() + ALERT_WAIT_SECONDS
    while not (found := await alerts(client, runtime)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return found


def verify_event(card: Card, organisation: uuid.UUID, at: float) -> AuditRecord:
    snapshot = CardSnapshot.of(CardStatus.active, card.id, "张*")
    data = {"org": str(organisation), "outcome": "first", "status": snapshot.encode().decode()}
    return AuditRecord(
        uuid.uuid4().hex,
        datetime.fromtimestamp(at, UTC),
        "verify",
        "scn_test",
        "",
        orjson.dumps(data).decode(),
    )


class TestImpossibleTravelEndToEnd:
    async def test_one_card_valid_at_two_distant_venues_within_minutes_raises_an_alert(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder: ActiveHolder = await create_active_holder(client, app)
        nanchang = await located_venue(client, runtime, "Nanchang museum", NANCHANG)
        urumqi = await located_venue(client, runtime, "Urumqi museum", URUMQI)
        for venue in (nanchang, urumqi):
            scanner = await create_scanner(client, runtime, venue, ["museum"])
            token = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
            scanned = await client.post(
                "/v1/verify", json={"token": token, "scene": "museum"}, headers=scanner.headers
            )
            assert scanned.json()["verdict"] == "valid"

        found = await wait_for_alerts(client, runtime)

        assert [(a["kind"], a["card_number"], a["status"]) for a in found] == [
            ("impossible_travel", holder.card_number, "open")
        ]
        assert found[0]["details"]["from_organisation"] == nanchang
        assert found[0]["details"]["to_organisation"] == urumqi
        assert found[0]["details"]["distance_km"] > 2500


class TestWatch:
    async def test_more_scans_a_minute_than_the_setting_raise_one_alert(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card = await create_scannable_card(runtime)
        venue = uuid.uuid4()
        limit = runtime.settings.misuse_max_scans_per_minute
        start = (time.time() // 60) * 60
        events = [verify_event(card, venue, start + i) for i in range(limit + 3)]

        await MisuseWatch(runtime).on_persisted(events)

        found = await alerts(client, runtime)
        # One batch brings all the minute's scans at once: one alert, with the count it saw.
        assert [(a["kind"], a["details"]["scans"]) for a in found] == [("scan_rate", limit + 3)]

    async def test_a_redelivered_event_is_not_compared_with_itself(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card = await create_scannable_card(runtime)
        event = verify_event(card, uuid.uuid4(), time.time())
        watch = MisuseWatch(runtime)
        await watch.on_persisted([event])
        await watch.on_persisted([event])
        assert await alerts(client, runtime) == []

    @pytest.mark.parametrize(
        "data",
        [
            {"org": "not-a-uuid", "outcome": "first", "status": "active|00|x"},
            {"outcome": "again", "status": "active|00|x"},
            {"outcome": "first", "status": ""},
            {"outcome": "first", "status": "garbage"},
        ],
    )
    async def test_events_that_are_not_valid_scans_are_ignored(
        self, client: httpx.AsyncClient, runtime: Runtime, data: dict[str, str]
    ) -> None:
        event = AuditRecord(
            "e1", datetime.now(UTC), "verify", "scn", "", orjson.dumps(data).decode()
        )
        await MisuseWatch(runtime).on_persisted([event] * 20)
        assert await alerts(client, runtime) == []


async def raise_alert(runtime: Runtime, card: Card) -> None:
    events = [
        verify_event(card, uuid.uuid4(), time.time())
        for _ in range(runtime.settings.misuse_max_scans_per_minute + 1)
    ]
    await MisuseWatch(runtime).on_persisted(events)


class TestAdministration:
    async def test_close_an_alert_once(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        await raise_alert(runtime, await create_scannable_card(runtime))
        (alert,) = await alerts(client, runtime, status="open")
        path = f"/v1/admin/misuse/alerts/{alert['id']}/close"
        closed = await client.post(path, json={"note": "checked"}, headers=admin_headers(runtime))
        assert closed.status_code == 200, closed.text
        assert (closed.json()["status"], closed.json()["closed_by"]) == ("closed", "adm_test")
        assert await alerts(client, runtime, status="open") == []
        again = await client.post(path, json={}, headers=admin_headers(runtime))
        assert again.status_code == 409
        unknown = await client.post(
            f"/v1/admin/misuse/alerts/{uuid.uuid4()}/close", json={}, headers=admin_headers(runtime)
        )
        assert unknown.status_code == 404

    async def test_credit_record_notes_are_kept_per_card(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card = await create_scannable_card(runtime)
        path = f"/v1/admin/cards/{card.card_number}/credit-records"
        written = await client.post(
            path, json={"note": "lent the card; warned"}, headers=admin_headers(runtime)
        )
        assert written.status_code == 201, written.text
        listed = await client.get(path, headers=admin_headers(runtime))
        assert [(r["note"], r["author"]) for r in listed.json()] == [
            ("lent the card; warned", "adm_test")
        ]
        empty = await client.post(path, json={"note": "  "}, headers=admin_headers(runtime))
        assert empty.status_code == 422

    async def test_holders_cannot_read_or_write_misuse_data(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        listed = await client.get("/v1/admin/misuse/alerts", headers=holder.headers)
        written = await client.post(
            f"/v1/admin/cards/{holder.card_number}/credit-records",
            json={"note": "x"},
            headers=holder.headers,
        )
        closed = await client.post(
            f"/v1/admin/misuse/alerts/{uuid.uuid4()}/close", json={}, headers=holder.headers
        )
        assert [r.status_code for r in (listed, written, closed)] == [401, 401, 401]
