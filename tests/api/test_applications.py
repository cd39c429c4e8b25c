"""Card applications over HTTP: validation, one card per person, approval, rejection, PII."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import select

from app.cards import status_indexes
from app.cards.models import Card, CardStatus
from app.cards.numbers import is_valid_card_number
from app.cards.snapshot import CardSnapshot, card_key
from app.runtime import Runtime
from tests.factories import (
    admin_headers,
    application_body,
    bearer,
    create_active_holder,
    issue_card,
    resident_id,
)

PROBLEM = "application/problem+json"


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == PROBLEM, response.text
    kind: str = response.json()["type"]
    return kind.rsplit("/", 1)[-1]


class TestApply:
    async def test_a_valid_application_is_pending(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/applications", json=application_body())
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "pending"
        assert body["card_id"] is None and body["card_number"] is None

    @pytest.mark.parametrize(
        ("document_number", "reason"),
        [
            ("36010219900307123", "wrong_length"),
            ("990102199003071234", "bad_region"),
            ("360102199002301234", "bad_birth_date"),
        ],
    )
    async def test_document_errors_are_422_with_the_reason(
        self, client: httpx.AsyncClient, document_number: str, reason: str
    ) -> None:
        response = await client.post(
            "/v1/applications", json=application_body(document_number=document_number)
        )
        assert response.status_code == 422
        assert problem_type(response) == "invalid-document"
        assert response.json()["reason"] == reason

    async def test_a_wrong_check_character_is_refused(self, client: httpx.AsyncClient) -> None:
        number = resident_id()
        wrong = number[:17] + ("0" if number[17] != "0" else "1")
        response = await client.post(
            "/v1/applications", json=application_body(document_number=wrong)
        )
        assert response.status_code == 422
        assert response.json()["reason"] == "check_character"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("name", "张三John"),
            ("name", "R2-D2"),
            ("phone", "12800138000"),
            ("phone", "1380013800x"),
            ("bank_code", "HSBC"),
        ],
    )
    async def test_bad_fields_are_422_naming_the_field(
        self, client: httpx.AsyncClient, field: str, value: str
    ) -> None:
        response = await client.post("/v1/applications", json=application_body(**{field: value}))
        assert response.status_code == 422
        assert problem_type(response) == "invalid-application"
        assert response.json()["field"] == field

    async def test_unknown_fields_and_types_are_validation_errors(
        self, client: httpx.AsyncClient
    ) -> None:
        unknown = await client.post("/v1/applications", json=application_body(extra="x"))
        wrong_type = await client.post(
            "/v1/applications", json=application_body(document_type="passport")
        )
        assert (unknown.status_code, wrong_type.status_code) == (422, 422)
        assert problem_type(unknown) == problem_type(wrong_type) == "validation-error"

    async def test_a_second_pending_application_is_409(self, client: httpx.AsyncClient) -> None:
        body = application_body()
        assert (await client.post("/v1/applications", json=body)).status_code == 201
        again = await client.post(
            "/v1/applications",
            json={
                **body,
                "document_number": body["document_number"].lower(),
                "phone": "13912345678",
            },
        )
        assert again.status_code == 409
        assert problem_type(again) == "application-exists"

    async def test_an_application_for_a_card_holder_is_answered_like_any_other(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        fresh = await client.post("/v1/applications", json=application_body())
        duplicate = await client.post(
            "/v1/applications",
            json=application_body(
                document_number=holder.card.document_number, name="王五", phone="13912345678"
            ),
        )
        assert duplicate.status_code == fresh.status_code == 201
        assert set(duplicate.json()) == set(fresh.json())
        for answer in (fresh.json(), duplicate.json()):
            assert (answer["status"], answer["card_id"], answer["card_number"]) == (
                "pending",
                None,
                None,
            )

    async def test_review_refuses_the_duplicate_and_the_holder_is_notified(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        own_card = (await client.get("/v1/me/card", headers=holder.headers)).json()
        duplicate = await client.post(
            "/v1/applications",
            json=application_body(
                document_number=holder.card.document_number, name="王五", phone="13912345678"
            ),
        )
        application_id = duplicate.json()["id"]
        admin = admin_headers(app.state.runtime)

        approval = await client.post(
            f"/v1/admin/applications/{application_id}/approve", headers=admin
        )
        rejection = await client.post(
            f"/v1/admin/applications/{application_id}/reject",
            json={"reason": "duplicate: the person already has a card"},
            headers=admin,
        )
        notices = await wait_for_notices(client, holder.headers)

        assert approval.status_code == 409
        assert problem_type(approval) == "card-exists"
        assert "duplicate" in approval.json()["detail"]
        assert rejection.status_code == 200
        assert [notice["kind"] for notice in notices] == ["application.duplicate_for_holder"]
        # The stranger's name and phone did not replace the holder's.
        assert (await client.get("/v1/me/card", headers=holder.headers)).json() == own_card


async def wait_for_notices(
    client: httpx.AsyncClient, headers: dict[str, str], seconds: float = 10.0
) -> list[Any]:
    """Notices come from the audit log, which the background consumer persists."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get("/v1/me/notices", headers=headers)
        assert response.status_code == 200, response.text
        found: list[Any] = response.json()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


