"""Complaints (JX5, SY14, SC22, GD11): anyone files one (anonymously with a contact, or as a
holder), reads its status, answer and timeline with the tracking number; administrators list,
assign, answer and close; every step is audited and shown to the complainant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from api.app import create_app
from app.complaints.models import Complaint
from app.complaints.service import TRACKING_ALPHABET, TRACKING_LENGTH
from app.config import Settings
from app.runtime import Runtime
from app.security.roles import AdminRole
from tests.factories import (
    CITY,
    create_active_holder,
    persisted_audit,
    role_headers,
)

CONTACT = "reporter@example.cn"


def complaint(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "venue_refused_ecard",
        "details": "The museum ticket office refused my e-card.",
        "region_code": CITY,
        "contact": CONTACT,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
def admin(runtime: Runtime) -> dict[str, str]:
    return role_headers(runtime, AdminRole.provincial_admin)


async def only_id(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    listed = await client.get("/v1/admin/complaints", headers=admin)
    assert listed.status_code == 200
    assert len(listed.json()) == 1
    return str(listed.json()[0]["id"])


class TestAnAnonymousComplaintEndToEnd:
    async def test_filed_tracked_assigned_answered_closed_with_its_timeline(
        self, client: httpx.AsyncClient, runtime: Runtime, admin: dict[str, str]
    ) -> None:
        filed = await client.post("/v1/complaints", json=complaint(access_log_entry="acc_0001"))
        assert filed.status_code == 201, filed.text
        number = filed.json()["tracking_number"]
        assert len(number) == TRACKING_LENGTH
        assert set(number) <= set(TRACKING_ALPHABET)
        assert filed.json()["status"] == "open"

        tracked = await client.get(f"/v1/complaints/{number}")
        assert tracked.status_code == 200
        assert tracked.json()["status"] == "open"
        assert tracked.json()["access_log_entry"] == "acc_0001"
        assert [step["step"] for step in tracked.json()["timeline"]] == ["filed"]
        assert "contact" not in tracked.json()  # the capability reads no personal data back

        complaint_id = await only_id(client, admin)
        assigned = await client.post(
            f"/v1/admin/complaints/{complaint_id}/assign", headers=admin, json={}
        )
        assert assigned.status_code == 200
        assert assigned.json()["assignee"] == "adm_provincial_admin"
        assert (await client.get(f"/v1/complaints/{number}")).json()["status"] == "assigned"

        answer = "The venue was told that the e-card is valid ID; it apologised."
        answered = await client.post(
            f"/v1/admin/complaints/{complaint_id}/answer", headers=admin, json={"answer": answer}
        )
        assert answered.status_code == 200
        seen = (await client.get(f"/v1/complaints/{number}")).json()
        assert (seen["status"], seen["answer"]) == ("answered", answer)

        closed = await client.post(
            f"/v1/admin/complaints/{complaint_id}/close", headers=admin, json={"note": "done"}
        )
        assert closed.status_code == 200
        seen = (await client.get(f"/v1/complaints/{number}")).json()
        assert seen["status"] == "closed"
        assert [(step["step"], step["note"]) for step in seen["timeline"]] == [
            ("filed", None),
            ("assigned", None),
            ("answered", answer),
            ("closed", "done"),
        ]
        assert "actor" not in seen["timeline"][0]

        detail = (await client.get(f"/v1/admin/complaints/{complaint_id}", headers=admin)).json()
        assert detail["contact"] == CONTACT
        assert detail["filed_by_holder"] is False
        assert [step["actor"] for step in detail["timeline"]] == [
            "anonymous",
            "adm_provincial_admin",
            "adm_provincial_admin",
            "adm_provincial_admin",
        ]

    async def test_every_step_is_audited_without_the_tracking_number(
        self, client: httpx.AsyncClient, runtime: Runtime, admin: dict[str, str]
    ) -> None:
        number = (await client.post("/v1/complaints", json=complaint())).json()["tracking_number"]
        complaint_id = await only_id(client, admin)
        for step, body in [("assign", {}), ("answer", {"answer": "ok"}), ("close", {})]:
            response = await client.post(
                f"/v1/admin/complaints/{complaint_id}/{step}", headers=admin, json=body
            )
            assert response.status_code == 200
        for action in ("filed", "assigned", "answered", "closed"):
            rows = await persisted_audit(runtime, f"complaint.{action}")
            assert len(rows) == 1, action
            assert rows[0]["region"] == CITY
            assert number not in str(rows[0])

    async def test_a_closed_complaint_takes_no_further_step(
        self, client: httpx.AsyncClient, admin: dict[str, str]
    ) -> None:
        await client.post("/v1/complaints", json=complaint())
        complaint_id = await only_id(client, admin)
        base = f"/v1/admin/complaints/{complaint_id}"
        assert (await client.post(f"{base}/close", headers=admin, json={})).status_code == 200
        for step, body in [("assign", {}), ("answer", {"answer": "late"}), ("close", {})]:
            refused = await client.post(f"{base}/{step}", headers=admin, json=body)
            assert refused.status_code == 409
            assert refused.json()["type"] == "/problems/complaint-closed"

    async def test_without_a_contact_it_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/complaints", json=complaint(contact=None))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        "details",
        [" " + "x" * 2000, "\u3000" * 3, "\x1c\n"],
        ids=["over-long-once-padded", "ideographic-spaces", "separators"],
    )
    async def test_details_the_schema_refuses_are_refused(
        self, client: httpx.AsyncClient, details: str
    ) -> None:
        """Limits apply to the text as sent: what the published schema refuses, we refuse."""
        response = await client.post("/v1/complaints", json=complaint(details=details))
        assert response.status_code == 422

    async def test_details_are_stored_without_surrounding_white_space(
        self, client: httpx.AsyncClient
    ) -> None:
        filed = await client.post("/v1/complaints", json=complaint(details="  Refused.\n"))
        number = filed.json()["tracking_number"]
        assert (await client.get(f"/v1/complaints/{number}")).json()["details"] == "Refused."

    async def test_an_unknown_tracking_number_is_not_found(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/complaints/ABCDEFGH2345")
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/complaint-not-found"

    async def test_the_tracking_number_reads_back_in_lower_case(
        self, client: httpx.AsyncClient
    ) -> None:
        number = (await client.post("/v1/complaints", json=complaint())).json()["tracking_number"]
        assert (await client.get(f"/v1/complaints/{number.lower()}")).status_code == 200

    async def test_contact_and_details_are_sealed_and_the_number_is_not_stored(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        number = (await client.post("/v1/complaints", json=complaint())).json()["tracking_number"]
        async with runtime.database.session() as session:
            row = (await session.exec(select(Complaint))).one()
        assert row.contact_sealed is not None
        assert CONTACT.encode() not in row.contact_sealed
        assert b"museum" not in row.details_sealed
        assert number not in str(row.model_dump())
        assert runtime.pii.open("complaint_contact", row.contact_sealed) == CONTACT


class TestAHoldersComplaint:
    async def test_filed_in_the_app_and_listed_with_its_answer(
        self, client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str]
    ) -> None:
        holder = await create_active_holder(client, app)
        other = await create_active_holder(client, app)
        filed = await client.post(
            "/v1/me/complaints",
            json=complaint(kind="suspected_misuse", contact=None, region_code=None),
            headers=holder.headers,
        )
        assert filed.status_code == 201, filed.text
        complaint_id = await only_id(client, admin)
        detail = (await client.get(f"/v1/admin/complaints/{complaint_id}", headers=admin)).json()
        assert detail["filed_by_holder"] is True
        assert detail["contact"] is None
        assert detail["region_code"] is not None  # the card's region
        await client.post(
            f"/v1/admin/complaints/{complaint_id}/answer",
            headers=admin,
            json={"answer": "The scans were yours; nothing wrong."},
        )

        mine = await client.get("/v1/me/complaints", headers=holder.headers)
        assert mine.status_code == 200
        assert [(row["kind"], row["status"]) for row in mine.json()] == [
            ("suspected_misuse", "answered")
        ]
        assert mine.json()[0]["answer"] == "The scans were yours; nothing wrong."
        assert [step["step"] for step in mine.json()[0]["timeline"]] == ["filed", "answered"]
        theirs = await client.get("/v1/me/complaints", headers=other.headers)
        assert theirs.json() == []
        tracked = await client.get(f"/v1/complaints/{filed.json()['tracking_number']}")
        assert tracked.json()["status"] == "answered"


class TestAdministratorsList:
    async def test_filters_by_status_kind_and_region(
        self, client: httpx.AsyncClient, admin: dict[str, str]
    ) -> None:
        await client.post("/v1/complaints", json=complaint())
        await client.post("/v1/complaints", json=complaint(kind="other", region_code="360200"))
        listed = await client.get("/v1/admin/complaints", headers=admin)
        assert len(listed.json()) == 2

        async def kinds(**params: str) -> list[str]:
            response = await client.get("/v1/admin/complaints", params=params, headers=admin)
            assert response.status_code == 200
            return [row["kind"] for row in response.json()]

        assert await kinds(kind="other") == ["other"]
        assert await kinds(region="360200") == ["other"]
        assert await kinds(status="closed") == []
        assert sorted(await kinds(status="open")) == ["other", "venue_refused_ecard"]


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    overrides = {
        "rate_limit_complaints_per_address": "2/60",
        "rate_limit_complaint_lookups_per_address": "3/60",
    }
    application = create_app(settings.model_copy(update=overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_anonymous_filing_is_rate_limited_per_address(
    limited: httpx.AsyncClient,
) -> None:
    answers = [await limited.post("/v1/complaints", json=complaint()) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 429]
    assert answers[2].json()["type"] == "/problems/too-many-requests"
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60


async def test_lookups_by_tracking_number_are_rate_limited_apart_from_filing(
    limited: httpx.AsyncClient,
) -> None:
    """Guessing tracking numbers is braked; checking one's own does not spend the filing budget."""
    number = (await limited.post("/v1/complaints", json=complaint())).json()["tracking_number"]
    answers = [await limited.get(f"/v1/complaints/{number}") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert (await limited.post("/v1/complaints", json=complaint())).status_code == 201


async def test_the_auditor_reads_the_steps_in_the_audit_log(
    client: httpx.AsyncClient, runtime: Runtime, admin: dict[str, str]
) -> None:
    await client.post("/v1/complaints", json=complaint())
    complaint_id = await only_id(client, admin)
    await client.post(f"/v1/admin/complaints/{complaint_id}/close", headers=admin, json={})
    await persisted_audit(runtime, "complaint.closed")
    auditor = role_headers(runtime, AdminRole.auditor)
    read = await client.get(
        "/v1/admin/audit-events", params={"subject": complaint_id}, headers=auditor
    )
    assert read.status_code == 200
    assert [(row["action"], row["actor"]) for row in read.json()] == [
        ("complaint.closed", "adm_provincial_admin"),
        ("complaint.filed", "anonymous"),
    ]
    older = await client.get(
        "/v1/admin/audit-events",
        params={"subject": complaint_id, "before": read.json()[0]["id"]},
        headers=auditor,
    )
    assert [row["action"] for row in older.json()] == ["complaint.filed"]
    operator = role_headers(runtime, AdminRole.operator)
    assert (await client.get("/v1/admin/audit-events", headers=operator)).status_code == 403
