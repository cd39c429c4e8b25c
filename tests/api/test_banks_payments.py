"""Cooperating banks, the card's bank binding, benefit payments (routing at the value date,
idempotency, bulk with bad lines), reconciliation, and a bank ending's migration plan."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlmodel import select

from app.audit.log import AUDIT_STREAM
from app.audit.models import AuditEvent
from app.banks.models import BankBinding, BindingStatus
from app.payments import service as payments_service
from app.runtime import Runtime
from app.store import Store, StoreUnavailable
from tests.factories import OTHER_PIN, ActiveHolder, admin_headers, bearer, create_active_holder

TODAY = datetime.now(UTC).date()


@dataclass(frozen=True)
class Client:
    client_id: str
    headers: dict[str, str]
    secret: str


async def client_token(client: httpx.AsyncClient, client_id: str, secret: str) -> Client:
    token = await client.post(
        "/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert token.status_code == 200, token.text
    return Client(client_id, bearer(token.json()["access_token"]), secret)


async def create_bank(client: httpx.AsyncClient, runtime: Runtime, code: str) -> Client:
    created = await client.post(
        "/v1/admin/banks",
        json={"code": code, "name": f"Bank {code}", "agreement_start": "2020-01-01"},
        headers=admin_headers(runtime),
    )
    assert created.status_code == 201, created.text
    issued = await client.post(f"/v1/admin/banks/{code}/client", headers=admin_headers(runtime))
    assert issued.status_code == 201, issued.text
    return await client_token(client, issued.json()["client_id"], issued.json()["client_secret"])


async def create_payer(client: httpx.AsyncClient, runtime: Runtime) -> Client:
    created = await client.post(
        "/v1/admin/payers", json={"name": "人社厅 pensions"}, headers=admin_headers(runtime)
    )
    assert created.status_code == 201, created.text
    return await client_token(client, created.json()["client_id"], created.json()["client_secret"])


def account_number() -> str:
    return "6222" + "".join(str(secrets.randbelow(10)) for _ in range(15))


async def bind(
    client: httpx.AsyncClient, holder: ActiveHolder, bank: Client, code: str, account: str
) -> None:
    asked = await client.put(
        "/v1/me/bank-account",
        json={"bank_code": code, "account_number": account, "pin": holder.pin},
        headers=holder.headers,
    )
    assert asked.status_code == 202, asked.text
    pending = (await client.get("/v1/bank/account-confirmations", headers=bank.headers)).json()
    (mine,) = [row for row in pending if row["binding_id"] == asked.json()["id"]]
    assert mine["account_number"] == account
    assert "*" in mine["holder_name"]
    confirmed = await client.post(
        f"/v1/bank/account-confirmations/{mine['binding_id']}",
        json={"confirmed": True},
        headers=bank.headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "active"


def order(
    card_number: str, payment_id: str, value_date: date, amount: int = 325000
) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "card_number": card_number,
        "kind": "pension",
        "amount_fen": amount,
        "value_date": value_date.isoformat(),
    }


async def pay(client: httpx.AsyncClient, payer: Client, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/disbursements", json=body, headers=payer.headers)


async def inbox(
    client: httpx.AsyncClient, holder: ActiveHolder, kind: str, count: int, timeout: float = 5.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = (await client.get("/v1/me/notifications", headers=holder.headers)).json()
        found = [row for row in rows if row["kind"] == kind]
        if len(found) >= count or time.monotonic() > deadline:
            await asyncio.sleep(0.3)  # an extra one would show
            rows = (await client.get("/v1/me/notifications", headers=holder.headers)).json()
            return [row for row in rows if row["kind"] == kind]
        await asyncio.sleep(0.05)


async def backdate_current_binding(runtime: Runtime, days: int) -> None:
    """The current bindings started `days` ago (a binding that has been in use a while)."""
    async with runtime.database.session() as session:
        for binding in (
            await session.exec(
                select(BankBinding).where(BankBinding.status == BindingStatus.active.value)
            )
        ).all():
            binding.valid_from = datetime.now(UTC) - timedelta(days=days)
            session.add(binding)


class TestBindingAndRouting:
    async def test_payments_before_and_after_a_bank_change_land_on_the_right_account(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        old_bank, new_bank = (
            await create_bank(client, runtime, "OLDB"),
            await create_bank(client, runtime, "NEWB"),
        )
        payer = await create_payer(client, runtime)
        holder = await create_active_holder(client, app)
        old_account, new_account = account_number(), account_number()
        await bind(client, holder, old_bank, "OLDB", old_account)
        await backdate_current_binding(runtime, 30)
        before = TODAY - timedelta(days=10)

        paid_early = await pay(client, payer, order(holder.card_number, "P-1", before))
        assert paid_early.status_code == 201, paid_early.text
        assert paid_early.json()["bank_code"] == "OLDB"
        assert paid_early.json()["account"].endswith(old_account[-4:])

        await bind(client, holder, new_bank, "NEWB", new_account)
        account = (await client.get("/v1/me/bank-account", headers=holder.headers)).json()
        assert account["current"]["bank_code"] == "NEWB" and account["pending"] is None

        late = await pay(client, payer, order(holder.card_number, "P-2", before))
        assert late.status_code == 201, late.text
        assert (late.json()["bank_code"], late.json()["rerouted"]) == ("NEWB", True)
        assert late.json()["account"].endswith(new_account[-4:])
        again = await pay(client, payer, order(holder.card_number, "P-2", before))
        assert again.status_code == 200
        assert again.json()["id"] == late.json()["id"]
        after = await pay(client, payer, order(holder.card_number, "P-3", TODAY + timedelta(1)))
        assert (after.json()["bank_code"], after.json()["rerouted"]) == ("NEWB", False)

        ledger = (await client.get("/v1/me/payments", headers=holder.headers)).json()
        assert sorted((row["payment_id"], row["bank_code"]) for row in ledger) == [
            ("P-1", "OLDB"),
            ("P-2", "NEWB"),
            ("P-3", "NEWB"),
        ]
        rerouted = await inbox(client, holder, "payment_rerouted", 1)
        assert len(rerouted) == 1
        assert rerouted[0]["data"] == {"payment_id": "P-2"}
        assert len(await inbox(client, holder, "bank_changed", 2)) == 2

    async def test_the_pin_is_required_and_a_suspended_bank_takes_no_account(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        await create_bank(client, runtime, "PINB")
        holder = await create_active_holder(client, app)
        wrong = await client.put(
            "/v1/me/bank-account",
            json={"bank_code": "PINB", "account_number": account_number(), "pin": OTHER_PIN},
            headers=holder.headers,
        )
        assert wrong.status_code == 401
        assert (await client.get("/v1/me/bank-account", headers=holder.headers)).json() == {
            "current": None,
            "pending": None,
        }
        suspended = await client.put(
            "/v1/admin/banks/PINB",
            json={"name": "Bank PINB", "status": "suspended", "agreement_start": "2020-01-01"},
            headers=admin_headers(runtime),
        )
        assert suspended.status_code == 200
        refused = await client.put(
            "/v1/me/bank-account",
            json={"bank_code": "PINB", "account_number": account_number(), "pin": holder.pin},
            headers=holder.headers,
        )
        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/bank-not-active"

    @pytest.mark.parametrize("status", ["suspended", "ending"])
    async def test_a_bank_no_longer_active_confirms_no_account_asked_before(
        self, client: httpx.AsyncClient, app: FastAPI, status: str
    ) -> None:
        """The holder asked while the bank was active; suspended or ending since, its client
        may refuse the account but not make it the card's."""
        runtime = app.state.runtime
        bank = await create_bank(client, runtime, "LATE")
        holder = await create_active_holder(client, app)
        asked = await client.put(
            "/v1/me/bank-account",
            json={"bank_code": "LATE", "account_number": account_number(), "pin": holder.pin},
            headers=holder.headers,
        )
        assert asked.status_code == 202, asked.text
        changed = await client.put(
            "/v1/admin/banks/LATE",
            json={"name": "Bank LATE", "status": status, "agreement_start": "2020-01-01"},
            headers=admin_headers(runtime),
        )
        assert changed.status_code == 200, changed.text
        path = f"/v1/bank/account-confirmations/{asked.json()['id']}"
        confirmed = await client.post(path, json={"confirmed": True}, headers=bank.headers)
        assert confirmed.status_code == 409, confirmed.text
        assert confirmed.json()["type"] == "/problems/bank-not-active"
        mine = (await client.get("/v1/me/bank-account", headers=holder.headers)).json()
        assert mine["current"] is None and mine["pending"]["status"] == "pending"
        refused = await client.post(path, json={"confirmed": False}, headers=bank.headers)
        assert refused.status_code == 200, refused.text
        assert refused.json()["status"] == "refused"
        mine = (await client.get("/v1/me/bank-account", headers=holder.headers)).json()
        assert mine == {"current": None, "pending": None}