class TestApprove:
    async def test_approval_issues_a_card_and_its_snapshot(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime: Runtime = app.state.runtime
        applied = await client.post(
            "/v1/applications", json=application_body(name="欧阳小明", bank_code="jxbank")
        )
        approved = await client.post(
            f"/v1/admin/applications/{applied.json()['id']}/approve",
            headers=admin_headers(runtime),
        )
        assert approved.status_code == 200
        card = approved.json()
        assert card["status"] == "active"
        assert card["region_code"] == runtime.settings.issuer
        assert card["bank_code"] == "JXBANK"
        assert is_valid_card_number(card["card_number"])
        async with runtime.database.session() as session:
            statement = select(Card.handle).where(Card.id == uuid.UUID(card["card_id"]))
            handle = (await session.exec(statement)).one()
        raw = await runtime.store.get(card_key(handle))
        assert raw is not None
        snapshot = CardSnapshot.decode(raw)
        assert snapshot.status is CardStatus.active
        assert snapshot.card_id == uuid.UUID(card["card_id"])
        assert snapshot.masked_name == "欧**明"

    async def test_each_card_gets_a_pool_of_distinct_status_indexes(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        cards = [await issue_card(client, app) for _ in range(3)]
        async with app.state.runtime.database.session() as session:
            rows = (
                await session.execute(
                    text("SELECT card_id, status_index, retired_at FROM card_status_indexes")
                )
            ).all()
            firsts = dict((await session.execute(text("SELECT id, status_index FROM cards"))).all())
        settings = app.state.runtime.settings
        pools: dict[str, set[int]] = {}
        for card_id, index, retired_at in rows:
            assert retired_at is None
            pools.setdefault(str(card_id).replace("-", ""), set()).add(index)
        assert sorted(pools) == sorted(uuid.UUID(card.card_id).hex for card in cards)
        assert all(len(pool) == settings.status_index_pool for pool in pools.values())
        assert len({index for _, index, _ in rows}) == 3 * settings.status_index_pool
        assert all(0 <= index < settings.status_list_size for _, index, _ in rows)
        assert all(firsts[card_id] in pools[str(card_id).replace("-", "")] for card_id in firsts)

    async def test_a_taken_status_index_is_drawn_again(
        self, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pool = app.state.runtime.settings.status_index_pool
        # The second card draws the first card's indexes again before free ones.
        draws = itertools.chain(range(pool), range(2 * pool))
        monkeypatch.setattr(status_indexes, "draw_status_index", lambda _size: next(draws))
        first = await issue_card(client, app)
        second = await issue_card(client, app)
        async with app.state.runtime.database.session() as session:
            rows = await session.execute(
                text("SELECT card_id, status_index FROM card_status_indexes")
            )
            pools: dict[str, set[int]] = {}
            for card_id, index in rows:
                pools.setdefault(str(card_id).replace("-", ""), set()).add(index)
        assert pools[uuid.UUID(first.card_id).hex] == set(range(pool))
        assert pools[uuid.UUID(second.card_id).hex] == set(range(pool, 2 * pool))

    async def test_approving_twice_is_409(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        card = await issue_card(client, app)
        again = await client.post(
            f"/v1/admin/applications/{card.application_id}/approve",
            headers=admin_headers(app.state.runtime),
        )
        assert again.status_code == 409
        assert problem_type(again) == "application-decided"

    async def test_an_unknown_application_is_404(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await client.post(
            "/v1/admin/applications/6f1c2a9e-0d7b-4a53-9a51-6d3f3f0a2b11/approve",
            headers=admin_headers(app.state.runtime),
        )
        assert response.status_code == 404
        assert problem_type(response) == "application-not-found"

    async def test_without_admin_token_approval_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        holder = await create_active_holder(client, app)
        applied = await client.post("/v1/applications", json=application_body())
        url = f"/v1/admin/applications/{applied.json()['id']}/approve"
        anonymous = await client.post(url)
        as_holder = await client.post(url, headers=bearer(holder.access_token))
        assert anonymous.status_code == 401
        assert as_holder.status_code in (401, 403)


class TestReject:
    async def test_rejection_records_the_reason_and_allows_a_new_application(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        body = application_body()
        applied = await client.post("/v1/applications", json=body)
        rejected = await client.post(
            f"/v1/admin/applications/{applied.json()['id']}/reject",
            json={"reason": "photo unreadable"},
            headers=admin_headers(app.state.runtime),
        )
        assert rejected.status_code == 200
        assert rejected.json()["status"] == "rejected"
        assert rejected.json()["reason"] == "photo unreadable"
        assert (await client.post("/v1/applications", json=body)).status_code == 201

    async def test_a_decided_application_cannot_be_rejected(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        card = await issue_card(client, app)
        response = await client.post(
            f"/v1/admin/applications/{card.application_id}/reject",
            json={"reason": "too late"},
            headers=admin_headers(app.state.runtime),
        )
        assert response.status_code == 409


class TestPersonalDataAtRest:
    async def test_raw_rows_hold_no_plaintext_document_name_or_phone(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        body = application_body(name="张小三", phone="13812345678")
        latin = application_body(name="JOHN SMITH", phone="13987654321")
        await issue_card(client, app, **body)
        await client.post("/v1/applications", json=latin)
        secrets = [
            body["document_number"],
            body["name"],
            body["phone"],
            latin["document_number"],
            latin["name"],
            latin["phone"],
        ]
        needles = [s.encode() for s in secrets] + [s.encode("utf-16-le") for s in secrets]
        checked = 0
        async with app.state.runtime.database.session() as session:
            for table in ("persons", "cards", "card_applications"):
                rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
                assert rows, f"{table} has no rows to check"
                for row in rows:
                    for value in row:
                        raw = value if isinstance(value, bytes) else str(value).encode()
                        checked += 1
                        for needle in needles:
                            assert needle not in raw, f"plaintext personal data in {table}"
        assert checked > 0


class TestAutoApproval:
    async def test_with_auto_approval_the_card_is_issued_at_once(
        self, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        runtime: Runtime = app.state.runtime
        monkeypatch.setattr(
            runtime,
            "settings",
            runtime.settings.model_copy(update={"auto_approve_applications": True}),
        )
        response = await client.post("/v1/applications", json=application_body())
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "approved"
        assert is_valid_card_number(body["card_number"])

    async def test_with_auto_approval_a_card_holders_application_waits_for_review(
        self, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        holder = await create_active_holder(client, app)
        runtime: Runtime = app.state.runtime
        monkeypatch.setattr(
            runtime,
            "settings",
            runtime.settings.model_copy(update={"auto_approve_applications": True}),
        )
        response = await client.post(
            "/v1/applications",
            json=application_body(document_number=holder.card.document_number),
        )
        assert response.status_code == 201
        assert (response.json()["status"], response.json()["card_number"]) == ("pending", None)
