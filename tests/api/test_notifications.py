"""The holder's notification inbox: fed from the audit stream, read marks, deduplicated, with
a pluggable delivery interface."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlmodel import select

from app.audit.chain import AuditRecord
from app.audit.log import AUDIT_STREAM, record
from app.cards import lifecycle_service
from app.notifications.delivery import (
    InboxSender,
    NotificationSenders,
    RetryPolicy,
    notification_sweep,
    sweep_once,
)
from app.notifications.models import Notification, NotificationDelivery
from app.notifications.service import inbox as notifications_inbox
from app.notifications.service import record_notifications
from app.runtime import Runtime
from app.store import Store, StoreUnavailable
from tests.api.test_banks_payments import until_stored
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
    link = str(uuid.uuid4())
    data = {
        "link": link,
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
        link,
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

    async def test_senders_besides_the_inbox_get_each_new_notification(self, app: FastAPI) -> None:
        """The audit consumer stores a pending delivery per registered sender with each new
        notification and wakes the sweep, which tries it at once; a failing sender leaves its
        own pending (retried after the backoff)."""
        runtime: Runtime = app.state.runtime
        recording, broken = Recording(), Flaky(failures=100)
        runtime.notification_senders.register(recording)
        runtime.notification_senders.register(broken)
        ward = uuid.uuid4()
        await record(runtime.store, *family_fields(uuid.uuid4(), ward))
        (row,) = await inbox_rows(runtime, ward)
        deadline = time.monotonic() + 5
        while True:  # the outcome is recorded after the send
            states = await delivery_states(runtime, row.id)
            if states["recording"][0] == "delivered" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert recording.delivered == [row.id]
        assert states["recording"] == ("delivered", 1)
        assert states["flaky"] == ("pending", 1)


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.delivered: list[uuid.UUID] = []

    async def deliver(self, notification: Notification) -> None:
        self.delivered.append(notification.id)


class Flaky:
    """Fails `failures` times, then delivers."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.delivered: list[uuid.UUID] = []

    async def deliver(self, notification: Notification) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("SMS gateway down")
        self.delivered.append(notification.id)


def family_fields(guardian: uuid.UUID, ward: uuid.UUID) -> tuple[str, str, str, dict[str, Any]]:
    link = str(uuid.uuid4())
    data = {
        "link": link,
        "guardian": str(guardian),
        "ward": str(ward),
        "guardian_label": "36******0001",
        "ward_label": "36******0002",
        "scopes": ["view"],
    }
    return ("family.invited", f"holder:{guardian}", link, data)


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def inbox_rows(
    runtime: Runtime, card: uuid.UUID, count: int = 1, timeout: float = 5.0
) -> list[Notification]:
    deadline = time.monotonic() + timeout
    while True:
        async with runtime.database.session() as session:
            rows = list(await notifications_inbox(session, card, unread_only=False, limit=50))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.02)


async def delivery_states(
    runtime: Runtime, notification_id: uuid.UUID
) -> dict[str, tuple[str, int]]:
    async with runtime.database.session() as session:
        rows = await session.exec(
            select(NotificationDelivery).where(
                NotificationDelivery.notification_id == notification_id
            )
        )
        return {row.sender: (row.status, row.attempts) for row in rows.all()}


FAST = RetryPolicy(attempts=4, initial=0.01, longest=0.01)


async def stored_with(runtime: Runtime, senders: NotificationSenders) -> Notification:
    event = family_event(f"e-{uuid.uuid4().hex[:12]}", uuid.uuid4(), uuid.uuid4())
    async with runtime.database.session() as session:
        (stored,) = await record_notifications(session, [event], senders)
    return stored


