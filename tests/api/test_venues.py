"""An organisation's venues, its scanners placed at them, and withdrawing its approval.

Withdrawal rewrites the scanner principal mirror of every scanner of the organisation in the
shared store, which every worker reads on every scan: it stops them at their next scan.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from app.config import Settings
from app.runtime import Runtime
from tests.api.test_verify import verify
from tests.factories import (
    ScannerCredentials,
    admin_headers,
    create_organisation,
    create_scannable_card,
    create_scanner,
    persisted_audit,
    qr_token,
)

EFFECT_BOUND_SECONDS = 1.0


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def add_venue(
    client: httpx.AsyncClient, runtime: Runtime, organisation_id: str, **body: object
) -> httpx.Response:
    return await client.post(
        f"/v1/admin/organisations/{organisation_id}/venues",
        json={"name": "East branch", "region_code": "360102", **body},
        headers=admin_headers(runtime),
    )


async def scanner_at(
    client: httpx.AsyncClient, runtime: Runtime, organisation_id: str, venue_id: str | None
) -> httpx.Response:
    body: dict[str, object] = {"name": "Gate", "scenes": ["museum"]}
    if venue_id is not None:
        body["venue_id"] = venue_id
    return await client.post(
        f"/v1/admin/organisations/{organisation_id}/scanners",
        json=body,
        headers=admin_headers(runtime),
    )


class TestVenues:
    async def test_an_organisation_has_a_default_venue_at_its_own_location(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"], "City museum")
        listed = await client.get(
            f"/v1/admin/organisations/{organisation_id}/venues", headers=admin_headers(runtime)
        )
        assert listed.status_code == 200
        [venue] = listed.json()
        assert venue["is_default"] is True
        assert venue["name"] == "City museum"
        assert venue["organisation_id"] == organisation_id

    async def test_a_venue_is_added_and_a_scanner_is_placed_there(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        added = await add_venue(
            client, runtime, organisation_id, latitude=28.6889, longitude=115.8206
        )
        assert added.status_code == 201, added.text
        venue = added.json()
        assert (venue["name"], venue["region_code"], venue["is_default"]) == (
            "East branch",
            "360102",
            False,
        )
        assert (venue["latitude"], venue["longitude"]) == (28.6889, 115.8206)
        placed = await scanner_at(client, runtime, organisation_id, venue["id"])
        assert placed.status_code == 201, placed.text
        assert placed.json()["venue_id"] == venue["id"]
        venues = await client.get(
            f"/v1/admin/organisations/{organisation_id}/venues", headers=admin_headers(runtime)
        )
        assert [row["is_default"] for row in venues.json()] == [True, False]

    async def test_a_scanner_without_a_venue_is_at_the_default_venue(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        venues = await client.get(
            f"/v1/admin/organisations/{organisation_id}/venues", headers=admin_headers(runtime)
        )
        placed = await scanner_at(client, runtime, organisation_id, None)
        assert placed.status_code == 201, placed.text
        assert placed.json()["venue_id"] == venues.json()[0]["id"]

    async def test_another_organisations_venue_is_404(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        ours = await create_organisation(client, runtime, ["museum"])
        theirs = await create_organisation(client, runtime, ["museum"], "Other")
        their_venue = (await add_venue(client, runtime, theirs)).json()["id"]
        for venue_id in (their_venue, str(uuid.uuid4())):
            refused = await scanner_at(client, runtime, ours, venue_id)
            assert refused.status_code == 404
            assert refused.json()["type"] == "/problems/venue-not-found"

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "", "region_code": "360102"},
            {"name": "X", "region_code": "nanchang"},
            {"name": "X", "region_code": "360102", "latitude": 28.6},
            {"name": "X", "region_code": "360102", "latitude": 91, "longitude": 0},
            {"name": "X", "region_code": "360102", "extra": 1},
        ],
    )
    async def test_an_invalid_venue_is_a_422_problem(
        self, client: httpx.AsyncClient, runtime: Runtime, body: dict[str, object]
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        response = await client.post(
            f"/v1/admin/organisations/{organisation_id}/venues",
            json=body,
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"

    async def test_an_unknown_organisation_has_no_venues(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        unknown = str(uuid.uuid4())
        assert (await add_venue(client, runtime, unknown)).status_code == 404
        listed = await client.get(
            f"/v1/admin/organisations/{unknown}/venues", headers=admin_headers(runtime)
        )
        assert listed.status_code == 404


async def withdraw(
    client: httpx.AsyncClient, runtime: Runtime, organisation_id: str, step: str = "withdraw"
) -> httpx.Response:
    response = await client.post(
        f"/v1/admin/organisations/{organisation_id}/{step}", headers=admin_headers(runtime)
    )
    assert response.status_code == 200, response.text
    return response


async def scan_status(
    client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
) -> httpx.Response:
    card = await create_scannable_card(runtime)
    return await verify(client, scanner, qr_token(runtime, card))


async def refused_within(
    client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials, seconds: float
) -> httpx.Response:
    """Scans until one is refused or `seconds` have passed; the last answer."""
    deadline = time.monotonic() + seconds
    while True:
        response = await scan_status(client, runtime, scanner)
        if response.status_code in (401, 403) or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


class TestWithdrawal:
    async def test_every_scanner_of_a_withdrawn_organisation_is_refused_then_restored(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        gates = [await create_scanner(client, runtime, organisation_id) for _ in range(2)]
        bystander = await create_scanner(client, runtime)  # another organisation's
        for gate in gates:
            assert (await scan_status(client, runtime, gate)).json()["verdict"] == "valid"

        withdrawn = await withdraw(client, runtime, organisation_id)
        assert withdrawn.json()["withdrawn_at"] is not None
        for gate in gates:
            refused = await scan_status(client, runtime, gate)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "/problems/scanner-disabled"
        assert (await scan_status(client, runtime, bystander)).json()["verdict"] == "valid"

        reinstated = await withdraw(client, runtime, organisation_id, "reinstate")
        assert reinstated.json()["withdrawn_at"] is None
        for gate in gates:
            assert (await scan_status(client, runtime, gate)).json()["verdict"] == "valid"
        steps = await persisted_audit(
            runtime, "organisation.withdraw", lambda data: data.get("scanners") == 2
        )
        assert len(steps) == 1
        assert await persisted_audit(
            runtime, "organisation.reinstate", lambda data: data.get("scanners") == 2
        )

    async def test_a_withdrawn_organisations_scanner_gets_no_offline_bundle(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        """An offline verifier would otherwise keep verifying with a fresh bundle."""
        organisation_id = await create_organisation(client, runtime, ["museum"])
        gate = await create_scanner(client, runtime, organisation_id)
        assert (await client.get("/v1/scanner/bundle", headers=gate.headers)).status_code == 200
        await withdraw(client, runtime, organisation_id)
        refused = await client.get("/v1/scanner/bundle", headers=gate.headers)
        assert refused.status_code == 401
        assert refused.json()["type"] == "/problems/scanner-disabled"
        await withdraw(client, runtime, organisation_id, "reinstate")
        assert (await client.get("/v1/scanner/bundle", headers=gate.headers)).status_code == 200

    async def test_a_withdrawn_organisations_scanner_cannot_upload_offline_scans(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        """Scans it made while withdrawn must not reach holders' access logs as reads."""
        organisation_id = await create_organisation(client, runtime, ["museum"])
        gate = await create_scanner(client, runtime, organisation_id)
        token = qr_token(runtime, await create_scannable_card(runtime))
        scan = {"scan_id": "s1", "token": token, "scanned_at": datetime.now(UTC).isoformat()}
        upload = {"scans": [{**scan, "verdict": "valid"}]}
        assert (
            await client.post("/v1/scanner/scans", json=upload, headers=gate.headers)
        ).status_code == 200
        await withdraw(client, runtime, organisation_id)
        refused = await client.post("/v1/scanner/scans", json=upload, headers=gate.headers)
        assert refused.status_code == 401
        assert refused.json()["type"] == "/problems/scanner-disabled"

    async def test_a_withdrawn_organisations_scanner_gets_no_token(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        created = await scanner_at(client, runtime, organisation_id, None)
        credentials = {
            "grant_type": "client_credentials",
            "client_id": created.json()["client_id"],
            "client_secret": created.json()["client_secret"],
        }
        await withdraw(client, runtime, organisation_id)
        refused = await client.post("/v1/oauth/token", data=credentials)
        assert refused.status_code == 401
        await withdraw(client, runtime, organisation_id, "reinstate")
        granted = await client.post("/v1/oauth/token", data=credentials)
        assert granted.status_code == 200, granted.text

    async def test_a_scanner_added_while_withdrawn_does_not_verify(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        before = await create_scanner(client, runtime, organisation_id)
        await withdraw(client, runtime, organisation_id)
        # its token was issued before: the mirror refuses it all the same
        assert (await scan_status(client, runtime, before)).status_code == 401
        placed = await scanner_at(client, runtime, organisation_id, None)
        assert placed.status_code == 201
        assert placed.json()["status"] == "active"  # its own state; the organisation's is apart

    async def test_reinstating_keeps_a_disabled_scanner_disabled(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        gate = await create_scanner(client, runtime, organisation_id)
        await client.post(
            f"/v1/admin/scanners/{gate.client_id}/disable", headers=admin_headers(runtime)
        )
        await withdraw(client, runtime, organisation_id)
        await withdraw(client, runtime, organisation_id, "reinstate")
        assert (await scan_status(client, runtime, gate)).status_code == 401

    async def test_an_unknown_organisation_is_404(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        for step in ("withdraw", "reinstate"):
            response = await client.post(
                f"/v1/admin/organisations/{uuid.uuid4()}/{step}", headers=admin_headers(runtime)
            )
            assert response.status_code == 404
            assert response.json()["type"] == "/problems/organisation-not-found"

    async def test_a_withdrawal_through_one_instance_stops_the_other_within_a_second(
        self, settings: Settings, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        if settings.redis_url is None:
            pytest.skip("the memory store serves one process; workers share Redis")
        organisation_id = await create_organisation(client, runtime, ["museum"])
        gate = await create_scanner(client, runtime, organisation_id)
        other_app = create_app(settings)
        async with other_app.router.lifespan_context(other_app):
            transport = httpx.ASGITransport(app=other_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://other") as other:
                before = await scan_status(other, runtime, gate)
                await withdraw(client, runtime, organisation_id)
                after = await refused_within(other, runtime, gate, EFFECT_BOUND_SECONDS)
                await withdraw(client, runtime, organisation_id, "reinstate")
                restored = await scan_status(other, runtime, gate)
        assert before.json()["verdict"] == "valid"
        assert after.status_code == 401, after.text
        assert after.json()["type"] == "/problems/scanner-disabled"
        assert restored.json()["verdict"] == "valid"
