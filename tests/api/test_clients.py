"""Organisations, scanners and the OAuth2 client-credentials endpoint over HTTP."""

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.clients.errors import InvalidRole
from app.clients.service import create_admin_client
from app.runtime import Runtime
from app.security.tokens import PrincipalKind
from tests.factories import admin_headers, create_organisation, create_scanner
from tests.test_cli_failures import environment, ssc

PROBLEM = "application/problem+json"
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


class TestOrganisations:
    async def test_admin_creates_and_lists_an_organisation(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["hotel", "metro"], "Inn")
        listed = await client.get("/v1/admin/organisations", headers=admin_headers(runtime))
        assert listed.status_code == 200
        [organisation] = listed.json()
        assert organisation["id"] == organisation_id
        assert organisation["name"] == "Inn"
        assert organisation["scenes"] == ["metro", "hotel"]  # catalog order

    async def test_unknown_scene_is_a_422_problem(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await client.post(
            "/v1/admin/organisations",
            json={"name": "X", "venue_type": "bar", "region_code": "360100", "scenes": ["casino"]},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/unknown-scene"
        assert response.json()["scenes"] == ["casino"]

    async def test_a_scanner_token_cannot_manage_organisations(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime)
        response = await client.get("/v1/admin/organisations", headers=scanner.headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM

    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/admin/organisations")
        assert response.status_code == 401


class TestScanners:
    async def test_creation_shows_the_secret_once_and_lists_without_it(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime)
        assert scanner.client_secret.startswith("cs_")
        listed = await client.get(
            f"/v1/admin/organisations/{scanner.organisation_id}/scanners",
            headers=admin_headers(runtime),
        )
        [row] = listed.json()
        assert row["client_id"] == scanner.client_id
        assert row["status"] == "active"
        assert "client_secret" not in row
        assert scanner.client_secret not in listed.text

    async def test_scenes_must_be_offered_by_the_organisation(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        organisation_id = await create_organisation(client, runtime, ["museum"])
        response = await client.post(
            f"/v1/admin/organisations/{organisation_id}/scanners",
            json={"name": "Gate", "scenes": ["hotel"]},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/scene-not-offered"

    async def test_unknown_organisation_is_404(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await client.post(
            "/v1/admin/organisations/00000000-0000-0000-0000-000000000000/scanners",
            json={"name": "Gate", "scenes": ["museum"]},
            headers=admin_headers(runtime),
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM

    async def test_disable_and_enable_report_the_status(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime)
        base = f"/v1/admin/scanners/{scanner.client_id}"
        disabled = await client.post(f"{base}/disable", headers=admin_headers(runtime))
        assert disabled.json()["status"] == "disabled"
        assert disabled.json()["disabled_at"] is not None
        enabled = await client.post(f"{base}/enable", headers=admin_headers(runtime))
        assert enabled.json()["status"] == "active"
        assert enabled.json()["disabled_at"] is None

    async def test_disabling_an_unknown_scanner_is_404(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        response = await client.post(
            "/v1/admin/scanners/scn_nope/disable", headers=admin_headers(runtime)
        )
        assert response.status_code == 404


class TestClientCredentialsGrant:
    async def test_scanner_gets_a_bearer_token_for_verify(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime, scenes=["museum", "hotel"])
        response = await client.post(
            "/v1/oauth/token",
            data={**GRANT, "client_id": scanner.client_id, "client_secret": scanner.client_secret},
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "verify"
        assert body["expires_in"] == runtime.settings.scanner_token_ttl
        claims = runtime.access_tokens.decode(body["access_token"], PrincipalKind.scanner)
        assert claims.subject == scanner.client_id
        assert claims.extra == {"org": scanner.organisation_id, "scenes": "museum,hotel"}

    async def test_admin_client_gets_an_admin_token(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        async with runtime.database.session() as session:
            issued = await create_admin_client(session, runtime.secret_hash_key, "operator")
        response = await client.post(
            "/v1/oauth/token", data=GRANT, auth=(issued.client.client_id, issued.client_secret)
        )
        assert response.status_code == 200
        assert response.json()["scope"] == "admin"
        token = response.json()["access_token"]
        listed = await client.get(
            "/v1/admin/organisations", headers={"Authorization": f"Bearer {token}"}
        )
        assert listed.status_code == 200

    @pytest.mark.parametrize("wrong", ["secret", "client"])
    async def test_wrong_secret_or_unknown_client_is_invalid_client(
        self, client: httpx.AsyncClient, runtime: Runtime, wrong: str
    ) -> None:
        scanner = await create_scanner(client, runtime)
        client_id = "scn_unknown" if wrong == "client" else scanner.client_id
        secret = scanner.client_secret + ("x" if wrong == "secret" else "")
        response = await client.post("/v1/oauth/token", data=GRANT, auth=(client_id, secret))
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert "access_token" not in response.json()

    async def test_disabled_client_is_invalid_client(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime)
        await client.post(
            f"/v1/admin/scanners/{scanner.client_id}/disable", headers=admin_headers(runtime)
        )
        response = await client.post(
            "/v1/oauth/token", data=GRANT, auth=(scanner.client_id, scanner.client_secret)
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    async def test_other_grant_types_are_unsupported(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime)
        response = await client.post(
            "/v1/oauth/token",
            data={"grant_type": "password"},
            auth=(scanner.client_id, scanner.client_secret),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type"

    @pytest.mark.parametrize(
        ("content", "content_type"),
        [
            (b"client_id=a", "application/x-www-form-urlencoded"),
            (b'{"grant_type": "client_credentials"}', "application/json"),
            (b"grant_type=client_credentials&grant_type=x", "application/x-www-form-urlencoded"),
            (b"\xff\xfe", "application/x-www-form-urlencoded"),
        ],
    )
    async def test_bad_requests_are_invalid_request(
        self, client: httpx.AsyncClient, content: bytes, content_type: str
    ) -> None:
        response = await client.post(
            "/v1/oauth/token", content=content, headers={"content-type": content_type}
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["error"] == "invalid_request"

    async def test_two_authentication_methods_are_refused(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        scanner = await create_scanner(client, runtime)
        response = await client.post(
            "/v1/oauth/token",
            data={**GRANT, "client_secret": scanner.client_secret},
            auth=(scanner.client_id, scanner.client_secret),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"

    async def test_malformed_basic_header_is_invalid_client(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/v1/oauth/token", data=GRANT, headers={"Authorization": "Basic %%%"}
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


class TestAdminRoles:
    """An admin client's role and city reach its access tokens; the routes read them there."""

    @pytest.mark.parametrize(
        ("role", "region", "claims"),
        [
            (None, None, {"role": "provincial_admin"}),
            ("auditor", None, {"role": "auditor"}),
            ("operator", None, {"role": "operator"}),
            ("city_admin", "360100", {"role": "city_admin", "region": "360100"}),
        ],
    )
    async def test_the_token_carries_the_clients_role(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        role: str | None,
        region: str | None,
        claims: dict[str, str],
    ) -> None:
        async with runtime.database.session() as session:
            issued = await create_admin_client(
                session, runtime.secret_hash_key, "counter", role=role, region=region
            )
        response = await client.post(
            "/v1/oauth/token", data=GRANT, auth=(issued.client.client_id, issued.client_secret)
        )
        assert response.status_code == 200
        decoded = runtime.access_tokens.decode(response.json()["access_token"], PrincipalKind.admin)
        assert decoded.extra == claims

    async def test_an_auditors_token_reads_but_never_writes(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        async with runtime.database.session() as session:
            issued = await create_admin_client(
                session, runtime.secret_hash_key, "audit office", role="auditor"
            )
        token = (
            await client.post(
                "/v1/oauth/token", data=GRANT, auth=(issued.client.client_id, issued.client_secret)
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/v1/admin/organisations", headers=headers)).status_code == 200
        created = await client.post(
            "/v1/admin/organisations",
            json={"name": "X", "venue_type": "bar", "region_code": "360100", "scenes": ["hotel"]},
            headers=headers,
        )
        assert created.status_code == 403
        assert created.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize(
        ("role", "region"),
        [("root", None), ("city_admin", None), ("city_admin", "3601"), ("auditor", "360100")],
    )
    async def test_a_role_and_region_that_do_not_fit_are_refused(
        self, runtime: Runtime, role: str, region: str | None
    ) -> None:
        async with runtime.database.session() as session:
            with pytest.raises(InvalidRole):
                await create_admin_client(
                    session, runtime.secret_hash_key, "x", role=role, region=region
                )


class TestCreateAdminCommand:
    def test_creates_a_city_administrator(self, tmp_path: Path) -> None:
        env = environment(tmp_path)
        assert ssc(env, "migrate")[0] == 0
        code, lines = ssc(
            env, "clients", "create-admin", "--name", "Nanchang", "--role", "city_admin",
            "--region", "360100",
        )  # fmt: skip
        assert code == 0, lines
        assert lines[0] == "role:          city_admin (360100)"
        assert lines[1].startswith("client_id:     adm_")

    def test_refuses_a_city_administrator_without_a_city(self, tmp_path: Path) -> None:
        code, lines = ssc(
            environment(tmp_path), "clients", "create-admin", "--name", "x", "--role", "city_admin"
        )
        assert code == 2
        assert lines == ["error: a city_admin needs its city's six-digit region code"]