class TestDeliveryBesidesTheInbox:
    async def test_a_sender_failing_twice_gets_it_once_more_and_never_again(
        self, app: FastAPI
    ) -> None:
        runtime: Runtime = app.state.runtime
        flaky = Flaky(failures=2)
        senders = NotificationSenders([flaky], policy=FAST)
        stored = await stored_with(runtime, senders)
        rounds = []
        for _ in range(3):
            rounds.append(await senders.deliver_due(runtime.database))
            await asyncio.sleep(0.03)  # past the backoff
        assert [(r.delivered, r.retried, r.given_up) for r in rounds] == [
            (0, 1, 0),
            (0, 1, 0),
            (1, 0, 0),
        ]
        assert flaky.delivered == [stored.id]
        assert await delivery_states(runtime, stored.id) == {"flaky": ("delivered", 3)}
        # the sweep never sends a delivered one again
        for _ in range(3):
            await asyncio.sleep(0.03)
            assert (await sweep_once(senders, runtime.database)).delivered == 0
        assert (flaky.calls, flaky.delivered) == (3, [stored.id])

    async def test_the_sweep_retries_with_backoff_until_delivered(self, app: FastAPI) -> None:
        runtime: Runtime = app.state.runtime
        flaky = Flaky(failures=2)
        senders = NotificationSenders([flaky], policy=FAST)
        stored = await stored_with(runtime, senders)
        async with notification_sweep(senders, runtime.database, every=0.02):
            await until(lambda: flaky.delivered)
            await asyncio.sleep(0.2)
        assert (flaky.calls, flaky.delivered) == (3, [stored.id])

    async def test_given_up_after_the_bounded_attempts_logged_and_counted(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        runtime: Runtime = app.state.runtime
        broken = Flaky(failures=100)
        senders = NotificationSenders([broken], policy=FAST)
        stored = await stored_with(runtime, senders)
        for _ in range(6):
            await sweep_once(senders, runtime.database)
            await asyncio.sleep(0.03)
        assert broken.calls == FAST.attempts
        assert await delivery_states(runtime, stored.id) == {"flaky": ("failed", FAST.attempts)}
        assert senders.given_up == 1
        assert any("given up" in record.getMessage() for record in caplog.records)

    async def test_two_workers_never_send_one_delivery_at_once(self, app: FastAPI) -> None:
        runtime: Runtime = app.state.runtime
        slow = Recording()
        senders = NotificationSenders([slow], policy=FAST)
        other = NotificationSenders([slow], policy=FAST)
        stored = await stored_with(runtime, senders)
        await asyncio.gather(
            senders.deliver_due(runtime.database), other.deliver_due(runtime.database)
        )
        assert slow.delivered == [stored.id]

    async def test_a_delivery_given_up_by_the_service_is_on_metrics(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime: Runtime = app.state.runtime
        runtime.notification_senders.policy = RetryPolicy(attempts=1)
        runtime.notification_senders.register(Flaky(failures=100))
        await record(runtime.store, *family_fields(uuid.uuid4(), uuid.uuid4()))

        def given_up(metrics: str) -> float:
            (line,) = [
                x
                for x in metrics.splitlines()
                if x.startswith("ssc_notification_deliveries_given_up_total ")
            ]
            return float(line.split()[1])

        deadline = time.monotonic() + 5
        while given_up((await client.get("/metrics")).text) < 1:
            assert time.monotonic() < deadline, "never given up"
            await asyncio.sleep(0.05)
        assert runtime.notification_senders.given_up == 1

    def test_the_inbox_is_never_a_registered_sender(self) -> None:
        senders = NotificationSenders([InboxSender(), Recording()])
        assert senders.names == ("recording",)
        with pytest.raises(ValueError, match="registered already"):
            senders.register(Recording())


class TestStoredWithTheChange:
    async def test_a_card_change_whose_event_is_never_appended_is_notified_once(
        self, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A lifecycle transition appends its event after the commit (and the snapshot's
        publication): a crash before the append leaves the notification stored with the
        change, and the sweep hands it to a registered sender; the event appended later,
        twice, adds no second one, and the sender gets it once."""
        runtime: Runtime = app.state.runtime
        holder = await create_active_holder(client, app)
        sms = Recording()
        runtime.notification_senders.register(sms)
        lost: list[Mapping[str, str]] = []

        async def dies(store: Store, fields: Mapping[str, str]) -> None:
            lost.append(fields)
            raise StoreUnavailable("the process died before the append")

        monkeypatch.setattr(lifecycle_service, "append_event", dies)
        crashed = await client.post("/v1/me/card/report-loss", headers=holder.headers)
        assert crashed.status_code == 503
        monkeypatch.undo()
        (event,) = lost
        rows = await inbox_when(client, holder, lambda rows: rows)
        assert [row["kind"] for row in rows] == ["card_status_changed"]
        for _ in range(2):
            await runtime.store.stream_append(AUDIT_STREAM, event)
        await until_stored(runtime, event["eid"])
        again = (await client.get("/v1/me/notifications", headers=holder.headers)).json()
        assert [row["id"] for row in again] == [rows[0]["id"]]
        await until(lambda: sms.delivered)
        await asyncio.sleep(0.3)  # a second delivery would show
        assert sms.delivered == [uuid.UUID(rows[0]["id"])]


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
