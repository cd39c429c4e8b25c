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
from tests.api.test_consents import approve, ask
from tests.api.test_licences import licence, push
from tests.api.test_oidc import register
from tests.departments import create_department
from tests.factories import (
    DEFAULT_PIN,
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
    client: httpx.AsyncClient,
    app: FastAPI,
    scopes: list[str] | None = None,
    *,
    ward_pin: str = DEFAULT_PIN,
) -> tuple[ActiveHolder, ActiveHolder, str]:
    """A guardian and a ward with an active link; returns (guardian, ward, link id)."""
    guardian = await create_active_holder(client, app)
    ward = await create_active_holder(client, app, pin=ward_pin)
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
            ended = await client.delete(f"/v1/me/family/links/{link_id}", headers=holder.headers)
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

    async def test_the_real_routes_never_act_for_the_ward(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """The guardian, with every scope and knowing the ward's PIN, tries the real routes:
        change the PIN, cancel the card (naming the ward wherever a request can), approve a
        login the ward is asked for (a kiosk that scanned the ward's code, which the guardian
        fetched) and a department's consent request to the ward. Each is refused, and the
        ward's PIN, card, pending login and consent request are as they were."""
        runtime = app.state.runtime
        guardian, ward, link_id = await linked(client, app, ALL_SCOPES, ward_pin=OTHER_PIN)
        assert guardian.pin != ward.pin
        ward_card = f"/v1/me/family/wards/{link_id}/card"
        ward_history = (await client.get("/v1/me/card/history", headers=ward.headers)).json()

        # The PIN: the route is the guardian's own card; naming the ward is no field of it.
        pin_attempts = [
            ({"old_pin": ward.pin, "new_pin": "582014"}, 401),  # not the guardian's PIN
            ({"old_pin": ward.pin, "new_pin": "582014", "card_number": ward.card_number}, 422),
            ({"old_pin": ward.pin, "new_pin": "582014", "link_id": link_id}, 422),
        ]
        for body, status in pin_attempts:
            response = await client.post("/v1/me/pin", json=body, headers=guardian.headers)
            assert response.status_code == status, (body, response.text)

        # The card: the same, and the counter's route is an administrator's.
        for body, status in [
            ({"pin": ward.pin}, 401),
            ({"pin": ward.pin, "card_number": ward.card_number}, 422),
        ]:
            response = await client.post("/v1/me/card/cancel", json=body, headers=guardian.headers)
            assert response.status_code == status, (body, response.text)
        counter = await client.post(
            f"/v1/admin/cards/{ward.card_number}/cancel", json={}, headers=guardian.headers
        )
        assert counter.status_code == 401

        # A login: a service-hall kiosk scans the ward's code (the guardian shows it).
        kiosk = await register(
            client, app, grant_types=["urn:ietf:params:oauth:grant-type:device_code"]
        )
        qr = await client.get(f"/v1/me/family/wards/{link_id}/qr", headers=guardian.headers)
        assert qr.status_code == 200, qr.text
        kiosk_auth = (kiosk["client_id"], kiosk["client_secret"])
        started = await client.post(
            "/oidc/kiosk_authorization",
            data={"qr_token": qr.json()["token"], "scope": "openid profile"},
            auth=kiosk_auth,
        )
        assert started.status_code == 200, started.text
        waiting = (await client.get("/v1/me/oidc/device-requests", headers=ward.headers)).json()
        assert len(waiting) == 1
        user_code = waiting[0]["user_code"]
        assert (
            await client.get("/v1/me/oidc/device-requests", headers=guardian.headers)
        ).json() == []
        seen = await client.get(
            f"/v1/me/oidc/device-requests/{user_code}", headers=guardian.headers
        )
        assert seen.status_code == 404
        for pin in (guardian.pin, ward.pin):
            for decision in ("approve", "deny"):
                decided = await client.post(
                    f"/v1/me/oidc/device-requests/{user_code}",
                    json={"pin": pin, "decision": decision},
                    headers=guardian.headers,
                )
                assert decided.status_code == 404, (pin, decision, decided.text)
        poll = await client.post(
            "/oidc/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": started.json()["device_code"],
            },
            auth=kiosk_auth,
        )
        assert poll.json()["error"] == "authorization_pending"

        # A consent: a department asks the ward for their driving licence.
        traffic = await create_department(client, runtime)
        pushed = await push(client, traffic, traffic.sign(licence(traffic, ward.card)))
        assert pushed.status_code == 201, pushed.text
        asked = await ask(client, traffic, ward)
        assert asked.status_code == 201, asked.text
        request_id = asked.json()["id"]
        assert (await client.get("/v1/me/consent-requests", headers=guardian.headers)).json() == []
        for pin in (guardian.pin, ward.pin):
            by_guardian = await approve(client, guardian, request_id, pin)
            assert by_guardian.status_code == 404, by_guardian.text
        declined = await client.post(
            f"/v1/me/consent-requests/{request_id}/decline", headers=guardian.headers
        )
        assert declined.status_code == 404
        unread = await client.get(
            f"/v1/consent-requests/{request_id}/data", headers=traffic.headers
        )
        assert unread.status_code == 403

        # Nothing changed for the ward; nor for the guardian's own card.
        ward_requests = (await client.get("/v1/me/consent-requests", headers=ward.headers)).json()
        assert [(row["id"], row["status"]) for row in ward_requests] == [(request_id, "pending")]
        assert [
            row["user_code"]
            for row in (
                await client.get("/v1/me/oidc/device-requests", headers=ward.headers)
            ).json()
        ] == [user_code]
        viewed = await client.get(ward_card, headers=guardian.headers)
        assert viewed.status_code == 200 and viewed.json()["status"] == "active", viewed.text
        for holder in (ward, guardian):
            card = await client.get("/v1/me/card", headers=holder.headers)
            assert card.status_code == 200 and card.json()["status"] == "active", card.text
        before = [row["action"] for row in ward_history]
        after = (await client.get("/v1/me/card/history", headers=ward.headers)).json()
        assert [row["action"] for row in after] == before
        # The ward's PIN is still the ward's: it changes with the old one, not with 582014.
        wrong = await client.post(
            "/v1/me/pin", json={"old_pin": "582014", "new_pin": "705213"}, headers=ward.headers
        )
        assert wrong.status_code == 401
        changed = await client.post(
            "/v1/me/pin", json={"old_pin": ward.pin, "new_pin": "705213"}, headers=ward.headers
        )
        assert changed.status_code == 204, changed.text

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


