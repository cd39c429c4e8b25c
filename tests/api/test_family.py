"""The family service (亲情服务): a guardian invites a ward, the ward accepts with the PIN (or an
operator records the consent of a ward with no phone), and the guardian shows the ward's QR,
views the ward's card and access log and reports the card lost, within the link's scopes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.security.roles import AdminRole
from tests.factories import (
    OTHER_PIN,
    ActiveHolder,
    create_active_holder,
    create_scanner,
    issue_card,
    role_headers,
)

ALL_SCOPES = ["show_qr", "view", "report_loss"]


async def invite(
    client: httpx.AsyncClient,
    guardian: ActiveHolder,
    ward_card_number: str,
    scopes: list[str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/me/family/invitations",
        json={"ward_card_number": ward_card_number, "scopes": scopes or ALL_SCOPES},
        headers=guardian.headers,
    )


async def linked(
    client: httpx.AsyncClient, app: FastAPI, scopes: list[str] | None = None
) -> tuple[ActiveHolder, ActiveHolder, str]:
    """A guardian and a ward with an active link; returns (guardian, ward, link id)."""
    guardian = await create_active_holder(client, app)
    ward = await create_active_holder(client, app)
    invited = await invite(client, guardian, ward.card_number, scopes)
    assert invited.status_code == 201, invited.text
    link_id = str(invited.json()["id"])
    accepted = await client.post(
        f"/v1/me/family/invitations/{link_id}/accept", json={"pin": ward.pin}, headers=ward.headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "active"
    return guardian, ward, link_id


async def entries_when(
    client: httpx.AsyncClient, holder: ActiveHolder, wanted: Any, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """The holder's access-log entries once `wanted(entries)` holds (polled)."""
    deadline = time.monotonic() + timeout
    while True:
        page = await client.get("/v1/me/access-log", headers=holder.headers)
        assert page.status_code == 200, page.text
        entries: list[dict[str, Any]] = page.json()["entries"]
        if wanted(entries) or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.05)


