"""Card lifecycle over HTTP: holder and operator routes, their authorisation, the history, and
the effect on verify, login and activation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from app.cards.models import Card, CardEvent
from app.runtime import Runtime
from tests.factories import (
    ActiveHolder,
    IssuedCard,
    ScannerCredentials,
    activate,
    admin_headers,
    create_active_holder,
    create_scanner,
    issue_card,
)

PROBLEM = "application/problem+json"
ADMIN_ACTIONS = ["report-loss", "cancel-loss", "replace", "cancel", "suspend", "unsuspend"]


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def holder(client: httpx.AsyncClient, app: FastAPI) -> ActiveHolder:
    return await create_active_holder(client, app)


@pytest.fixture
async def scanner(client: httpx.AsyncClient, runtime: Runtime) -> ScannerCredentials:
    return await create_scanner(client, runtime)


async def operate(
    client: httpx.AsyncClient,
    runtime: Runtime,
    card_number: str,
    action: str,
    channel: str = "administration",
    **extra: Any,
) -> httpx.Response:
    body = {"channel": channel, "reason": f"test: {action}", **extra}
    return await client.post(
        f"/v1/admin/cards/{card_number}/{action}", json=body, headers=admin_headers(runtime)
    )


async def qr(client: httpx.AsyncClient, holder: ActiveHolder) -> str:
    response = await client.get("/v1/me/qr", headers=holder.headers)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def verdict(client: httpx.AsyncClient, scanner: ScannerCredentials, token: str) -> str:
    response = await client.post(
        "/v1/verify", json={"token": token, "scene": "museum"}, headers=scanner.headers
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["verdict"]
    return value


class TestHolderActions:
    async def test_a_reported_loss_makes_an_earlier_qr_code_verify_as_card_lost(
        self, client: httpx.AsyncClient, holder: ActiveHolder, scanner: ScannerCredentials
    ) -> None:
        token = await qr(client, holder)
        reported = await client.post("/v1/me/card/report-loss", headers=holder.headers)
        assert reported.status_code == 200, reported.text
        assert reported.json()["from_status"] == "active"
        assert reported.json()["to_status"] == "lost"
        assert await verdict(client, scanner, token) == "card_lost"

    async def test_cancelling_the_loss_with_the_pin_makes_the_card_pass_again(
        self, client: httpx.AsyncClient, holder: ActiveHolder, scanner: ScannerCredentials
    ) -> None:
        await client.post("/v1/me/card/report-loss", headers=holder.headers)
        cancelled = await client.post(
            "/v1/me/card/cancel-loss", json={"pin": holder.pin}, headers=holder.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["to_status"] == "active"
        assert await verdict(client, scanner, await qr(client, holder)) == "valid"

    async def test_a_wrong_pin_keeps_the_card_lost(
        self, client: httpx.AsyncClient, holder: ActiveHolder
    ) -> None:
        await client.post("/v1/me/card/report-loss", headers=holder.headers)
        refused = await client.post(
            "/v1/me/card/cancel-loss", json={"pin": "000000"}, headers=holder.headers
        )
        assert refused.status_code == 401
        card = await client.get("/v1/me/card", headers=holder.headers)
        assert card.json()["status"] == "lost"

    async def test_cancelling_the_card_is_terminal(
        self, client: httpx.AsyncClient, holder: ActiveHolder, scanner: ScannerCredentials
    ) -> None:
        token = await qr(client, holder)
        cancelled = await client.post(
            "/v1/me/card/cancel", json={"pin": holder.pin}, headers=holder.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert await verdict(client, scanner, token) == "card_cancelled"
        again = await client.post("/v1/me/card/report-loss", headers=holder.headers)
        assert again.status_code == 409
        assert again.headers["content-type"] == PROBLEM
        assert again.json()["card_status"] == "cancelled"
        assert "cancelled" in again.json()["detail"]

    async def test_cancelling_a_loss_of_an_active_card_is_refused_without_spending_a_pin_try(
        self, client: httpx.AsyncClient, holder: ActiveHolder, app: FastAPI
    ) -> None:
        refused = await client.post(
            "/v1/me/card/cancel-loss", json={"pin": "000000"}, headers=holder.headers
        )
        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/card-transition-not-allowed"
        assert refused.json()["card_status"] == "active"
        async with app.state.runtime.database.session() as session:
            card = (
                await session.exec(select(Card).where(Card.card_number == holder.card_number))
            ).one()
        assert card.pin_failures == 0

    async def test_unbinding_a_device_does_not_touch_the_card(
        self, client: httpx.AsyncClient, holder: ActiveHolder, scanner: ScannerCredentials
    ) -> None:
        other = await activate(client, holder.card, pin=holder.pin)
        assert other.status_code == 201
        unbound = await client.delete(
            f"/v1/me/devices/{holder.device_id}", headers=bearer_of(other)
        )
        assert unbound.status_code == 204
        card = await client.get("/v1/me/card", headers=bearer_of(other))
        assert card.json()["status"] == "active"
        history = await client.get("/v1/me/card/history", headers=bearer_of(other))
        assert history.json() == []


def bearer_of(session_response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_response.json()['access_token']}"}


class TestHistory:
    async def test_the_holder_sees_every_transition_with_channel_and_reason(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        await client.post("/v1/me/card/report-loss", headers=holder.headers)
        await operate(
            client,
            runtime,
            holder.card_number,
            "cancel-loss",
            "counter",
            holder_document_number=holder.card.document_number,
        )
        history = await client.get("/v1/me/card/history", headers=holder.headers)
        assert history.status_code == 200
        entries = [
            (e["action"], e["from_status"], e["to_status"], e["channel"], e["by"], e["reason"])
            for e in history.json()
        ]
        assert entries == [
            ("report_loss", "active", "lost", "online", "holder", None),
            ("cancel_loss", "lost", "active", "counter", "operator", "test: cancel-loss"),
        ]

    async def test_every_transition_is_stored_with_who_and_when(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        await operate(client, runtime, holder.card_number, "suspend")
        async with runtime.database.session() as session:
            events = (await session.exec(select(CardEvent))).all()
        assert [(e.action, e.actor, e.channel) for e in events] == [
            ("suspend", "adm_test", "administration")
        ]
        assert events[0].created_at is not None


async def card_in_state(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, state: str
) -> IssuedCard:
    card = await issue_card(client, app)
    setup = {"lost": "report-loss", "suspended": "suspend", "cancelled": "cancel"}.get(state)
    if setup is not None:
        response = await operate(client, runtime, card.card_number, setup)
        assert response.json()["to_status"] == state, response.text
    return card


EXPECTED = {
    ("active", "report-loss"): "lost",
    ("lost", "cancel-loss"): "active",
    ("active", "replace"): "active",
    ("lost", "replace"): "active",
    ("active", "cancel"): "cancelled",
    ("lost", "cancel"): "cancelled",
    ("suspended", "cancel"): "cancelled",
    ("active", "suspend"): "suspended",
    ("suspended", "unsuspend"): "active",
}


class TestOperatorActions:
    async def test_every_state_and_action_over_http(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        outcomes: dict[tuple[str, str], str] = {}
        for state in ("active", "lost", "suspended", "cancelled"):
            for action in ADMIN_ACTIONS:
                card = await card_in_state(client, app, runtime, state)
                response = await operate(
                    client,
                    runtime,
                    card.card_number,
                    action,
                    holder_document_number=card.document_number,
                )
                if response.status_code == 200:
                    assert response.json()["from_status"] == state
                    outcomes[(state, action)] = response.json()["to_status"]
                else:
                    assert response.status_code == 409, response.text
                    assert response.headers["content-type"] == PROBLEM
                    assert response.json()["card_status"] == state
        assert outcomes == EXPECTED

    async def test_a_hotline_loss_report_names_the_verified_caller(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        card = await issue_card(client, app)
        missing = await operate(client, runtime, card.card_number, "report-loss", "hotline")
        assert missing.status_code == 403
        assert missing.json()["type"] == "/problems/holder-not-verified"
        other_person = await issue_card(client, app)
        wrong = await operate(
            client,
            runtime,
            card.card_number,
            "report-loss",
            "hotline",
            holder_document_number=other_person.document_number,
        )
        assert wrong.status_code == 403
        reported = await operate(
            client,
            runtime,
            card.card_number,
            "report-loss",
            "hotline",
            holder_document_number=card.document_number,
        )
        assert reported.status_code == 200, reported.text
        assert reported.json()["channel"] == "hotline"

    async def test_suspension_only_through_administration(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        card = await issue_card(client, app)
        refused = await operate(client, runtime, card.card_number, "suspend", "counter")
        assert refused.status_code == 422
        assert refused.json()["type"] == "/problems/channel-not-allowed"

    async def test_a_reason_is_required(
        self, client: httpx.AsyncClient, app: FastAPI, runtime: Runtime
    ) -> None:
        card = await issue_card(client, app)
        response = await client.post(
            f"/v1/admin/cards/{card.card_number}/suspend",
            json={"channel": "administration"},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422

    async def test_an_unknown_card_number_is_404(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await operate(client, runtime, "360000000000", "suspend")
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/card-not-found"


class TestReplacement:
    async def test_the_old_physical_number_is_dead_and_the_e_card_follows(
        self,
        client: httpx.AsyncClient,
        holder: ActiveHolder,
        runtime: Runtime,
        scanner: ScannerCredentials,
    ) -> None:
        token_before = await qr(client, holder)
        await client.post("/v1/me/card/report-loss", headers=holder.headers)
        replaced = await operate(client, runtime, holder.card_number, "replace", "counter")
        assert replaced.status_code == 200, replaced.text
        new_number = replaced.json()["card_number"]
        assert new_number != holder.card_number
        assert replaced.json()["to_status"] == "active"

        assert await verdict(client, scanner, token_before) == "valid"
        login_old = await client.post(
            "/v1/auth/login",
            json={"card_number": holder.card_number, "pin": holder.pin, "device_id": "x"},
        )
        assert login_old.status_code == 401
        activation_old = await activate(client, holder.card, pin=holder.pin)
        assert activation_old.status_code == 401
        looked_up = await operate(client, runtime, holder.card_number, "suspend")
        assert looked_up.status_code == 410
        assert looked_up.json()["type"] == "/problems/card-number-retired"

        login_new = await client.post(
            "/v1/auth/login",
            json={"card_number": new_number, "pin": holder.pin, "device_id": holder.device_id},
        )
        assert login_new.status_code == 200, login_new.text


async def replace_online(
    client: httpx.AsyncClient, holder: ActiveHolder, pin: str | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/me/card/replace",
        json={"pin": pin or holder.pin, "reason": "card damaged: chip no longer read"},
        headers=holder.headers,
    )


class TestOnlineReplacement:
    async def test_a_new_card_number_and_the_old_qr_codes_stop_verifying(
        self,
        client: httpx.AsyncClient,
        holder: ActiveHolder,
        runtime: Runtime,
        scanner: ScannerCredentials,
    ) -> None:
        token_before = await qr(client, holder)

        replaced = await replace_online(client, holder)

        assert replaced.status_code == 200, replaced.text
        new_number = replaced.json()["card_number"]
        assert new_number != holder.card_number
        assert (replaced.json()["action"], replaced.json()["to_status"]) == ("replace", "active")
        assert await verdict(client, scanner, token_before) == "card_cancelled"
        assert await verdict(client, scanner, await qr(client, holder)) == "valid"
        looked_up = await operate(client, runtime, holder.card_number, "suspend")
        assert looked_up.status_code == 410
        login_new = await client.post(
            "/v1/auth/login",
            json={"card_number": new_number, "pin": holder.pin, "device_id": holder.device_id},
        )
        assert login_new.status_code == 200, login_new.text
        history = await client.get("/v1/me/card/history", headers=holder.headers)
        assert [(e["action"], e["channel"], e["by"]) for e in history.json()] == [
            ("replace", "online", "holder")
        ]
        assert history.json()[0]["reason"] == "card damaged: chip no longer read"

    async def test_a_lost_card_replaced_online_is_active_and_its_old_codes_stay_dead(
        self, client: httpx.AsyncClient, holder: ActiveHolder, scanner: ScannerCredentials
    ) -> None:
        token_before = await qr(client, holder)
        await client.post("/v1/me/card/report-loss", headers=holder.headers)

        replaced = await replace_online(client, holder)

        assert replaced.status_code == 200, replaced.text
        assert (replaced.json()["from_status"], replaced.json()["to_status"]) == ("lost", "active")
        assert await verdict(client, scanner, token_before) == "card_cancelled"
        assert await verdict(client, scanner, await qr(client, holder)) == "valid"

    async def test_a_wrong_pin_changes_nothing_and_counts_toward_the_lockout(
        self,
        client: httpx.AsyncClient,
        holder: ActiveHolder,
        runtime: Runtime,
        scanner: ScannerCredentials,
    ) -> None:
        token_before = await qr(client, holder)
        answers = [
            (await replace_online(client, holder, pin="951357")).status_code
            for _ in range(runtime.settings.pin_max_failures)
        ]

        assert answers == [401] * (runtime.settings.pin_max_failures - 1) + [423]
        assert (await replace_online(client, holder)).status_code == 423
        assert await verdict(client, scanner, token_before) == "valid"
        async with runtime.database.session() as session:
            card = (
                await session.exec(select(Card).where(Card.card_number == holder.card_number))
            ).one()
        assert card.status == "active"

    async def test_a_cancelled_card_cannot_be_replaced(
        self, client: httpx.AsyncClient, holder: ActiveHolder
    ) -> None:
        await client.post("/v1/me/card/cancel", json={"pin": holder.pin}, headers=holder.headers)
        refused = await replace_online(client, holder)
        assert refused.status_code == 409
        assert refused.json()["card_status"] == "cancelled"


class TestAuthorisation:
    @pytest.mark.parametrize("action", ADMIN_ACTIONS)
    async def test_a_holder_cannot_call_operator_routes(
        self, client: httpx.AsyncClient, holder: ActiveHolder, action: str
    ) -> None:
        response = await client.post(
            f"/v1/admin/cards/{holder.card_number}/{action}",
            json={"channel": "administration", "reason": "self-service?"},
            headers=holder.headers,
        )
        assert response.status_code == 401

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/v1/me/card/report-loss"),
            ("POST", "/v1/me/card/cancel-loss"),
            ("POST", "/v1/me/card/cancel"),
            ("POST", "/v1/me/card/replace"),
            ("GET", "/v1/me/card/history"),
        ],
    )
    async def test_an_operator_or_nobody_cannot_call_holder_routes(
        self, client: httpx.AsyncClient, runtime: Runtime, method: str, path: str
    ) -> None:
        body = None if method == "GET" else {"pin": "284617"}
        as_admin = await client.request(method, path, json=body, headers=admin_headers(runtime))
        anonymous = await client.request(method, path, json=body)
        assert (as_admin.status_code, anonymous.status_code) == (401, 401)
