"""PIN reset: at the counter after an identity check, and by the holder on one of their own
phones with the document number, without opening a way around the PIN lockout
(app/holders/pin_reset.py)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.runtime import Runtime
from tests.factories import (
    OTHER_PIN,
    ActiveHolder,
    admin_headers,
    create_active_holder,
    persisted_audit,
    resident_id,
)

PROBLEM = "application/problem+json"
WRONG_PIN = "951357"
NEW_PIN = "604182"


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def holder(client: httpx.AsyncClient, app: FastAPI) -> ActiveHolder:
    return await create_active_holder(client, app)


async def login(client: httpx.AsyncClient, holder: ActiveHolder, pin: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/login",
        json={"card_number": holder.card_number, "pin": pin, "device_id": holder.device_id},
    )


async def lock_the_pin(client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime) -> None:
    """Wrong PINs from the holder's own phone until it locks."""
    for _ in range(runtime.settings.pin_max_failures):
        await login(client, holder, WRONG_PIN)
    locked = await login(client, holder, holder.pin)
    assert locked.status_code == 423, locked.text


async def counter_reset(
    client: httpx.AsyncClient,
    runtime: Runtime,
    holder: ActiveHolder,
    *,
    document_number: str | None = None,
    document_type: str | None = None,
    new_pin: str = NEW_PIN,
) -> httpx.Response:
    body = {
        "document_type": document_type or holder.card.document_type,
        "document_number": document_number or holder.card.document_number,
        "new_pin": new_pin,
        "reason": "holder forgot the PIN; ID card checked at counter 3",
    }
    return await client.post(
        f"/v1/admin/cards/{holder.card_number}/pin-reset", json=body, headers=admin_headers(runtime)
    )


async def phone_reset(
    client: httpx.AsyncClient,
    holder: ActiveHolder,
    *,
    document_number: str | None = None,
    device_id: str | None = None,
    card_number: str | None = None,
    new_pin: str = NEW_PIN,
) -> httpx.Response:
    return await client.post(
        "/v1/auth/pin-reset",
        json={
            "card_number": card_number or holder.card_number,
            "document_number": document_number or holder.card.document_number,
            "device_id": device_id or holder.device_id,
            "new_pin": new_pin,
        },
    )


