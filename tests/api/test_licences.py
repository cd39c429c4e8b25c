"""Linking e-licences: a department pushes signed licences (one or in bulk), we verify and keep
them, the holder sees them verified; every refusal leaves the database as it was."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from app.cards.models import Card, HolderEntitlement
from app.china_time import today_in_china
from app.licences.models import Licence
from app.licences.service import SIGNED_FIELD
from app.runtime import Runtime
from tests.departments import Department, create_department, new_key, register_key
from tests.factories import (
    ActiveHolder,
    IssuedCard,
    admin_headers,
    create_active_holder,
    create_organisation,
    create_scanner,
    issue_card,
)

TODAY = today_in_china()
"""Licence dates are days in China, as the service counts them: from 16:00 UTC on, the
machine's own date is a day behind."""


def licence(
    department: Department,
    card: IssuedCard,
    *,
    document_id: str = "DL-0001",
    version: int = 1,
    status: str = "valid",
    type_: str = "driving_licence",
    **overrides: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "issuer": department.code,
        "document_id": document_id,
        "version": version,
        "type": type_,
        "holder": {
            "document_type": card.document_type,
            "document_number": card.document_number,
            "name": card.name,
        },
        "number": card.document_number,
        "category": "C1",
        "valid_from": (TODAY - timedelta(days=400)).isoformat(),
        "valid_until": (TODAY + timedelta(days=2000)).isoformat(),
        "status": status,
    }
    payload.update(overrides)
    return payload


async def rows(runtime: Runtime) -> list[Licence]:
    async with runtime.database.session() as session:
        return list((await session.exec(select(Licence))).all())


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    the_runtime: Runtime = app.state.runtime
    return the_runtime


@pytest.fixture
async def traffic(client: httpx.AsyncClient, runtime: Runtime) -> Department:
    return await create_department(client, runtime)


@pytest.fixture
async def holder(client: httpx.AsyncClient, app: FastAPI) -> ActiveHolder:
    return await create_active_holder(client, app)


async def push(client: httpx.AsyncClient, department: Department, signed: str) -> httpx.Response:
    return await client.post("/v1/licences", json={"signed": signed}, headers=department.headers)


