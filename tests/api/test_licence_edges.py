"""E-licences at their edges (issue 14 audit): what a scanner and the holder see of a licence
that is revoked, suspended, expired or not yet valid; presentations that outlived their
lifetime or whose card is lost or suspended; a department token narrowed to fewer types; the
bulk push's limits and a failed commit (nothing stored, nothing audited); and a licence signed
by an independent JOSE library (joserfc), kept verbatim and verifiable by it again."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey
from sqlalchemy import exc
from sqlmodel.ext.asyncio.session import AsyncSession

from api.app import create_app
from app.audit.log import record
from app.config import Settings
from app.licences import service as licence_service
from app.runtime import Runtime
from app.security.principals import DepartmentPrincipal
from app.store import Store
from app.store.redis import RedisStore
from tests.api.test_acknowledged_writes import assert_unavailable
from tests.api.test_licence_presentation import present, scanner_for, verify
from tests.api.test_licences import TODAY, licence, push, rows
from tests.api.test_lifecycle import operate
from tests.departments import Department, create_department
from tests.factories import ActiveHolder, admin_headers, bearer, create_active_holder
from token_service.jws import canonicalize

JSONL = "application/jsonl"


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


async def linked(
    client: httpx.AsyncClient, department: Department, holder: ActiveHolder, **fields: Any
) -> str:
    pushed = await push(
        client, department, department.sign(licence(department, holder.card, **fields))
    )
    assert pushed.status_code == 201, pushed.text
    licence_id: str = pushed.json()["licence_id"]
    return licence_id


class PushEvents:
    """The `licence.push` audit events appended to the stream while on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.subjects: list[str] = []

        async def recorded(
            store: Store, action: str, actor: str, subject: str = "", data: Any = None
        ) -> str:
            if action == licence_service.PUSH_ACTION:
                self.subjects.append(subject)
            return await record(store, action, actor, subject, data)

        monkeypatch.setattr("app.licences.service.record", recorded)


class FailingLicenceCommits:
    """Makes the commit of a licence push's transaction fail as when the connection breaks
    during COMMIT (other commits, e.g. the authentication's, go through), while on."""

    def __init__(self) -> None:
        self.patch = pytest.MonkeyPatch()  # its own: leaving undoes only this
        self.failed = 0

    def __enter__(self) -> None:
        commit, begin_push = AsyncSession.commit, licence_service._begin_push

        async def marked(session: AsyncSession, principal: DepartmentPrincipal) -> Any:
            session.info["licence_push"] = True
            return await begin_push(session, principal)

        async def failing(session: AsyncSession) -> None:
            if session.info.pop("licence_push", False):
                self.failed += 1
                raise exc.OperationalError(
                    "COMMIT", {}, ConnectionResetError("connection reset by peer"), True
                )
            await commit(session)

        self.patch.setattr(licence_service, "_begin_push", marked)
        self.patch.setattr(AsyncSession, "commit", failing)

    def __exit__(self, *_: object) -> None:
        self.patch.undo()


@pytest.fixture
def push_events(monkeypatch: pytest.MonkeyPatch) -> PushEvents:
    return PushEvents(monkeypatch)


# --- 1. presenting a licence that is not valid ------------------------------------------------


NOT_VALID = {
    "revoked": ({"status": "revoked"}, "revoked", "revoked"),
    "suspended": ({"status": "suspended"}, "suspended", "suspended"),
    "signed_expired": ({"status": "expired"}, "expired", "expired"),
    "past_valid_until": (
        {"valid_until": (TODAY - timedelta(days=1)).isoformat()},
        "expired",
        "expired",
    ),
}


