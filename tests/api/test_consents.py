"""Consent-based department reads: request, approve (PIN) / decline / expire / revoke; reads
of exactly the approved items, each in the access log; a read without consent is 403 and
audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.audit.chain import AuditRecord
from app.consents.models import ConsentRequest
from app.notifications.service import record_notifications
from app.runtime import Runtime
from tests.api.test_access_log import wait_for_entries
from tests.api.test_licences import licence, push
from tests.api.test_notifications import inbox_when
from tests.departments import Department, create_department
from tests.factories import ActiveHolder, create_active_holder, persisted_audit

PURPOSE = "Vehicle transfer at the Nanchang vehicle office"


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    the_runtime: Runtime = app.state.runtime
    return the_runtime


@pytest.fixture
async def setting(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
) -> tuple[Department, ActiveHolder]:
    holder = await create_active_holder(client, app)
    traffic = await create_department(client, runtime)
    assert (
        await push(client, traffic, traffic.sign(licence(traffic, holder.card)))
    ).status_code == 201
    return traffic, holder


async def ask(
    client: httpx.AsyncClient, department: Department, holder: ActiveHolder, **overrides: Any
) -> httpx.Response:
    body = {
        "document_type": holder.card.document_type,
        "document_number": holder.card.document_number,
        "items": ["driving_licence", "full_name"],
        "purpose": PURPOSE,
        "access_days": 7,
        **overrides,
    }
    return await client.post("/v1/consent-requests", json=body, headers=department.headers)


async def read(
    client: httpx.AsyncClient, department: Department, request_id: str
) -> httpx.Response:
    return await client.get(f"/v1/consent-requests/{request_id}/data", headers=department.headers)


async def stored(runtime: Runtime, request_id: str) -> ConsentRequest:
    async with runtime.database.session() as session:
        row = await session.get(ConsentRequest, uuid.UUID(request_id))
    assert row is not None
    return row


async def approve(
    client: httpx.AsyncClient, holder: ActiveHolder, request_id: str, pin: str = ""
) -> httpx.Response:
    return await client.post(
        f"/v1/me/consent-requests/{request_id}/approve",
        json={"pin": pin or holder.pin},
        headers=holder.headers,
    )


class TestConsent:
    async def test_approve_with_the_pin_then_read_exactly_the_approved_items(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        setting: tuple[Department, ActiveHolder],
    ) -> None:
        traffic, holder = setting
        asked = await ask(client, traffic, holder)
        assert asked.status_code == 201, asked.text
        request_id = asked.json()["id"]
        assert (await read(client, traffic, request_id)).status_code == 403  # still pending
        mine = (await client.get("/v1/me/consent-requests", headers=holder.headers)).json()
        assert [(r["id"], r["status"], r["purpose"]) for r in mine] == [
            (request_id, "pending", PURPOSE)
        ]
        wrong = await approve(
            client, holder, request_id, pin="000000" if holder.pin != "000000" else "111111"
        )
        assert 400 <= wrong.status_code < 500
        assert (await stored(runtime, request_id)).status == "pending"
        approved = await approve(client, holder, request_id)
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "approved"
        data = await read(client, traffic, request_id)
        assert data.status_code == 200, data.text
        body = data.json()
        assert body["attributes"] == {"full_name": holder.card.name}  # not the document number
        assert [(d["type"], d["number"], d["verified"]) for d in body["documents"]] == [
            ("driving_licence", holder.card.document_number, True)
        ]
        entries = await wait_for_entries(client, holder, 2)
        reads = [e for e in entries if e["source"] == "dept_read"]
        assert len(reads) == 1
        assert sorted(reads[0]["attributes"]) == ["driving_licence", "full_name"]

    async def test_the_holder_is_told_once_of_a_request_with_the_department_and_purpose(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        runtime: Runtime,
        setting: tuple[Department, ActiveHolder],
    ) -> None:
        traffic, holder = setting
        asked = await ask(client, traffic, holder)
        assert asked.status_code == 201, asked.text
        request_id = asked.json()["id"]

        def told(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [row for row in rows if row["kind"] == "consent_requested"]

        (row,) = told(await inbox_when(client, holder, told))
        department = f"Department {traffic.code}"
        assert row["data"] == {"request": request_id, "department": department}
        assert department in row["message"] and PURPOSE in row["message"]
        assert "driving_licence" in row["message"]
        for personal in (holder.card.name, holder.card.document_number, holder.card_number):
            assert personal not in row["message"]
        # the event again (the audit stream delivers at least once) adds nothing
        (data,) = await persisted_audit(runtime, "consent.request")
        again = AuditRecord(
            "e-consent-again",
            datetime.now(UTC),
            "consent.request",
            traffic.client_id,
            request_id,
            orjson.dumps(data).decode(),
        )
        async with runtime.database.session() as session:
            assert await record_notifications(session, [again]) == []
        assert len(told(await inbox_when(client, holder, lambda rows: False, timeout=0.3))) == 1
        # the holder of another card is not told
        other = await create_active_holder(client, app)
        assert told(await inbox_when(client, other, lambda rows: False, timeout=0.3)) == []

    async def test_a_declined_request_cannot_be_read(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        setting: tuple[Department, ActiveHolder],
    ) -> None:
        traffic, holder = setting
        request_id = (await ask(client, traffic, holder)).json()["id"]
        declined = await client.post(
            f"/v1/me/consent-requests/{request_id}/decline", headers=holder.headers
        )
        assert declined.json()["status"] == "declined"
        refused = await read(client, traffic, request_id)
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/consent-required"
        assert (await approve(client, holder, request_id)).status_code == 409
        assert (await stored(runtime, request_id)).status == "declined"

    async def test_expiry_of_a_pending_request_and_of_an_approval(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        setting: tuple[Department, ActiveHolder],
    ) -> None:
        traffic, holder = setting
        pending_id = (await ask(client, traffic, holder)).json()["id"]
        approved_id = (await ask(client, traffic, holder)).json()["id"]
        assert (await approve(client, holder, approved_id)).status_code == 200
        assert (await read(client, traffic, approved_id)).status_code == 200
        past = datetime.now(UTC) - timedelta(seconds=1)
        async with runtime.database.session() as session:
            pending = await session.get(ConsentRequest, uuid.UUID(pending_id))
            approved = await session.get(ConsentRequest, uuid.UUID(approved_id))
            assert pending is not None and approved is not None
            pending.request_expires_at = past
            approved.access_until = past
            session.add_all([pending, approved])
        statuses = {
            r["id"]: r["status"]
            for r in (await client.get("/v1/me/consent-requests", headers=holder.headers)).json()
        }
        assert statuses == {pending_id: "expired", approved_id: "expired"}
        assert (await approve(client, holder, pending_id)).status_code == 409
        assert (await read(client, traffic, approved_id)).status_code == 403

    async def test_revocation_takes_effect_at_the_next_read_which_is_audited(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        setting: tuple[Department, ActiveHolder],
    ) -> None:
        traffic, holder = setting
        request_id = (await ask(client, traffic, holder)).json()["id"]
        assert (await approve(client, holder, request_id)).status_code == 200
        assert (await read(client, traffic, request_id)).status_code == 200
        revoked = await client.post(
            f"/v1/me/consent-requests/{request_id}/revoke", headers=holder.headers
        )
        assert revoked.json()["status"] == "revoked"
        refused = await read(client, traffic, request_id)
        assert refused.status_code == 403
        assert (await stored(runtime, request_id)).status == "revoked"
        audited = await persisted_audit(
            runtime, "consent.read.refused", lambda data: data.get("consent") == request_id
        )
        assert len(audited) == 1
        entries = await wait_for_entries(client, holder, 2)
        assert sorted(e["source"] for e in entries) == ["dept_read", "dept_refused"]

    async def test_another_departments_request_is_not_readable_and_is_audited(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        setting: tuple[Department, ActiveHolder],
    ) -> None:
        traffic, holder = setting
        request_id = (await ask(client, traffic, holder)).json()["id"]
        assert (await approve(client, holder, request_id)).status_code == 200
        civil = await create_department(
            client, runtime, code="360000-civil", types=["elderly_card"]
        )
        refused = await read(client, civil, request_id)
        assert refused.status_code == 403
        audited = await persisted_audit(
            runtime, "consent.read.refused", lambda data: data.get("consent") == request_id
        )
        assert len(audited) == 1
        missing = await client.get(f"/v1/consent-requests/{request_id}", headers=civil.headers)
        assert missing.status_code == 404

    async def test_unknown_person_and_unknown_items_are_refused_and_nothing_stored(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        setting: tuple[Department, ActiveHolder],
    ) -> None:
        traffic, holder = setting
        nobody = await ask(client, traffic, holder, document_number="11010519491231002X")
        assert nobody.status_code == 404
        odd = await ask(client, traffic, holder, items=["bank_balance"])
        assert odd.status_code == 422
        assert (await client.get("/v1/me/consent-requests", headers=holder.headers)).json() == []
