"""The holder's notification inbox: fed from the audit stream, read marks, deduplicated, with
a pluggable delivery interface."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from app.audit.chain import AuditRecord
from app.notifications.delivery import InboxSender, NotificationSenders
from app.notifications.models import Notification
from app.notifications.service import record_notifications
from app.runtime import Runtime
from tests.factories import ActiveHolder, create_active_holder


async def inbox_when(
    client: httpx.AsyncClient,
    holder: ActiveHolder,
    wanted: Any,
    timeout: float = 5.0,
    **params: Any,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/v1/me/notifications", params=params, headers=holder.headers)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        if wanted(rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


class TestInbox:
    async def test_a_family_invitation_and_a_loss_report_reach_the_inbox_and_are_marked_read(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian = await create_active_holder(client, app)
        ward = await create_active_holder(client, app)
        invited = await client.post(
            "/v1/me/family/invitations",
            json={"ward_card_number": ward.card_number, "scopes": ["view"]},
            headers=guardian.headers,
        )
        assert invited.status_code == 201
        await client.post("/v1/me/card/report-loss", headers=ward.headers)
        rows = await inbox_when(client, ward, lambda rows: len(rows) >= 2)
        kinds = sorted(row["kind"] for row in rows)
        assert kinds == ["card_status_changed", "family_link_asked"]
        asked = next(row for row in rows if row["kind"] == "family_link_asked")
        assert asked["data"] == {"link": invited.json()["id"]}
        assert asked["read_at"] is None

        marked = await client.post(f"/v1/me/notifications/{asked['id']}/read", headers=ward.headers)
        assert marked.status_code == 200
        unread = (
            await client.get(
                "/v1/me/notifications", params={"unread": "true"}, headers=ward.headers
            )
        ).json()
        assert [row["kind"] for row in unread] == ["card_status_changed"]
        everything = await client.post("/v1/me/notifications/read", headers=ward.headers)
        assert everything.json() == {"marked": 1}
        # another holder's notification is not yours
        other = await client.post(
            f"/v1/me/notifications/{asked['id']}/read", headers=guardian.headers
        )
        assert other.status_code == 404


def family_event(event_id: str, guardian: uuid.UUID, ward: uuid.UUID) -> AuditRecord:
    data = {
        "link": str(uuid.uuid4()),
        "guardian": str(guardian),
        "ward": str(ward),
        "guardian_label": "36******0001",
        "ward_label": "36******0002",
        "scopes": ["view"],
    }
    return AuditRecord(
        event_id,
        datetime.now(UTC),
        "family.invited",
        "holder:x",
        data["link"],
        orjson.dumps(data).decode(),
    )


class TestAtLeastOnceAndDeduplicated:
    async def test_a_redelivered_event_adds_nothing(self, app: FastAPI) -> None:
        runtime: Runtime = app.state.runtime
        ward = uuid.uuid4()
        event = family_event("e-redelivered", uuid.uuid4(), ward)
        async with runtime.database.session() as session:
            first = await record_notifications(session, [event, event])
        async with runtime.database.session() as session:
            again = await record_notifications(session, [event])
        assert len(first) == 1
        assert again == []

    async def test_senders_besides_the_inbox_get_each_new_notification(self) -> None:
        delivered: list[Notification] = []

        class Recording:
            name = "recording"

            async def deliver(self, notification: Notification) -> None:
                delivered.append(notification)

        class Broken:
            name = "broken"

            async def deliver(self, notification: Notification) -> None:
                raise RuntimeError("SMS gateway down")

        one = Notification(card_id=uuid.uuid4(), kind="bank_changed", dedup_key="k", message="m")
        failed = await NotificationSenders([InboxSender(), Broken(), Recording()]).deliver([one])
        assert failed == 1
        assert delivered == [one]


class TestConsentRequested:
    async def test_a_long_purpose_is_cut_to_the_stored_length(self, app: FastAPI) -> None:
        runtime: Runtime = app.state.runtime
        card, request = uuid.uuid4(), str(uuid.uuid4())
        data = {
            "items": ["driving_licence", "full_name"],
            "purpose": "长" * 500,
            "access_days": 7,
            "card": str(card),
            "department": "D" * 200,
        }
        event = AuditRecord(
            "e-long-purpose",
            datetime.now(UTC),
            "consent.request",
            "dept",
            request,
            orjson.dumps(data).decode(),
        )
        async with runtime.database.session() as session:
            (stored,) = await record_notifications(session, [event])
        assert stored.kind == "consent_requested"
        assert len(stored.message) == 500 and stored.message.endswith("…")
        assert stored.message.startswith("D" * 200)