class TestEveryActionIsInBothAccessLogs:
    async def test_the_whole_journey_shows_in_the_guardians_and_the_wards_log(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        guardian, ward, link_id = await linked(client, app)
        base = f"/v1/me/family/wards/{link_id}"
        assert (await client.get(f"{base}/qr", headers=guardian.headers)).status_code == 200
        assert (await client.get(f"{base}/card", headers=guardian.headers)).status_code == 200
        assert (await client.get(f"{base}/access-log", headers=guardian.headers)).status_code == 200
        assert (
            await client.post(f"{base}/report-loss", headers=guardian.headers)
        ).status_code == 200
        assert (
            await client.delete(f"/v1/me/family/links/{link_id}", headers=ward.headers)
        ).status_code == 200
        journey = {
            "invited",
            "accepted",
            "qr_shown",
            "status_viewed",
            "access_log_viewed",
            "loss_reported",
            "ended",
        }

        def complete(entries: list[dict[str, Any]]) -> bool:
            return journey <= {row["outcome"] for row in entries if row["source"] == "family"}

        for holder, other in ((guardian, ward), (ward, guardian)):
            entries = [
                row
                for row in await entries_when(client, holder, complete)
                if row["source"] == "family"
            ]
            assert sorted(row["outcome"] for row in entries) == sorted(journey)
            assert {row["party"][-4:] for row in entries} == {other.card_number[-4:]}