class TestPush:
    async def test_a_signed_licence_is_linked_and_kept_verbatim(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        signed = traffic.sign(licence(traffic, holder.card))
        pushed = await push(client, traffic, signed)
        assert pushed.status_code == 201, pushed.text
        assert pushed.json()["result"] == "created"
        [row] = await rows(runtime)
        assert (row.document_id, row.version, row.status) == ("DL-0001", 1, "valid")
        assert runtime.pii.open(SIGNED_FIELD, row.signed_sealed) == signed
        assert holder.card.document_number.encode() not in row.signed_sealed  # sealed at rest
        mine = await client.get("/v1/me/licences", headers=holder.headers)
        assert mine.status_code == 200, mine.text
        [shown] = mine.json()
        assert shown["verification"]["verified"] is True
        assert shown["type"] == "driving_licence"
        assert shown["category"] == "C1"
        assert shown["issuer"]["code"] == traffic.code
        one = await client.get(f"/v1/me/licences/{shown['id']}", headers=holder.headers)
        assert one.json()["signed"] == signed

    async def test_a_tampered_signature_is_refused_and_nothing_stored(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        header, payload, signature = traffic.sign(licence(traffic, holder.card)).split(".")
        other = traffic.sign(licence(traffic, holder.card, category="A1")).split(".")[1]
        for forged in (
            f"{header}.{other}.{signature}",
            f"{header}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}",
        ):
            refused = await push(client, traffic, forged)
            assert refused.status_code == 422, refused.text
            assert refused.json()["type"] == "/problems/signature-rejected"
            assert refused.json()["reason"] == "bad_signature"
        assert await rows(runtime) == []

    async def test_an_unknown_or_revoked_key_is_refused_and_nothing_stored(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        stranger = traffic.sign(licence(traffic, holder.card), new_key(), "not-registered")
        refused = await push(client, traffic, stranger)
        assert (refused.status_code, refused.json()["reason"]) == (422, "unknown_key")
        revoked = await client.post(
            f"/v1/admin/issuers/{traffic.issuer_id}/keys/{traffic.kid}/revoke",
            json={"reason": "compromised"},
            headers=admin_headers(runtime),
        )
        assert revoked.status_code == 200
        refused = await push(client, traffic, traffic.sign(licence(traffic, holder.card)))
        assert (refused.status_code, refused.json()["reason"]) == (422, "key_revoked")
        assert await rows(runtime) == []

    async def test_another_departments_key_does_not_sign_for_this_one(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        civil = await create_department(
            client, runtime, code="360000-civil", types=["elderly_card"]
        )
        signed = traffic.sign(licence(traffic, holder.card), civil.key, civil.kid)
        refused = await push(client, traffic, signed)
        assert (refused.status_code, refused.json()["reason"]) == (422, "unknown_key")
        assert await rows(runtime) == []

    async def test_an_unknown_person_is_a_404_problem_and_nothing_stored(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        nobody = IssuedCard("", "", "", "resident_id", "11010519491231002X", "王五")
        refused = await push(client, traffic, traffic.sign(licence(traffic, nobody)))
        assert refused.status_code == 404
        assert refused.json()["type"] == "/problems/holder-not-found"
        assert refused.headers["content-type"] == "application/problem+json"
        wrong_name = licence(traffic, holder.card)
        wrong_name["holder"]["name"] = "李四"
        mismatch = await push(client, traffic, traffic.sign(wrong_name))
        assert mismatch.json()["type"] == "/problems/holder-mismatch"
        assert await rows(runtime) == []

    async def test_a_duplicate_push_is_unchanged_and_other_content_a_conflict(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        signed = traffic.sign(licence(traffic, holder.card))
        assert (await push(client, traffic, signed)).status_code == 201
        again = await push(client, traffic, signed)
        assert (again.status_code, again.json()["result"]) == (200, "unchanged")
        other = await push(
            client, traffic, traffic.sign(licence(traffic, holder.card, category="A2"))
        )
        assert other.status_code == 409
        assert other.json()["type"] == "/problems/licence-version-conflict"
        [row] = await rows(runtime)
        assert runtime.pii.open(SIGNED_FIELD, row.signed_sealed) == signed

    async def test_versions_move_forward_only_and_carry_status_changes(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        first = traffic.sign(licence(traffic, holder.card, version=1))
        suspended = traffic.sign(licence(traffic, holder.card, version=3, status="suspended"))
        assert (await push(client, traffic, first)).status_code == 201
        updated = await push(client, traffic, suspended)
        assert (updated.status_code, updated.json()["result"]) == (200, "updated")
        late = await push(client, traffic, traffic.sign(licence(traffic, holder.card, version=2)))
        assert late.status_code == 409
        assert late.json()["type"] == "/problems/licence-version-stale"
        assert late.json()["current_version"] == 3
        [row] = await rows(runtime)
        assert (row.version, row.status) == (3, "suspended")
        assert runtime.pii.open(SIGNED_FIELD, row.signed_sealed) == suspended
        [shown] = (await client.get("/v1/me/licences", headers=holder.headers)).json()
        assert shown["verification"]["verified"] is False
        assert shown["verification"]["reason"] == "suspended"

    async def test_a_type_the_department_does_not_issue_is_forbidden(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        elderly = licence(traffic, holder.card, type_="elderly_card")
        refused = await push(client, traffic, traffic.sign(elderly))
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/document-type-not-allowed"
        assert await rows(runtime) == []

    async def test_an_invalid_licence_is_refused_with_what_is_wrong(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        bad = licence(traffic, holder.card, version="1", status="lost")
        refused = await push(client, traffic, traffic.sign(bad))
        assert refused.status_code == 422
        assert "version" in refused.json()["detail"] and "status" in refused.json()["detail"]
        assert await rows(runtime) == []


class TestKeysChangeWhatTheHolderSees:
    async def test_a_revoked_key_unverifies_a_stored_licence_a_retired_one_does_not(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        assert (
            await push(client, traffic, traffic.sign(licence(traffic, holder.card)))
        ).status_code == 201
        await register_key(client, runtime, traffic.issuer_id, new_key("EdDSA"), "next")
        base = f"/v1/admin/issuers/{traffic.issuer_id}/keys/{traffic.kid}"
        await client.post(f"{base}/retire", headers=admin_headers(runtime))
        [shown] = (await client.get("/v1/me/licences", headers=holder.headers)).json()
        assert shown["verification"]["verified"] is True
        await client.post(f"{base}/revoke", json={"reason": "leak"}, headers=admin_headers(runtime))
        [shown] = (await client.get("/v1/me/licences", headers=holder.headers)).json()
        assert shown["verification"]["verified"] is False
        assert shown["verification"]["key_trusted"] is False
        assert shown["verification"]["reason"] == "key_revoked"

    async def test_another_holders_licence_is_not_found(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        pushed = await push(client, traffic, traffic.sign(licence(traffic, holder.card)))
        other = await create_active_holder(client, app)
        response = await client.get(
            f"/v1/me/licences/{pushed.json()['licence_id']}", headers=other.headers
        )
        assert response.status_code == 404
        assert (await client.get("/v1/me/licences", headers=other.headers)).json() == []


class TestBulk:
    async def test_good_lines_are_stored_bad_lines_reported(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        runtime: Runtime,
        traffic: Department,
    ) -> None:
        cards = [await issue_card(client, app) for _ in range(3)]
        good = [
            traffic.sign(licence(traffic, card, document_id=f"DL-{n}"))
            for n, card in enumerate(cards)
        ]
        header, payload, signature = good[0].split(".")
        tampered = f"{header}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
        nobody = IssuedCard("", "", "", "resident_id", "11010519491231002X", "王五")
        lines = [
            {"signed": good[0]},
            "not json",
            {"signed": tampered},
            {"signed": good[1]},
            {"signed": traffic.sign(licence(traffic, nobody, document_id="DL-X"))},
            {"signed": good[0]},  # a repeat: unchanged
            {"wrong": "member"},
            {"signed": good[2]},
        ]
        body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
        response = await client.post(
            "/v1/licences/bulk",
            content=body.encode() + b"\n",
            headers={**traffic.headers, "Content-Type": "application/jsonl"},
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["stored"], result["unchanged"], result["failed"]) == (3, 1, 4)
        outcomes = {
            item["line"]: item["pushed"]["result"] if item["pushed"] else item["error"]["type"]
            for item in result["results"]
        }
        assert outcomes == {
            1: "created",
            2: "/problems/invalid-bulk",
            3: "/problems/signature-rejected",
            4: "created",
            5: "/problems/holder-not-found",
            6: "unchanged",
            7: "/problems/invalid-bulk",
            8: "created",
        }
        stored = await rows(runtime)
        assert sorted(row.document_id for row in stored) == ["DL-0", "DL-1", "DL-2"]

    async def test_a_bulk_push_must_be_json_lines(
        self, client: httpx.AsyncClient, runtime: Runtime, traffic: Department
    ) -> None:
        wrong_type = await client.post(
            "/v1/licences/bulk", json={"signed": "x"}, headers=traffic.headers
        )
        assert wrong_type.status_code == 415
        empty = await client.post(
            "/v1/licences/bulk",
            content=b"\n\n",
            headers={**traffic.headers, "Content-Type": "application/jsonl"},
        )
        assert empty.status_code == 422
        binary = await client.post(
            "/v1/licences/bulk",
            content=b"\xff\xfe{}\n",
            headers={**traffic.headers, "Content-Type": "application/jsonl"},
        )
        assert binary.status_code == 422
        assert binary.json()["type"] == "/problems/invalid-bulk"
        assert await rows(runtime) == []

    async def test_thousands_of_lines_in_one_request(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        """One holder, 2000 versions of one document in order: the newest wins."""
        lines = [
            json.dumps({"signed": traffic.sign(licence(traffic, holder.card, version=v))})
            for v in range(1, 2001)
        ]
        started = time.perf_counter()
        response = await client.post(
            "/v1/licences/bulk",
            content="\n".join(lines).encode(),
            headers={**traffic.headers, "Content-Type": "application/jsonl"},
        )
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text[:500]
        assert response.json()["failed"] == 0
        [row] = await rows(runtime)
        assert row.version == 2000
        print(f"2000 bulk lines in {elapsed:.2f} s")


class TestEntitlementMirror:
    async def test_an_elderly_card_grants_and_its_revocation_clears_within_a_second(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        runtime: Runtime,
        holder: ActiveHolder,
    ) -> None:
        civil = await create_department(
            client, runtime, code="360000-civil", types=["elderly_card", "disability_certificate"]
        )
        organisation = await create_organisation(client, runtime, scenes=["elderly_care"])
        scanner = await create_scanner(client, runtime, organisation, scenes=["elderly_care"])

        async def scanned() -> list[str]:
            qr = await client.get("/v1/me/qr", headers=holder.headers)
            assert qr.status_code == 200, qr.text
            answer = await client.post(
                "/v1/verify",
                json={"token": qr.json()["token"], "scene": "elderly_care"},
                headers=scanner.headers,
            )
            body = answer.json()
            assert body["verdict"] == "valid", body
            return [item["kind"] for item in body["holder"].get("entitlements", [])]

        card = licence(civil, holder.card, document_id="EC-1", type_="elderly_card")
        assert (await push(client, civil, civil.sign(card))).status_code == 201
        assert await scanned() == ["elderly_preferential"]
        revoked = {**card, "version": 2, "status": "revoked"}
        assert (await push(client, civil, civil.sign(revoked))).status_code == 200
        started = time.monotonic()
        while await scanned() and time.monotonic() - started < 1.0:
            pass
        assert await scanned() == []
        assert time.monotonic() - started < 1.0
        async with runtime.database.session() as session:
            card_row = (
                await session.exec(select(Card).where(Card.card_number == holder.card_number))
            ).one()
            left = (
                await session.exec(
                    select(HolderEntitlement).where(
                        HolderEntitlement.person_id == card_row.person_id
                    )
                )
            ).all()
        assert left == []

    async def test_an_administrators_grant_is_not_cleared_by_a_licence(
        self, client: httpx.AsyncClient, runtime: Runtime, holder: ActiveHolder
    ) -> None:
        civil = await create_department(
            client, runtime, code="360000-civil", types=["disability_certificate"]
        )
        later = (TODAY + timedelta(days=30)).isoformat() + "T00:00:00Z"
        granted = await client.post(
            f"/v1/admin/cards/{holder.card_number}/entitlements",
            json={"kind": "disability", "expires_at": later},
            headers=admin_headers(runtime),
        )
        assert granted.status_code == 200, granted.text
        revoked = licence(
            civil, holder.card, document_id="DC-1", type_="disability_certificate", status="revoked"
        )
        assert (await push(client, civil, civil.sign(revoked))).status_code == 201
        async with runtime.database.session() as session:
            kinds = (await session.exec(select(HolderEntitlement.kind))).all()
        assert list(kinds) == ["disability"]
