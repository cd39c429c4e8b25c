"""The holder's access log: every disclosure of the card's data, written by the audit consumer
from the audit stream (online scans, offline scans uploaded later, operator reads), read by
the holder newest first, a page at a time, filtered, or as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlmodel import func, select

from app.accesslog.models import AccessLogEntry
from app.audit.consumer import AuditConsumer
from app.audit.log import audit_fields
from app.audit.models import AuditEvent
from app.cards.models import Card, CardStatus
from app.cards.snapshot import CardSnapshot
from app.catalog.defaults import DEFAULT_SCENES
from app.db import Database
from app.runtime import Runtime
from app.store import Store
from tests.factories import (
    ActiveHolder,
    ScannerCredentials,
    admin_headers,
    create_active_holder,
    create_organisation,
    create_scannable_card,
    create_scanner,
)

APPEARS_WITHIN = 2.0
"""The acceptance bound: a scan is in the holder's log this soon (polled, never slept)."""


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def access_log(
    client: httpx.AsyncClient, holder: ActiveHolder, **params: Any
) -> dict[str, Any]:
    response = await client.get("/v1/me/access-log", params=params, headers=holder.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    page: dict[str, Any] = response.json()
    return page


async def wait_for_entries(
    client: httpx.AsyncClient, holder: ActiveHolder, count: int, within: float = APPEARS_WITHIN
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        entries: list[dict[str, Any]] = (await access_log(client, holder, limit=1000))["entries"]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.05)


async def scan(
    client: httpx.AsyncClient, holder: ActiveHolder, scanner: ScannerCredentials, scene: str
) -> str:
    token, _ = await scan_answer(client, holder, scanner, scene)
    return token


async def scan_answer(
    client: httpx.AsyncClient, holder: ActiveHolder, scanner: ScannerCredentials, scene: str
) -> tuple[str, dict[str, Any]]:
    """The token scanned and the verify answer (valid)."""
    token: str = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
    answer = await client.post(
        "/v1/verify", json={"token": token, "scene": scene}, headers=scanner.headers
    )
    assert answer.json()["verdict"] == "valid", answer.text
    body: dict[str, Any] = answer.json()
    return token, body


async def catalog_in_effect(runtime: Runtime, scene: str, attributes: list[str]) -> None:
    """Waits until this worker's catalog gives `scene` these attributes."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        catalogued = runtime.catalog.scene(scene)
        if catalogued is not None and list(catalogued.attribute_names) == attributes:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{scene} never had {attributes}")


class TestOnlineScans:
    async def test_a_scan_appears_in_the_holders_log_within_two_seconds(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        organisation = await create_organisation(client, runtime, ["museum"], name="省博物馆")
        scanner = await create_scanner(client, runtime, organisation, ["museum"])
        started = datetime.now(UTC)

        await scan(client, holder, scanner, "museum")
        entries = await wait_for_entries(client, holder, 1)

        assert len(entries) == 1
        entry = entries[0]
        assert {k: v for k, v in entry.items() if k not in ("id", "occurred_at")} == {
            "source": "online_scan",
            "organisation_id": organisation,
            "organisation": "省博物馆",
            "venue": "Gate",
            "region_code": "360100",
            "scene": "museum",
            "attributes": ["masked_name", "pseudonym"],
            "outcome": "valid",
            "party": None,
        }
        assert datetime.fromisoformat(entry["occurred_at"]) >= started - timedelta(seconds=1)

    async def test_replays_and_refusals_disclose_nothing_and_are_not_logged(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        token = await scan(client, holder, scanner, "museum")
        replayed = await client.post(
            "/v1/verify", json={"token": token, "scene": "museum"}, headers=scanner.headers
        )
        refused = await client.post(
            "/v1/verify", json={"token": token, "scene": "hotel"}, headers=scanner.headers
        )
        assert replayed.json()["verdict"] == "replayed"
        assert refused.json()["verdict"] == "scene_not_allowed"

        await persisted_verify_events(runtime, 3)

        assert len(await wait_for_entries(client, holder, 1)) == 1

    async def test_another_holder_never_sees_the_scan(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        scanned = await create_active_holder(client, app)
        other = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        await scan(client, scanned, scanner, "museum")
        assert len(await wait_for_entries(client, scanned, 1)) == 1

        assert (await access_log(client, other))["entries"] == []

    async def test_a_scan_of_a_card_the_store_did_not_know_is_logged_by_its_handle(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        async with runtime.database.session() as session:
            card = await session.get(Card, uuid.UUID(holder.card.card_id))
            assert card is not None
            handle = card.handle
        token: str = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
        await runtime.store.delete(f"card:{handle}")

        answer = await client.post(
            "/v1/verify", json={"token": token, "scene": "museum"}, headers=scanner.headers
        )

        assert answer.json()["verdict"] == "valid"
        assert len(await wait_for_entries(client, holder, 1)) == 1


class TestDisclosedAttributes:
    """An entry names the attributes the answer carried, under the catalog in effect when the
    card was scanned: not the default catalog's list, and not one of a later version."""

    async def test_a_scene_the_province_changed_is_logged_with_its_new_attributes(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        museum = ["age_band", "masked_name", "pseudonym"]
        scenes = [
            {**row, "attributes": museum} if row["code"] == "museum" else row
            for row in DEFAULT_SCENES
        ]
        published = await client.post(
            "/v1/admin/catalog/versions",
            json={"scenes": scenes, "note": "museums see the age band"},
            headers=admin_headers(runtime, "adm_province"),
        )
        assert published.status_code == 201, published.text
        await catalog_in_effect(runtime, "museum", museum)

        _, answer = await scan_answer(client, holder, scanner, "museum")
        entries = await wait_for_entries(client, holder, 1)

        assert sorted(answer["holder"]) == museum
        assert [entry["attributes"] for entry in entries] == [museum]

    async def test_a_scene_as_the_default_catalog_has_it_names_no_list_in_its_event(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        """The consumer reads the default catalog's list for an event naming none: the usual
        scan's event stays as short as it was."""
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["hotel"])

        _, answer = await scan_answer(client, holder, scanner, "hotel")
        entries = await wait_for_entries(client, holder, 1)
        await persisted_verify_events(runtime, 1)

        hotel = ["document_number", "document_type", "full_name", "pseudonym"]
        assert sorted(answer["holder"]) == hotel
        assert [entry["attributes"] for entry in entries] == [hotel]
        async with runtime.database.session() as session:
            events = (
                await session.exec(select(AuditEvent.data).where(AuditEvent.action == "verify"))
            ).all()
        assert events and all("attributes" not in orjson.loads(data) for data in events)

    async def test_a_city_scene_is_logged_with_its_own_attributes(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        city_pass = {
            "code": "city_pass",
            "title_zh": "市民卡通行",
            "title_en": "City pass",
            "domain": "transport",
            "attributes": ["full_name", "pseudonym"],
        }
        proposed = await client.post(
            "/v1/admin/catalog/supplements",
            json={"region": "360100", "scenes": [city_pass], "note": "city pass"},
            headers=admin_headers(runtime, "adm_city"),
        )
        assert proposed.status_code == 201, proposed.text
        approved = await client.post(
            f"/v1/admin/catalog/supplements/{proposed.json()['number']}/decision",
            json={"decision": "approve", "reason": "checked"},
            headers=admin_headers(runtime, "adm_province"),
        )
        assert approved.status_code == 200, approved.text
        await catalog_in_effect(runtime, "city_pass", ["full_name", "pseudonym"])
        holder = await create_active_holder(client, app)
        organisation = await create_organisation(client, runtime, ["city_pass"], name="市民卡")
        scanner = await create_scanner(client, runtime, organisation, ["city_pass"])

        _, answer = await scan_answer(client, holder, scanner, "city_pass")
        entries = await wait_for_entries(client, holder, 1)

        assert sorted(answer["holder"]) == ["full_name", "pseudonym"]
        assert [entry["attributes"] for entry in entries] == [["full_name", "pseudonym"]]


async def persisted_verify_events(runtime: Runtime, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with runtime.database.session() as session:
            stored = (
                await session.exec(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == "verify")
                )
            ).one()
        if stored >= count:
            return
        await asyncio.sleep(0.05)


class TestOperatorReads:
    async def test_an_operator_reading_the_card_shows_in_the_log(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        read = await client.get(
            f"/v1/admin/cards/{holder.card_number}/credit-records",
            headers=admin_headers(runtime, "adm_counter_7"),
        )
        assert read.status_code == 200, read.text

        entries = await wait_for_entries(client, holder, 1)

        assert [(e["source"], e["venue"], e["attributes"], e["outcome"]) for e in entries] == [
            ("operator_read", "adm_counter_7", ["credit_records"], "read")
        ]


class TestReading:
    @pytest.fixture
    async def scanned(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> tuple[ActiveHolder, str, list[dict[str, Any]]]:
        """A holder scanned four times, twice each at two organisations, alternating."""
        holder = await create_active_holder(client, app)
        first = await create_organisation(client, runtime, ["museum"], name="Museum")
        second = await create_organisation(client, runtime, ["library"], name="Library")
        museum = await create_scanner(client, runtime, first, ["museum"])
        library = await create_scanner(client, runtime, second, ["library"])
        for scanner, scene in [(museum, "museum"), (library, "library")] * 2:
            await scan(client, holder, scanner, scene)
        entries = await wait_for_entries(client, holder, 4, within=10)
        assert len(entries) == 4
        return holder, first, entries

    async def test_entries_come_newest_first_a_page_at_a_time(
        self, client: httpx.AsyncClient, scanned: tuple[ActiveHolder, str, list[dict[str, Any]]]
    ) -> None:
        holder, _, entries = scanned
        times = [datetime.fromisoformat(entry["occurred_at"]) for entry in entries]
        assert times == sorted(times, reverse=True)

        first = await access_log(client, holder, limit=3)
        second = await access_log(client, holder, limit=3, cursor=first["next_cursor"])

        assert first["entries"] == entries[:3]
        assert second == {"entries": entries[3:], "next_cursor": None}

    async def test_filters_by_organisation_and_time(
        self, client: httpx.AsyncClient, scanned: tuple[ActiveHolder, str, list[dict[str, Any]]]
    ) -> None:
        holder, museum, entries = scanned
        at_museum = await access_log(client, holder, organisation_id=museum)
        assert at_museum["entries"] == [e for e in entries if e["organisation_id"] == museum]
        assert len(at_museum["entries"]) == 2

        pivot = entries[1]["occurred_at"]
        assert (await access_log(client, holder, since=pivot))["entries"] == entries[:2]
        assert (await access_log(client, holder, until=pivot))["entries"] == entries[2:]

    async def test_exports_csv(
        self, client: httpx.AsyncClient, scanned: tuple[ActiveHolder, str, list[dict[str, Any]]]
    ) -> None:
        holder, _, entries = scanned
        response = await client.get(
            "/v1/me/access-log",
            params={"limit": 3},
            headers={**holder.headers, "Accept": "text/csv"},
        )

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [row["id"] for row in rows] == [entry["id"] for entry in entries[:3]]
        assert [row["organisation"] for row in rows] == [e["organisation"] for e in entries[:3]]
        assert rows[0]["attributes"] == "masked_name pseudonym"
        follow = await access_log(client, holder, cursor=response.headers["x-next-cursor"])
        assert follow["entries"] == entries[3:]

    async def test_csv_cells_never_start_a_formula(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        hostile = '=HYPERLINK("http://evil.example","x")'
        organisation = await create_organisation(client, runtime, ["museum"], name=hostile)
        await scan(client, holder, await create_scanner(client, runtime, organisation), "museum")
        assert len(await wait_for_entries(client, holder, 1)) == 1

        response = await client.get(
            "/v1/me/access-log", headers={**holder.headers, "Accept": "text/csv"}
        )

        [row] = list(csv.DictReader(io.StringIO(response.text)))
        assert row["organisation"] == "'" + hostile

    @pytest.mark.parametrize("cursor", ["not-a-cursor", "", "!!!", "MjAyNnx4"])
    async def test_a_forged_cursor_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, cursor: str
    ) -> None:
        holder = await create_active_holder(client, app)
        response = await client.get(
            "/v1/me/access-log", params={"cursor": cursor}, headers=holder.headers
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"

    async def test_needs_a_holder(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        response = await client.get("/v1/me/access-log", headers=admin_headers(runtime))
        assert response.status_code in (401, 403)


class TestOfflineScans:
    async def test_an_uploaded_scan_log_reaches_the_access_log_once(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        token: str = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
        scanned_at = datetime.now(UTC).replace(microsecond=0)
        body = {
            "scans": [
                {
                    "scan_id": "gate-1:0001",
                    "token": token,
                    "scanned_at": scanned_at.isoformat(),
                    "scene": "museum",
                    "verdict": "valid",
                },
                {
                    "scan_id": "gate-1:0002",
                    "token": token,
                    "scanned_at": scanned_at.isoformat(),
                    "scene": "museum",
                    "verdict": "card_lost",
                },
                {
                    "scan_id": "gate-1:0003",
                    "token": "SSC1:NOT-A-TOKEN",
                    "scanned_at": scanned_at.isoformat(),
                    "verdict": "valid",
                },
            ]
        }

        first = await client.post("/v1/scanner/scans", json=body, headers=scanner.headers)
        again = await client.post("/v1/scanner/scans", json=body, headers=scanner.headers)

        assert first.status_code == again.status_code == 200, first.text
        assert first.json() == again.json()
        assert first.json()["accepted"] == ["gate-1:0001"]
        assert set(first.json()["ignored"]) == {"gate-1:0002", "gate-1:0003"}
        entries = await wait_for_entries(client, holder, 1)
        await persisted_actions(runtime, "verify.offline", 1)
        entries = (await access_log(client, holder))["entries"]
        assert len(entries) == 1
        assert entries[0]["source"] == "offline_scan"
        assert entries[0]["scene"] == "museum"
        assert entries[0]["attributes"] == []  # an offline answer discloses no attribute
        assert datetime.fromisoformat(entries[0]["occurred_at"]) == scanned_at

    async def test_a_scan_time_outside_the_tokens_validity_is_ignored(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        token: str = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
        long_ago = datetime.now(UTC) - timedelta(days=2)
        body = {
            "scans": [
                {
                    "scan_id": "s1",
                    "token": token,
                    "scanned_at": long_ago.isoformat(),
                    "verdict": "valid",
                }
            ]
        }
        answer = await client.post("/v1/scanner/scans", json=body, headers=scanner.headers)
        assert answer.status_code == 200
        assert answer.json()["accepted"] == []

    async def test_needs_a_scanner_and_a_well_formed_body(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        denied = await client.post("/v1/scanner/scans", json={"scans": []}, headers=holder.headers)
        malformed = await client.post(
            "/v1/scanner/scans", json={"scans": []}, headers=scanner.headers
        )
        assert denied.status_code in (401, 403)
        assert malformed.status_code == 422

    async def test_a_disabled_scanner_uploads_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        holder = await create_active_holder(client, app)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        token: str = (await client.get("/v1/me/qr", headers=holder.headers)).json()["token"]
        disabled = await client.post(
            f"/v1/admin/scanners/{scanner.client_id}/disable", headers=admin_headers(runtime)
        )
        assert disabled.status_code == 200, disabled.text
        scan = {
            "scan_id": "s1",
            "token": token,
            "scanned_at": datetime.now(UTC).isoformat(),
            "verdict": "valid",
        }

        answer = await client.post(
            "/v1/scanner/scans", json={"scans": [scan]}, headers=scanner.headers
        )

        assert answer.status_code == 401
        assert answer.json()["type"].endswith("scanner-disabled")


async def persisted_actions(runtime: Runtime, action: str, count: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        async with runtime.database.session() as session:
            stored = (
                await session.exec(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
                )
            ).one()
        if stored >= count or time.monotonic() > deadline:
            return int(stored)
        await asyncio.sleep(0.05)


# --- the consumer killed mid-stream ----------------------------------------------------------

PRIVATE_STREAM = "audit-access-log-test"
"""Not the app's stream: the app's own consumer must not take these entries."""


class CrashingDatabase:
    """The database as a process killed mid-batch sees it: transaction number `crash_at`
    (from 0) dies (cancelled) once opened, after the consumer read its batch and before it
    committed; the ones before it commit."""

    def __init__(self, database: Database, crash_at: int) -> None:
        self._database = database
        self._before_crash = crash_at

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        async with self._database.session() as session:
            if self._before_crash == 0:
                raise asyncio.CancelledError
            self._before_crash -= 1
            yield session


class KilledAtAck:
    """The store as a process killed between commit and acknowledgement sees it."""

    def __init__(self, store: Store, acks_before_kill: int) -> None:
        self._store = store
        self._acks_left = acks_before_kill

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def stream_ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> None:
        if self._acks_left == 0:
            raise asyncio.CancelledError
        self._acks_left -= 1
        await self._store.stream_ack(stream, group, entry_ids)


def scan_events(
    card: Card, scanner: ScannerCredentials, valid: int, replayed: int
) -> list[dict[str, str]]:
    """Stream entries as the verify claim writes them: `valid` first sightings of an active
    card, `replayed` second sightings (nothing disclosed), interleaved."""
    snapshot = CardSnapshot.of(CardStatus.active, card.id, "张*丰").encode().decode()
    entries = []
    for n in range(valid + replayed):
        data = {"kid": "k", "cti": f"{n:032x}", "scene": "museum", "org": scanner.organisation_id}
        fields = audit_fields("verify", scanner.client_id, "", {**data, "handle": card.handle})
        outcome = "first" if n < valid else "again"
        entries.append({**fields, "outcome": outcome, "status": snapshot})
    return entries


async def logged_count(runtime: Runtime, card: Card) -> int:
    async with runtime.database.session() as session:
        count = (
            await session.exec(
                select(func.count())
                .select_from(AccessLogEntry)
                .where(AccessLogEntry.card_id == card.id)
            )
        ).one()
    return int(count)


class TestConsumerKilledMidStream:
    VALID, REPLAYED = 23, 7

    async def scans_on_the_stream(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> tuple[Card, int]:
        card = await create_scannable_card(runtime)
        scanner = await create_scanner(client, runtime, scenes=["museum"])
        for fields in scan_events(card, scanner, self.VALID, self.REPLAYED):
            await runtime.store.stream_append(PRIVATE_STREAM, fields)
        return card, self.VALID

    def consumer(self, runtime: Runtime, store: Any, database: Any, name: str) -> AuditConsumer:
        return AuditConsumer(
            store,
            database,
            stream=PRIVATE_STREAM,
            consumer=name,
            batch=4,
            block_ms=0,
            reclaim_idle_ms=0,
        )

    async def restarted(self, runtime: Runtime) -> None:
        """A new process: takes over what the dead one left unacknowledged, then drains."""
        heir = self.consumer(runtime, runtime.store, runtime.database, "restarted")
        while await heir.reclaim_once():
            pass
        while await heir.drain_once():
            pass

    async def test_killed_after_reading_before_committing(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card, valid = await self.scans_on_the_stream(client, runtime)
        doomed = self.consumer(
            runtime, runtime.store, CrashingDatabase(runtime.database, crash_at=1), "doomed"
        )
        assert await doomed.drain_once() == 4  # one batch stored
        with pytest.raises(asyncio.CancelledError):
            await doomed.drain_once()  # the next is read, then the process dies

        await self.restarted(runtime)

        assert await logged_count(runtime, card) == valid

    async def test_killed_after_committing_before_acknowledging(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        card, valid = await self.scans_on_the_stream(client, runtime)
        doomed = self.consumer(runtime, KilledAtAck(runtime.store, 2), runtime.database, "doomed")
        with pytest.raises(asyncio.CancelledError):
            while await doomed.drain_once():
                pass

        await self.restarted(runtime)

        assert await logged_count(runtime, card) == valid