class TestPresentingALicenceThatIsNotValid:
    """Creating the QR is allowed (the licence is the holder's, and the scanner, e.g. a traffic
    police officer, must learn its real state; its state may change between creating and
    scanning anyway), and the scanner's answer says plainly that it is not verified, and why."""

    @pytest.mark.parametrize("case", list(NOT_VALID), ids=list(NOT_VALID))
    async def test_the_qr_is_created_and_the_scanner_sees_verified_false_with_the_reason(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
        case: str,
    ) -> None:
        fields, status, reason = NOT_VALID[case]
        licence_id = await linked(client, traffic, holder, **fields)
        created = await client.post(
            f"/v1/me/licences/{licence_id}/presentation", headers=holder.headers
        )
        assert created.status_code == 201, created.text
        police = await scanner_for(client, runtime, "traffic_check")
        answer = await verify(client, police, created.json()["token"], "traffic_check")
        assert answer["verdict"] == "valid", answer
        shown = answer["holder"]
        assert isinstance(shown, dict)
        assert shown["licence"]["verified"] is False
        assert (shown["licence"]["status"], shown["licence"]["reason"]) == (status, reason)

    async def test_a_licence_revoked_after_the_qr_was_made_is_shown_revoked_at_the_scan(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        licence_id = await linked(client, traffic, holder)
        token = await present(client, holder, licence_id)
        revoked = licence(traffic, holder.card, version=2, status="revoked")
        assert (await push(client, traffic, traffic.sign(revoked))).status_code == 200
        police = await scanner_for(client, runtime, "traffic_check")
        answer = await verify(client, police, token, "traffic_check")
        shown = answer["holder"]
        assert isinstance(shown, dict)
        assert (shown["licence"]["verified"], shown["licence"]["reason"]) == (False, "revoked")


# --- 2. the holder's view of an expired or not yet valid licence ------------------------------


class TestHolderViewComputesValidityNow:
    async def test_a_licence_past_valid_until_is_expired_and_not_verified(
        self, client: httpx.AsyncClient, traffic: Department, holder: ActiveHolder
    ) -> None:
        yesterday = (TODAY - timedelta(days=1)).isoformat()
        licence_id = await linked(client, traffic, holder, valid_until=yesterday)
        [listed] = (await client.get("/v1/me/licences", headers=holder.headers)).json()
        one = (await client.get(f"/v1/me/licences/{licence_id}", headers=holder.headers)).json()
        for shown in (listed, one):
            verification = shown["verification"]
            assert verification["signature_valid"] is True
            assert verification["key_trusted"] is True
            assert verification["expired"] is True
            assert verification["status"] == "expired"
            assert verification["verified"] is False
            assert verification["reason"] == "expired"

    async def test_a_licence_valid_from_a_future_date_is_not_yet_valid(
        self, client: httpx.AsyncClient, traffic: Department, holder: ActiveHolder
    ) -> None:
        tomorrow = (TODAY + timedelta(days=1)).isoformat()
        licence_id = await linked(client, traffic, holder, valid_from=tomorrow)
        [listed] = (await client.get("/v1/me/licences", headers=holder.headers)).json()
        one = (await client.get(f"/v1/me/licences/{licence_id}", headers=holder.headers)).json()
        for shown in (listed, one):
            verification = shown["verification"]
            assert verification["signature_valid"] is True
            assert verification["expired"] is False
            assert verification["status"] == "valid"
            assert verification["verified"] is False
            assert verification["reason"] == "not_yet_valid"


# --- 3. presentations past their lifetime, or of a card lost or suspended ---------------------


class TestPresentationVerdicts:
    async def test_a_presentation_scanned_after_its_lifetime_is_expired(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        token = await present(client, holder, await linked(client, traffic, holder))
        police = await scanner_for(client, runtime, "traffic_check")
        later = runtime.settings.presentation_lifetime + runtime.settings.clock_skew + 1
        monkeypatch.setattr(runtime.token_verifier, "_clock", lambda: time.time() + later)
        answer = await verify(client, police, token, "traffic_check")
        assert answer["verdict"] == "expired"
        assert answer.get("holder") is None

    @pytest.mark.parametrize(
        ("action", "verdict"), [("report-loss", "card_lost"), ("suspend", "card_suspended")]
    )
    async def test_a_presentation_of_a_card_lost_or_suspended_since_is_refused(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
        action: str,
        verdict: str,
    ) -> None:
        licence_id = await linked(client, traffic, holder)
        token = await present(client, holder, licence_id)
        changed = await operate(client, runtime, holder.card_number, action)
        assert changed.status_code == 200, changed.text
        police = await scanner_for(client, runtime, "traffic_check")
        answer = await verify(client, police, token, "traffic_check")
        assert answer["verdict"] == verdict
        assert answer.get("holder") is None
        refused = await client.post(
            f"/v1/me/licences/{licence_id}/presentation", headers=holder.headers
        )
        assert refused.status_code == 409, refused.text


# --- 4. a department token narrowed to fewer licence types ------------------------------------


class TestNarrowedDepartmentToken:
    async def test_a_token_without_the_types_scope_may_not_push_it_and_nothing_is_stored(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        token = await client.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials", "scope": "issue issue:vehicle_registration"},
            auth=(traffic.client_id, traffic.client_secret),
        )
        assert token.status_code == 200, token.text
        narrow = bearer(token.json()["access_token"])
        signed = traffic.sign(licence(traffic, holder.card))
        refused = await client.post("/v1/licences", json={"signed": signed}, headers=narrow)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "/problems/document-type-not-allowed"
        bulk = await client.post(
            "/v1/licences/bulk",
            content=json.dumps({"signed": signed}).encode(),
            headers={**narrow, "Content-Type": JSONL},
        )
        assert bulk.status_code == 200, bulk.text
        assert bulk.json()["failed"] == 1
        assert bulk.json()["results"][0]["error"]["type"] == "/problems/document-type-not-allowed"
        assert await rows(runtime) == []
        registration = licence(
            traffic, holder.card, document_id="VR-1", type_="vehicle_registration"
        )
        allowed = await client.post(
            "/v1/licences", json={"signed": traffic.sign(registration)}, headers=narrow
        )
        assert allowed.status_code == 201, allowed.text


# --- 5. bulk limits and a failed commit --------------------------------------------------------

MAX_LINES = 2
MAX_BYTES = 4096


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """A service whose bulk push takes at most 2 lines and 4096 bytes."""
    overrides = {"licence_bulk_max_lines": MAX_LINES, "licence_bulk_max_bytes": MAX_BYTES}
    application = create_app(settings.model_copy(update=overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, application
    if settings.redis_url:
        cleanup = RedisStore.from_url(settings.redis_url, namespace=settings.redis_namespace)
        await cleanup.drop_namespace()
        await cleanup.close()


def jsonl(lines: list[str]) -> bytes:
    return "\n".join(json.dumps({"signed": line}) for line in lines).encode()


class TestBulkLimits:
    async def test_more_lines_than_allowed_is_a_422_problem_and_nothing_is_stored(
        self, limited: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        client, application = limited
        runtime: Runtime = application.state.runtime
        traffic = await create_department(client, runtime)
        holder = await create_active_holder(client, application)
        signed = [
            traffic.sign(licence(traffic, holder.card, document_id=f"DL-{n}"))
            for n in range(MAX_LINES + 1)
        ]
        body = jsonl(signed)
        assert len(body) < MAX_BYTES
        response = await client.post(
            "/v1/licences/bulk", content=body, headers={**traffic.headers, "Content-Type": JSONL}
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/invalid-bulk"
        assert response.json()["max_lines"] == MAX_LINES
        assert await rows(runtime) == []

    async def test_a_body_over_the_byte_limit_is_a_413_problem_and_nothing_is_stored(
        self, limited: tuple[httpx.AsyncClient, FastAPI]
    ) -> None:
        client, application = limited
        runtime: Runtime = application.state.runtime
        traffic = await create_department(client, runtime)
        holder = await create_active_holder(client, application)
        signed = traffic.sign(licence(traffic, holder.card))
        padded = json.dumps({"signed": signed}) + " " * MAX_BYTES  # one line, too many bytes
        response = await client.post(
            "/v1/licences/bulk",
            content=padded.encode(),
            headers={**traffic.headers, "Content-Type": JSONL},
        )
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/request-too-large"
        assert await rows(runtime) == []


class TestNothingAuditedThatIsNotStored:
    async def test_a_bulk_whose_commit_fails_is_503_stores_nothing_and_audits_nothing(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
        push_events: PushEvents,
    ) -> None:
        other = await create_active_holder(client, app)
        body = jsonl(
            [
                traffic.sign(licence(traffic, holder.card, document_id="DL-1")),
                traffic.sign(licence(traffic, other.card, document_id="DL-2")),
            ]
        )
        failing = FailingLicenceCommits()
        with failing:
            response = await client.post(
                "/v1/licences/bulk",
                content=body,
                headers={**traffic.headers, "Content-Type": JSONL},
            )
        assert failing.failed == 1
        assert_unavailable(response)
        assert await rows(runtime) == []
        assert push_events.subjects == []
        retried = await client.post(
            "/v1/licences/bulk", content=body, headers={**traffic.headers, "Content-Type": JSONL}
        )
        assert retried.json()["stored"] == 2, retried.text
        assert sorted(push_events.subjects) == sorted(str(row.id) for row in await rows(runtime))

    async def test_a_push_whose_commit_fails_is_503_stores_nothing_and_audits_nothing(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
        push_events: PushEvents,
    ) -> None:
        signed = traffic.sign(licence(traffic, holder.card))
        failing = FailingLicenceCommits()
        with failing:
            response = await push(client, traffic, signed)
        assert failing.failed == 1
        assert_unavailable(response)
        assert await rows(runtime) == []
        assert push_events.subjects == []

    async def test_a_bad_bulk_line_is_not_audited_the_good_ones_are(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
        push_events: PushEvents,
    ) -> None:
        good = traffic.sign(licence(traffic, holder.card, document_id="DL-1"))
        conflicting = traffic.sign(licence(traffic, holder.card, document_id="DL-1", category="B"))
        response = await client.post(
            "/v1/licences/bulk",
            content=jsonl([good, conflicting]),
            headers={**traffic.headers, "Content-Type": JSONL},
        )
        assert (response.json()["stored"], response.json()["failed"]) == (1, 1), response.text
        [row] = await rows(runtime)
        assert push_events.subjects == [str(row.id)]


# --- 6. a licence signed with joserfc, end to end ---------------------------------------------


class TestJoserfcEndToEnd:
    async def test_a_licence_signed_with_joserfc_is_linked_and_its_original_verifies_with_it(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        traffic: Department,
        holder: ActiveHolder,
    ) -> None:
        signer = ECKey.generate_key("P-256", parameters={"kid": "jose-1"})
        registered = await client.post(
            f"/v1/admin/issuers/{traffic.issuer_id}/keys",
            json={"jwk": signer.as_dict(private=False)},
            headers=admin_headers(runtime),
        )
        assert registered.status_code == 201, registered.text
        content = licence(traffic, holder.card)
        signed = joserfc_jws.serialize_compact(
            {"alg": "ES256", "kid": "jose-1"}, canonicalize(content), signer
        )
        pushed = await push(client, traffic, signed)
        assert pushed.status_code == 201, pushed.text
        one = await client.get(
            f"/v1/me/licences/{pushed.json()['licence_id']}", headers=holder.headers
        )
        assert one.status_code == 200, one.text
        assert one.json()["verification"]["verified"] is True
        kept = one.json()["signed"]
        assert kept == signed
        public = ECKey.import_key(signer.as_dict(private=False))
        verified = joserfc_jws.deserialize_compact(kept, public, algorithms=["ES256"])
        assert json.loads(verified.payload) == content
        assert verified.headers()["kid"] == "jose-1"