class TestAtTheCounter:
    async def test_a_checked_identity_lifts_the_lock_and_sets_the_new_pin(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        await lock_the_pin(client, holder, runtime)

        reset = await counter_reset(client, runtime, holder)

        assert reset.status_code == 204, reset.text
        assert (await login(client, holder, NEW_PIN)).status_code == 200
        assert (await login(client, holder, holder.pin)).status_code == 401
        audited = await persisted_audit(runtime, "holder.pin_reset")
        assert audited == [
            {
                "channel": "counter",
                "reason": "holder forgot the PIN; ID card checked at counter 3",
                "holder_verified_by": "document",
            }
        ]
        assert NEW_PIN not in str(audited)

    async def test_a_wrong_document_is_refused_audited_and_changes_nothing(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        await lock_the_pin(client, holder, runtime)

        refused = await counter_reset(client, runtime, holder, document_number=resident_id())

        assert refused.status_code == 403
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"] == "/problems/holder-not-verified"
        assert (await login(client, holder, holder.pin)).status_code == 423
        assert (await login(client, holder, NEW_PIN)).status_code == 423
        audited = await persisted_audit(runtime, "holder.pin_reset_refused")
        assert [row["refused"] for row in audited] == ["document_mismatch"]
        assert await persisted_audit(runtime, "holder.pin_reset", timeout=0) == []

    async def test_the_right_number_under_another_document_type_is_refused(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        refused = await counter_reset(
            client, runtime, holder, document_type="hk_macau_tw_residence_permit"
        )
        assert refused.status_code == 403
        assert (await login(client, holder, holder.pin)).status_code == 200

    async def test_a_weak_new_pin_is_refused(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        refused = await counter_reset(client, runtime, holder, new_pin="123456")
        assert refused.status_code == 422
        assert refused.headers["content-type"] == PROBLEM
        assert (await login(client, holder, holder.pin)).status_code == 200

    async def test_a_holder_cannot_reset_at_the_counter(
        self, client: httpx.AsyncClient, holder: ActiveHolder
    ) -> None:
        response = await client.post(
            f"/v1/admin/cards/{holder.card_number}/pin-reset",
            json={
                "document_type": holder.card.document_type,
                "document_number": holder.card.document_number,
                "new_pin": NEW_PIN,
                "reason": "self-service?",
            },
            headers=holder.headers,
        )
        assert response.status_code == 401


class TestOnTheHoldersPhone:
    async def test_the_document_number_on_a_bound_phone_unlocks_with_a_new_pin(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        await lock_the_pin(client, holder, runtime)

        reset = await phone_reset(client, holder)

        assert reset.status_code == 204, reset.text
        assert (await login(client, holder, NEW_PIN)).status_code == 200
        assert (await login(client, holder, holder.pin)).status_code == 401
        audited = await persisted_audit(runtime, "holder.pin_reset")
        assert [row["channel"] for row in audited] == ["device"]

    async def test_a_wrong_document_number_counts_toward_the_pin_lockout(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        for _ in range(runtime.settings.pin_max_failures - 1):
            assert (await login(client, holder, WRONG_PIN)).status_code == 401

        wrong = await phone_reset(client, holder, document_number=resident_id())

        assert wrong.status_code == 401
        assert (await login(client, holder, holder.pin)).status_code == 423

    async def test_wrong_document_numbers_lock_resets_too(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        answers = [
            (await phone_reset(client, holder, document_number=resident_id())).status_code
            for _ in range(runtime.settings.pin_max_failures)
        ]
        assert answers == [401] * (runtime.settings.pin_max_failures - 1) + [423]

        right = await phone_reset(client, holder)

        assert right.status_code == 423
        assert right.json()["type"] == "/problems/pin-locked"
        assert (await login(client, holder, NEW_PIN)).status_code in {401, 423}

    async def test_another_phone_cannot_reset_even_with_the_right_document(
        self, client: httpx.AsyncClient, holder: ActiveHolder
    ) -> None:
        stranger = await phone_reset(client, holder, device_id="stolen-details-phone")
        unknown = await phone_reset(client, holder, card_number="369999999999")

        assert (stranger.status_code, unknown.status_code) == (401, 401)
        assert {**stranger.json(), "request_id": ""} == {**unknown.json(), "request_id": ""}
        assert (await login(client, holder, holder.pin)).status_code == 200

    async def test_a_strangers_failed_resets_do_not_lock_the_holders_phone(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        for _ in range(runtime.settings.pin_max_failures_unbound + 1):
            await phone_reset(client, holder, device_id="stranger", document_number=resident_id())

        assert (await login(client, holder, holder.pin)).status_code == 200

    async def test_a_lost_cards_pin_is_reset_at_the_counter_only(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        """Phone and ID card stolen together: a new PIN would let the thief cancel the loss."""
        await client.post("/v1/me/card/report-loss", headers=holder.headers)

        refused = await phone_reset(client, holder)

        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/card-lost"
        cancel_loss = await client.post(
            "/v1/me/card/cancel-loss", json={"pin": NEW_PIN}, headers=holder.headers
        )
        assert cancel_loss.status_code == 401
        assert (await counter_reset(client, runtime, holder)).status_code == 204

    async def test_a_weak_new_pin_spends_no_attempt(
        self, client: httpx.AsyncClient, holder: ActiveHolder, runtime: Runtime
    ) -> None:
        for _ in range(runtime.settings.pin_max_failures):
            weak = await phone_reset(client, holder, new_pin="111111")
            assert weak.status_code == 422
        assert (await phone_reset(client, holder, new_pin=OTHER_PIN)).status_code == 204
        assert (await login(client, holder, OTHER_PIN)).status_code == 200