class TestInvitationAndAcceptance:
    async def test_invite_accept_and_both_sides_list_the_link(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian, ward, link_id = await linked(client, app)
        mine = (await client.get("/v1/me/family", headers=guardian.headers)).json()
        theirs = (await client.get("/v1/me/family", headers=ward.headers)).json()
        assert [(row["id"], row["role"], row["status"]) for row in mine] == [
            (link_id, "guardian", "active")
        ]
        assert [(row["id"], row["role"]) for row in theirs] == [(link_id, "ward")]
        assert theirs[0]["other_card_number"].endswith(guardian.card_number[-4:])
        assert "*" in theirs[0]["other_card_number"]

    async def test_the_ward_must_give_the_right_pin_and_the_guardian_cannot_accept(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian = await create_active_holder(client, app)
        ward = await create_active_holder(client, app)
        link_id = (await invite(client, guardian, ward.card_number)).json()["id"]
        path = f"/v1/me/family/invitations/{link_id}/accept"
        wrong = await client.post(path, json={"pin": OTHER_PIN}, headers=ward.headers)
        assert wrong.status_code == 401
        by_guardian = await client.post(path, json={"pin": guardian.pin}, headers=guardian.headers)
        assert by_guardian.status_code == 403
        pending = await client.get(f"/v1/me/family/wards/{link_id}/qr", headers=guardian.headers)
        assert pending.status_code == 403
        assert pending.json()["type"] == "/problems/family-link-inactive"

    async def test_an_operator_records_the_consent_of_a_ward_without_a_phone(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian = await create_active_holder(client, app)
        ward = await issue_card(client, app)  # no phone: never activated
        link_id = (await invite(client, guardian, ward.card_number)).json()["id"]
        operator = role_headers(app.state.runtime, AdminRole.operator)
        path = f"/v1/admin/cards/{ward.card_number}/family-consent"
        refused = await client.post(
            path,
            json={"link_id": link_id, "holder_document_number": "110101199003071234"},
            headers=operator,
        )
        assert refused.status_code == 403
        recorded = await client.post(
            path,
            json={"link_id": link_id, "holder_document_number": ward.document_number},
            headers=operator,
        )
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["status"] == "active"
        assert recorded.json()["consent_recorded_by"] == "adm_operator"
        qr = await client.get(f"/v1/me/family/wards/{link_id}/qr", headers=guardian.headers)
        assert qr.status_code == 200, qr.text


class TestTheGuardianActsForTheWard:
    async def test_the_wards_qr_scans_valid_and_both_access_logs_name_the_guardian(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian, ward, link_id = await linked(client, app)
        scanner = await create_scanner(client, app.state.runtime)
        qr = await client.get(f"/v1/me/family/wards/{link_id}/qr", headers=guardian.headers)
        assert qr.status_code == 200, qr.text
        verified = await client.post(
            "/v1/verify",
            json={"token": qr.json()["token"], "scene": "museum"},
            headers=scanner.headers,
        )
        assert verified.json()["verdict"] == "valid"

        def scanned(entries: list[dict[str, Any]]) -> bool:
            return any(entry["source"] == "online_scan" for entry in entries)

        label = f"{guardian.card_number[:2]}"
        for holder in (ward, guardian):
            entries = await entries_when(client, holder, scanned)
            scans = [entry for entry in entries if entry["source"] == "online_scan"]
            assert len(scans) == 1, entries
            assert scans[0]["party"].startswith(label)
            assert scans[0]["party"].endswith(guardian.card_number[-4:])
            assert scans[0]["organisation_id"] == scanner.organisation_id
        # the guardian's fetch of the code is in both logs too
        ward_entries = await entries_when(
            client, ward, lambda rows: any(row["outcome"] == "qr_shown" for row in rows)
        )
        assert any(row["source"] == "family" for row in ward_entries)

    async def test_report_the_wards_card_lost_takes_effect_on_verify(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian, ward, link_id = await linked(client, app)
        scanner = await create_scanner(client, app.state.runtime)
        ward_token = (await client.get("/v1/me/qr", headers=ward.headers)).json()["token"]
        lost = await client.post(
            f"/v1/me/family/wards/{link_id}/report-loss", headers=guardian.headers
        )
        assert lost.status_code == 200, lost.text
        assert lost.json()["to_status"] == "lost"
        verified = await client.post(
            "/v1/verify", json={"token": ward_token, "scene": "museum"}, headers=scanner.headers
        )
        assert verified.json()["verdict"] == "card_lost"
        status = await client.get(f"/v1/me/family/wards/{link_id}/card", headers=guardian.headers)
        assert status.json()["status"] == "lost"

    async def test_view_the_wards_access_log(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        guardian, ward, link_id = await linked(client, app)
        seen = await client.get(
            f"/v1/me/family/wards/{link_id}/access-log", headers=guardian.headers
        )
        assert seen.status_code == 200, seen.text
        entries = await entries_when(
            client, ward, lambda rows: any(row["outcome"] == "access_log_viewed" for row in rows)
        )
        assert any(row["outcome"] == "access_log_viewed" for row in entries)

    async def test_ending_the_link_refuses_the_guardians_next_qr_request(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        for ender in ("guardian", "ward"):
            guardian, ward, link_id = await linked(client, app)
            holder = guardian if ender == "guardian" else ward
            ended = await client.delete(f"/v1/me/family/{link_id}", headers=holder.headers)
            assert ended.status_code == 200, ended.text
            assert ended.json()["ended_by"] == ender
            refused = await client.get(
                f"/v1/me/family/wards/{link_id}/qr", headers=guardian.headers
            )
            assert refused.status_code == 403


class TestWhatAGuardianMayNotDo:
    @pytest.mark.parametrize("action", ["pin", "cancel", "login-approvals", "consents"])
    async def test_forbidden_actions_are_403(
        self, client: httpx.AsyncClient, app: FastAPI, action: str
    ) -> None:
        guardian, _, link_id = await linked(client, app)
        refused = await client.post(
            f"/v1/me/family/wards/{link_id}/{action}", json={}, headers=guardian.headers
        )
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/guardian-not-permitted"

    async def test_a_scope_not_granted_is_403_and_a_ward_is_no_guardian(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian, ward, link_id = await linked(client, app, scopes=["view"])
        no_qr = await client.get(f"/v1/me/family/wards/{link_id}/qr", headers=guardian.headers)
        assert no_qr.status_code == 403
        assert no_qr.json()["type"] == "/problems/family-scope-not-granted"
        no_loss = await client.post(
            f"/v1/me/family/wards/{link_id}/report-loss", headers=guardian.headers
        )
        assert no_loss.status_code == 403
        reversed_roles = await client.get(
            f"/v1/me/family/wards/{link_id}/card", headers=ward.headers
        )
        assert reversed_roles.status_code == 403

    async def test_a_stranger_sees_no_link(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        _, _, link_id = await linked(client, app)
        stranger = await create_active_holder(client, app)
        response = await client.get(f"/v1/me/family/wards/{link_id}/card", headers=stranger.headers)
        assert response.status_code == 404


class TestLimits:
    async def test_three_guardians_per_ward(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        ward = await issue_card(client, app)
        for _ in range(3):
            guardian = await create_active_holder(client, app)
            assert (await invite(client, guardian, ward.card_number)).status_code == 201
        fourth = await create_active_holder(client, app)
        refused = await invite(client, fourth, ward.card_number)
        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/family-limit-reached"

    async def test_eight_wards_per_guardian_and_no_duplicate(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian = await create_active_holder(client, app)
        wards = [await issue_card(client, app) for _ in range(9)]
        for ward in wards[:8]:
            assert (await invite(client, guardian, ward.card_number)).status_code == 201
        again = await invite(client, guardian, wards[0].card_number)
        assert again.status_code == 409
        assert again.json()["type"] == "/problems/family-link-exists"
        ninth = await invite(client, guardian, wards[8].card_number)
        assert ninth.status_code == 409
        assert ninth.json()["type"] == "/problems/family-limit-reached"
        self_invite = await invite(client, guardian, guardian.card_number)
        assert self_invite.status_code == 422
