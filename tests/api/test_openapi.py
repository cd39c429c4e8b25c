"""The OpenAPI document says what the service answers (tests/api/test_fuzz.py checks it against
the running service with schemathesis; these are the rules, one by one, in process)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.openapi import PROBLEMS, document_problems
from tests.factories import create_organisation, create_scanner

PROBLEM = "application/problem+json"


@pytest.fixture
def schema(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


class TestDocumentedProblems:
    def test_every_error_answer_is_problem_json(self, schema: dict[str, Any]) -> None:
        for method, path, operation in operations(schema):
            for code, response in operation["responses"].items():
                if code[0] in "45" and path != "/readyz":
                    assert list(response["content"]) == [PROBLEM], (method, path, code)

    def test_what_every_operation_can_meet_is_documented(self, schema: dict[str, Any]) -> None:
        for method, path, operation in operations(schema):
            codes = set(operation["responses"])
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in codes, (method, path)
            if operation.get("requestBody"):
                assert "413" in codes, (method, path)
            if operation.get("security"):
                assert {"401", "403"} <= codes, (method, path)
            if path.startswith("/v1/"):
                assert "503" in codes, (method, path)
                assert "Retry-After" in operation["responses"]["503"]["headers"]

    def test_a_route_declares_its_own_errors_by_status_and_description(self) -> None:
        schema = {
            "paths": {
                "/v1/x": {
                    "post": {
                        "responses": {
                            "200": {"description": "ok"},
                            "429": {"description": "too many scans"},
                        }
                    }
                }
            }
        }
        responses = document_problems(schema)["paths"]["/v1/x"]["post"]["responses"]
        assert responses["429"]["description"] == "too many scans"
        assert list(responses["429"]["content"]) == [PROBLEM]
        assert "Retry-After" in responses["429"]["headers"]
        assert responses["503"]["description"] == PROBLEMS[503]
        assert "422" not in responses  # no parameters, no body
        assert "Problem" in schema["components"]["schemas"]  # type: ignore[index]


class TestAllow:
    @pytest.mark.parametrize(
        ("path", "methods"),
        [
            ("/v1/admin/organisations", {"GET", "HEAD", "POST"}),
            ("/v1/admin/trusted-issuers", {"GET", "HEAD", "POST"}),
            ("/v1/admin/cards/123/credit-records", {"GET", "HEAD", "POST"}),
            ("/v1/verify", {"POST"}),
        ],
    )
    async def test_405_lists_every_method_of_the_path(
        self, client: httpx.AsyncClient, path: str, methods: set[str]
    ) -> None:
        response = await client.request("OPTIONS", path)
        assert response.status_code == 405
        assert response.headers["content-type"] == PROBLEM
        assert {method.strip() for method in response.headers["allow"].split(",")} == methods


class TestSchemasAreTheRules:
    async def test_the_batch_routes_own_example_is_accepted(
        self, client: httpx.AsyncClient, app: FastAPI, schema: dict[str, Any]
    ) -> None:
        runtime = app.state.runtime
        organisation = await create_organisation(client, runtime, scenes=["metro"])
        scanner = await create_scanner(client, runtime, organisation, scenes=["metro"])
        body = schema["paths"]["/v1/verify/batch"]["post"]["requestBody"]
        (example,) = body["content"]["application/json"]["schema"]["examples"]
        response = await client.post("/v1/verify/batch", json=example, headers=scanner.headers)
        assert response.status_code == 200, response.text
        assert [result["verdict"] for result in response.json()["results"]] == ["malformed"] * 2

    @pytest.mark.parametrize(
        ("model", "field"),
        [
            ("LoginRequest", "pin"),
            ("ActivationRequest", "pin"),
            ("PinChangeRequest", "old_pin"),
            ("PinChangeRequest", "new_pin"),
            ("PinConfirmation", "pin"),
        ],
    )
    def test_a_pin_is_six_digits_in_the_schema(
        self, schema: dict[str, Any], model: str, field: str
    ) -> None:
        assert schema["components"]["schemas"][model]["properties"][field]["pattern"] == (
            "^[0-9]{6}$"
        )

    async def test_a_pin_of_another_length_is_a_validation_error(
        self, client: httpx.AsyncClient
    ) -> None:
        body = {"card_number": "364829130754", "pin": "2846170", "device_id": "phone-1"}
        response = await client.post("/v1/auth/login", json=body)
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"
