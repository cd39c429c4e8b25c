"""The OpenAPI document says what the service answers: every error as problem+json, the errors
every operation can meet added in one place (`document_problems`), and `Allow` on 405 from the
same document (`api.problems`).

Routes declare only the errors of their own rules (`404: card-not-found`, `409`, `423`, a
`429` rate limit, ...), by status and description; `document_problems` gives each error
response the problem+json content, and adds by what the operation is:

- 422 `validation-error` where the operation takes parameters or a body;
- 413 where it takes a body (the limit is `SSC_MAX_REQUEST_BYTES`);
- 401 and 403 where it needs a bearer token;
- 503 where it needs the database or the store (every path but `_NO_BACKING_SERVICE`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `type` is stable, extensions vary by type",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "examples": ["/problems/validation-error"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "With `validation-error`: each fault and where it is",
            "items": {
                "type": "object",
                "properties": {
                    "location": {"type": "array", "items": {"type": "string"}},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds after which a retry may succeed",
        "schema": {"type": "integer", "minimum": 0},
    }
}

PROBLEMS: dict[int, str] = {
    400: "bad-request: a request that cannot be read",
    401: "unauthorized: no, invalid, expired or revoked bearer token",
    403: "forbidden: the token lacks the scope, or the principal may not do this",
    404: "not-found",
    409: "Conflicts with the current state of the resource",
    413: "request-too-large: the body exceeds SSC_MAX_REQUEST_BYTES",
    415: "unsupported-media-type",
    422: "validation-error (each fault in `errors`; a body that is not JSON or names a member "
    "twice included), or a rule of the operation the request breaks",
    429: "too-many-requests: a rate limit; retry after `Retry-After` seconds",
    503: "A backing service (database or store) is unavailable; nothing was done. Retry after "
    "`Retry-After` seconds",
}
"""Every error status the API answers, with what it means wherever it occurs."""

_NO_BACKING_SERVICE = frozenset(
    {"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/.well-known/cose-keys"}
)
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of a problem+json answer with this status."""
    response: dict[str, Any] = {
        "description": description or PROBLEMS.get(status, "Problem"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (a FastAPI OpenAPI document) with every error response as problem+json and
    the errors each operation can meet added (see the module docstring)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                _document_operation(path, operation)
    return schema


def _document_operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code, response in list(responses.items()):
        if code[0] in "45" and not _is_own_content(response):
            responses[code] = problem_response(int(code), response.get("description"))
    inferred = []
    if operation.get("parameters") or operation.get("requestBody"):
        inferred.append(422)
    if operation.get("requestBody"):
        inferred.append(413)
    if operation.get("security"):
        inferred += [401, 403]
    if path not in _NO_BACKING_SERVICE:
        inferred.append(503)
    for status in inferred:
        responses.setdefault(str(status), problem_response(status))


def _is_own_content(response: dict[str, Any]) -> bool:
    """An error response with content of its own (not problem+json, not FastAPI's default
    422), such as `/readyz`'s JSON 503."""
    content = response.get("content") or {}
    if not content or PROBLEM_MEDIA_TYPE in content:
        return False
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") != "#/components/schemas/HTTPValidationError")


def install_openapi(app: FastAPI) -> None:
    """Serves FastAPI's document of `app` through `document_problems`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_problems(generate())  # FastAPI keeps it as `app.openapi_schema`
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
