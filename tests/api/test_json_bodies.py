"""JSON bodies are read strictly: an object naming a member twice is refused (422 problem+json)
on every operation that takes JSON, the verify hot path included, and never settled by taking
one of the two values (a gateway in front of us may have acted on the other)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.json_bodies import InvalidJson, loads
from app.runtime import Runtime
from tests.factories import (
    ScannerCredentials,
    admin_headers,
    create_scannable_card,
    create_scanner,
    qr_token,
)

PROBLEM = "application/problem+json"
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def scanner(client: httpx.AsyncClient, runtime: Runtime) -> ScannerCredentials:
    return await create_scanner(client, runtime, scenes=["museum"])


def assert_repeated_member_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    assert f"{name!r} is repeated" in problem["detail"]


class TestVerifyRefusesRepeatedMembers:
    async def test_a_repeated_token_is_refused_and_the_real_token_stays_unused(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        token = qr_token(runtime, await create_scannable_card(runtime))
        body = b'{"token":"x","token":' + json.dumps(token).encode() + b',"scene":"museum"}'
        response = await client.post(
            "/v1/verify", content=body, headers={**scanner.headers, **JSON_HEADERS}
        )
        assert_repeated_member_refused(response, "token")
        honest = await client.post(
            "/v1/verify", json={"token": token, "scene": "museum"}, headers=scanner.headers
        )
        assert honest.json()["verdict"] == "valid"

    async def test_a_repeated_scene_is_refused(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials
    ) -> None:
        body = b'{"token":"SSC1:X","scene":"museum","scene":"hotel"}'
        response = await client.post(
            "/v1/verify", content=body, headers={**scanner.headers, **JSON_HEADERS}
        )
        assert_repeated_member_refused(response, "scene")

    @pytest.mark.parametrize(
        "body",
        [
            b'{"scans":[{"token":"x","token":"SSC1:Y"}]}',
            b'{"scans":[{"token":"x"}],"scans":[{"token":"SSC1:Y"}]}',
            b'{"scans":[{"token":"x","scan_id":"a"},{"cose":"AAAA","cose":"AAAB"}]}',
        ],
    )
    async def test_a_batch_with_a_repeated_member_anywhere_is_refused(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials, body: bytes
    ) -> None:
        response = await client.post(
            "/v1/verify/batch", content=body, headers={**scanner.headers, **JSON_HEADERS}
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert "is repeated" in response.json()["detail"]

    async def test_an_escaped_spelling_of_the_same_name_is_a_repeat(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials
    ) -> None:
        body = b'{"token":"x","\\u0074oken":"SSC1:Y"}'
        response = await client.post(
            "/v1/verify", content=body, headers={**scanner.headers, **JSON_HEADERS}
        )
        assert_repeated_member_refused(response, "token")


def _json_operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


class TestEveryJsonBodyRefusesRepeatedMembers:
    async def test_every_operation_that_takes_json_refuses_a_repeated_member(
        self, client: httpx.AsyncClient, app: FastAPI, scanner: ScannerCredentials
    ) -> None:
        operations = _json_operations(app.openapi())
        assert ("POST", "/v1/applications") in operations
        assert ("POST", "/v1/verify/batch") in operations
        body = b'{"reason":"a","reason":"b","name":"x","name":"y"}'
        for method, path in operations:
            if (method, path) in {("POST", "/v1/documents"), ("POST", "/v1/disbursements")}:
                continue  # bodies (JSON or JSON Lines) read only once the client is authenticated
            url = path.replace("{", "").replace("}", "")  # any value fits a path parameter
            headers = dict(JSON_HEADERS)
            if path.startswith("/v1/verify"):
                headers.update(scanner.headers)
            response = await client.request(method, url, content=body, headers=headers)
            assert response.status_code == 422, f"{method} {path}: {response.text}"
            assert response.headers["content-type"] == PROBLEM
            assert "is repeated" in response.json()["detail"], f"{method} {path}"

    async def test_an_application_with_a_repeated_document_number_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        body = (
            b'{"document_type":"resident_id","document_number":"x",'
            b'"document_number":"11010519491231002X","name":"\xe5\xbc\xa0\xe4\xb8\x89",'
            b'"phone":"13800138000","bank_code":"ICBC"}'
        )
        response = await client.post("/v1/applications", content=body, headers=JSON_HEADERS)
        assert_repeated_member_refused(response, "document_number")

    async def test_an_admin_body_with_a_repeated_member_is_refused_before_anything_is_done(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        body = b'{"name":"A","venue_type":"museum","region_code":"360100","scenes":["museum"]'
        body += b',"scenes":["hotel"]}'
        response = await client.post(
            "/v1/admin/organisations",
            content=body,
            headers={**JSON_HEADERS, **admin_headers(runtime)},
        )
        assert_repeated_member_refused(response, "scenes")
        listed = await client.get("/v1/admin/organisations", headers=admin_headers(runtime))
        assert listed.json() == []

    async def test_unreadable_json_is_a_422_problem_naming_the_fault(
        self, client: httpx.AsyncClient
    ) -> None:
        for body in (b"{not json", b"\xff\xfe", b'{"refresh_token": NaN}'):
            response = await client.post("/v1/auth/refresh", content=body, headers=JSON_HEADERS)
            assert response.status_code == 422, body
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["detail"].startswith("body: not valid JSON: ")


class TestLoads:
    @pytest.mark.parametrize(
        "raw",
        [
            b'{"a":1}',
            b'{"a":"x\\"y","b":"\\\\"}',
            b'{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}',
            b'[{"k":"v"},{"k":"v"}]',
            b'{"":1,"x":""}',
            b'"just a string"',
        ],
    )
    def test_reads_json_without_repeats_as_json_does(self, raw: bytes) -> None:
        assert loads(raw) == json.loads(raw)

    @pytest.mark.parametrize(
        "raw",
        [
            b'{"a":1,"a":1}',
            b'{"a":{"b":1,"b":2}}',
            b'[1,{"k":[{"x":null,"x":null}]}]',
            b'{"a\\"":1,"a\\u0022":2}',
            b'{"":1,"":2}',
            b'{"a":"\\\\","a":"\\\\"}',
        ],
    )
    def test_refuses_a_repeated_member_at_any_depth(self, raw: bytes) -> None:
        with pytest.raises(InvalidJson, match="is repeated"):
            loads(raw)

    def test_deep_nesting_is_refused_not_a_crash(self) -> None:
        with pytest.raises(InvalidJson):
            loads(b"[" * 5000 + b"]" * 5000)
        with pytest.raises(InvalidJson):
            loads(b"[" * 1000 + b'"\\n"' + b"]" * 1000)