class TestDisbursements:
    async def test_bulk_stores_the_good_lines_and_reports_the_bad_ones(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        bank = await create_bank(client, runtime, "BULKB")
        payer = await create_payer(client, runtime)
        holder = await create_active_holder(client, app)
        unbound = await create_active_holder(client, app)
        await bind(client, holder, bank, "BULKB", account_number())
        lines = [
            orjson.dumps(order(holder.card_number, "B-1", TODAY)),
            b'{"payment_id": "B-2", not json',
            orjson.dumps(order("999999999999", "B-3", TODAY)),
            orjson.dumps({**order(holder.card_number, "B-4", TODAY), "amount_fen": -5}),
            b"",
            orjson.dumps(order(holder.card_number, "B-5", TODAY)),
            orjson.dumps(order(holder.card_number, "B-1", TODAY, amount=1)),  # id reused
            orjson.dumps(order(unbound.card_number, "B-6", TODAY)),  # no bank account
            orjson.dumps(order(holder.card_number, "B-1", TODAY)),  # the same payment again
        ]
        response = await client.post(
            "/v1/disbursements",
            content=b"\n".join(lines) + b"\n",
            headers={**payer.headers, "Content-Type": "application/jsonl"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        outcomes = {row["line"]: row["outcome"] for row in body["results"]}
        assert outcomes == {
            1: "created",
            2: "error",
            3: "error",
            4: "error",
            6: "created",
            7: "error",
            8: "error",
            9: "duplicate",
        }
        errors = {row["line"]: row["error"]["type"] for row in body["results"] if row["error"]}
        assert errors == {
            2: "/problems/invalid-disbursement",
            3: "/problems/payee-not-found",
            4: "/problems/invalid-disbursement",
            7: "/problems/payment-id-reused",
            8: "/problems/no-bank-account",
        }
        assert (body["created"], body["duplicates"], body["errors"]) == (2, 1, 5)
        ledger = (await client.get("/v1/me/payments", headers=holder.headers)).json()
        assert sorted((row["payment_id"], row["amount_fen"]) for row in ledger) == [
            ("B-1", 325000),
            ("B-5", 325000),
        ]
        assert (await client.get("/v1/me/payments", headers=unbound.headers)).json() == []

    async def test_the_same_payment_id_twice_is_one_payment_and_notified_once(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        bank = await create_bank(client, runtime, "ONCEB")
        payer = await create_payer(client, runtime)
        holder = await create_active_holder(client, app)
        await bind(client, holder, bank, "ONCEB", account_number())
        first = await pay(client, payer, order(holder.card_number, "X-1", TODAY))
        second = await pay(client, payer, order(holder.card_number, "X-1", TODAY))
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json() == second.json()
        other = await pay(client, payer, order(holder.card_number, "X-1", TODAY, amount=7))
        assert other.status_code == 409
        assert len((await client.get("/v1/me/payments", headers=holder.headers)).json()) == 1
        assert len(await inbox(client, holder, "payment_made", 1)) == 1
        wrong_type = await client.post(
            "/v1/disbursements", content=b"x", headers={**payer.headers, "Content-Type": "text/csv"}
        )
        assert wrong_type.status_code == 415

    async def test_concurrent_submissions_of_one_payment_id_answer_like_sequential_ones(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """Two requests racing on one payment id: one is stored, the loser answers what a
        sequential duplicate answers (200 the same payment, or 409 for other content), never
        500."""
        runtime = app.state.runtime
        bank = await create_bank(client, runtime, "RACEB")
        payer = await create_payer(client, runtime)
        holder = await create_active_holder(client, app)
        await bind(client, holder, bank, "RACEB", account_number())
        same = await asyncio.gather(
            pay(client, payer, order(holder.card_number, "R-1", TODAY)),
            pay(client, payer, order(holder.card_number, "R-1", TODAY)),
        )
        assert sorted(r.status_code for r in same) == [200, 201], [r.text for r in same]
        assert same[0].json() == same[1].json()
        other = await asyncio.gather(
            pay(client, payer, order(holder.card_number, "R-2", TODAY)),
            pay(client, payer, order(holder.card_number, "R-2", TODAY, amount=7)),
        )
        assert sorted(r.status_code for r in other) == [201, 409], [r.text for r in other]
        refused = next(r for r in other if r.status_code == 409)
        assert refused.json()["type"] == "/problems/payment-id-reused"
        bulk = b"\n".join(
            orjson.dumps(order(holder.card_number, f"R-B{n}", TODAY)) for n in range(3)
        )
        lines = await asyncio.gather(
            *(
                client.post(
                    "/v1/disbursements",
                    content=bulk,
                    headers={**payer.headers, "Content-Type": "application/jsonl"},
                )
                for _ in range(2)
            )
        )
        assert [r.status_code for r in lines] == [200, 200], [r.text for r in lines]
        counts = sorted((r.json()["created"], r.json()["duplicates"]) for r in lines)
        assert counts == [(0, 3), (3, 0)]
        ledger = (await client.get("/v1/me/payments", headers=holder.headers)).json()
        assert sorted(row["payment_id"] for row in ledger) == [
            "R-1",
            "R-2",
            "R-B0",
            "R-B1",
            "R-B2",
        ]
        assert len(await inbox(client, holder, "payment_made", 5)) == 5


class TestReconciliation:
    async def test_an_injected_mismatch_is_found(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        bank = await create_bank(client, runtime, "RECB")
        payer = await create_payer(client, runtime)
        holder = await create_active_holder(client, app)
        account = account_number()
        await bind(client, holder, bank, "RECB", account)
        for payment_id in ("R-1", "R-2", "R-3"):
            assert (
                await pay(client, payer, order(holder.card_number, payment_id, TODAY))
            ).status_code == 201

        def credit(payment_id: str, amount: int = 325000) -> dict[str, Any]:
            return {
                "payer_id": payer.client_id,
                "payment_id": payment_id,
                "account_number": account,
                "amount_fen": amount,
                "value_date": TODAY.isoformat(),
            }

        statement = {
            "period_from": (TODAY - timedelta(days=1)).isoformat(),
            "period_to": (TODAY + timedelta(days=1)).isoformat(),
            "credits": [credit("R-1"), credit("R-2", amount=325001), credit("R-9")],
        }
        report = await client.post(
            "/v1/admin/banks/RECB/reconciliations", json=statement, headers=admin_headers(runtime)
        )
        assert report.status_code == 200, report.text
        body = report.json()
        assert (body["ledger_entries"], body["statement_credits"], body["matched"]) == (3, 3, 1)
        assert sorted((m["kind"], m["payment_id"]) for m in body["mismatches"]) == [
            ("amount_differs", "R-2"),
            ("missing_credit", "R-3"),
            ("unknown_credit", "R-9"),
        ]
        clean = {**statement, "credits": [credit("R-1"), credit("R-2"), credit("R-3")]}
        again = await client.post(
            "/v1/admin/banks/RECB/reconciliations", json=clean, headers=admin_headers(runtime)
        )
        assert again.json()["mismatches"] == []


class TestBankEnding:
    async def test_the_migration_plan_lists_notifies_and_reports_progress(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        ending = await create_bank(client, runtime, "ENDB")
        successor = await create_bank(client, runtime, "NEXTB")
        holders = [await create_active_holder(client, app) for _ in range(2)]
        for holder in holders:
            await bind(client, holder, ending, "ENDB", account_number())
        started = await client.post(
            "/v1/admin/banks/ENDB/migrations",
            json={"ends_on": (TODAY + timedelta(days=90)).isoformat()},
            headers=admin_headers(runtime),
        )
        assert started.status_code == 201, started.text
        plan = started.json()
        assert (plan["affected"], plan["notified"], plan["moved"]) == (2, 2, 0)
        assert len(plan["remaining_cards"]) == 2
        for holder in holders:
            assert len(await inbox(client, holder, "bank_ending", 1)) == 1
        closed = await client.put(
            "/v1/me/bank-account",
            json={"bank_code": "ENDB", "account_number": account_number(), "pin": holders[0].pin},
            headers=holders[0].headers,
        )
        assert closed.status_code == 409
        await bind(client, holders[0], successor, "NEXTB", account_number())
        report = await client.get(
            f"/v1/admin/banks/ENDB/migrations/{plan['id']}", headers=admin_headers(runtime)
        )
        assert report.status_code == 200
        progress = report.json()
        assert (progress["affected"], progress["moved"]) == (2, 1)
        assert progress["moved_to"] == {"NEXTB": 1}
        assert progress["remaining_cards"] == [
            c for c in plan["remaining_cards"] if c[-4:] == holders[1].card_number[-4:]
        ]
        banks = (await client.get("/v1/admin/banks", headers=admin_headers(runtime))).json()
        assert {b["code"]: b["status"] for b in banks}["ENDB"] == "ending"


class TestOddSubmissions:
    async def test_odd_bodies_are_4xx_never_500(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        payer = await create_payer(client, app.state.runtime)
        json_type = {**payer.headers, "Content-Type": "application/json"}
        jsonl = {**payer.headers, "Content-Type": "application/jsonl"}
        cases = [
            (b"", json_type, 422),
            (b"\xff\xfe", json_type, 422),
            (b"[1, 2]", json_type, 422),
            (b'{"payment_id": "a", "payment_id": "b"}', json_type, 422),
            (b"\n\n  \n", jsonl, 422),
            (b"\xff\n", jsonl, 200),
            (b"{}\n" * 1002, jsonl, 422),
            (
                orjson.dumps(order("1", "big", TODAY)).replace(b"325000", b"1" + b"0" * 30),
                json_type,
                422,
            ),
            (orjson.dumps({**order("1", "d", TODAY), "value_date": 0}), json_type, 422),
        ]
        for body, headers, expected in cases:
            response = await client.post("/v1/disbursements", content=body, headers=headers)
            assert response.status_code == expected, (body[:40], response.text)
        unbound_line = await client.post("/v1/disbursements", content=b"\xff\n", headers=jsonl)
        assert (
            unbound_line.json()["results"][0]["error"]["type"] == "/problems/invalid-disbursement"
        )


async def until_stored(runtime: Runtime, event_id: str, timeout: float = 5.0) -> None:
    """Waits until the audit consumer stored the event."""
    deadline = time.monotonic() + timeout
    while True:
        async with runtime.database.session() as session:
            found = await session.exec(select(AuditEvent.id).where(AuditEvent.event_id == event_id))
            if found.first() is not None:
                return
        assert time.monotonic() < deadline, f"event {event_id} not stored"
        await asyncio.sleep(0.05)


class TestNotifiedAtLeastOnce:
    async def test_a_crash_between_the_commit_and_the_append_still_notifies_once(
        self, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The payment's events are appended after the commit: when that append never
        happens (the process dies in between), the notification stored with the payment is
        in the inbox all the same, once; the event arriving later (twice) adds nothing."""
        runtime: Runtime = app.state.runtime
        bank = await create_bank(client, runtime, "CRASHB")
        payer = await create_payer(client, runtime)
        holder = await create_active_holder(client, app)
        await bind(client, holder, bank, "CRASHB", account_number())
        lost: list[Mapping[str, str]] = []

        async def dies(store: Store, fields: Mapping[str, str]) -> None:
            lost.append(fields)
            raise StoreUnavailable("the process died before the append")

        monkeypatch.setattr(payments_service, "append_event", dies)
        crashed = await pay(client, payer, order(holder.card_number, "CRASH-1", TODAY))
        assert crashed.status_code == 503
        monkeypatch.undo()
        assert [fields["action"] for fields in lost] == ["payment.credited"]
        assert len((await client.get("/v1/me/payments", headers=holder.headers)).json()) == 1
        (made,) = await inbox(client, holder, "payment_made", 1)
        assert made["data"] == {"payment_id": "CRASH-1"}

        for _ in range(2):  # the event after all, and redelivered
            await runtime.store.stream_append(AUDIT_STREAM, lost[0])
        await until_stored(runtime, lost[0]["eid"])
        assert [
            row["id"] for row in await inbox(client, holder, "payment_made", 2, timeout=0.5)
        ] == [made["id"]]
