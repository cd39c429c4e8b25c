"""`POST /v1/verify` bodies: whatever shape a body has, `parse_verify` accepts exactly what the
OpenAPI document's model (`VerifyRequest`) accepts, gives the same token and scene, and refuses
the rest with the model's own errors, although the usual shape skips building the model."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from api.schemas.verify import VerifyRequest, _validated, parse_verify

SCENE_LIKE = st.one_of(
    st.sampled_from(["hospital", "bus", "a", "a" * 32, "a" * 33, "", "Hospital", "bus\n", "ü"]),
    st.from_regex(r"[a-z_]{1,34}", fullmatch=True),
    st.text(max_size=40),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    SCENE_LIKE,
    st.lists(st.booleans(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.booleans(), max_size=2),
)
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(["token", "scene", "extra", "Token"]), VALUES, max_size=3),
    st.fixed_dictionaries(
        {"token": st.text(max_size=30)}, optional={"scene": st.one_of(st.none(), SCENE_LIKE)}
    ),
    VALUES,
)


def by_the_model(raw: bytes) -> tuple[str, str | None] | list[Any]:
    """What the model says of `raw`: its token and scene, or its errors."""
    try:
        body = _validated(VerifyRequest, raw)
    except RequestValidationError as error:
        return list(error.errors())
    return body.token, body.scene


def by_parse_verify(raw: bytes) -> tuple[str, str | None] | list[Any]:
    try:
        return parse_verify(raw)
    except RequestValidationError as error:
        return list(error.errors())


@pytest.mark.parametrize(
    "body",
    [
        {"token": "SSC1:ABC", "scene": "hospital"},
        {"token": "SSC1:ABC"},
        {"token": "SSC1:ABC", "scene": None},
        {"token": "", "scene": "a" * 32},
        {"token": "SSC1:ABC", "scene": "a" * 33},
        {"token": "SSC1:ABC", "scene": ""},
        {"token": "SSC1:ABC", "scene": "bus\n"},
        {"token": "SSC1:ABC", "scene": "Hospital"},
        {"token": "SSC1:ABC", "scene": 3},
        {"token": 3, "scene": "bus"},
        {"token": None},
        {"scene": "bus"},
        {"token": "SSC1:ABC", "extra": 1},
        {},
        ["token"],
        "token",
        None,
    ],
)
def test_each_shape_gets_the_models_answer(body: object) -> None:
    raw = orjson.dumps(body)
    assert by_parse_verify(raw) == by_the_model(raw)


def test_the_usual_body_gives_its_token_and_scene() -> None:
    assert parse_verify(b'{"token": "SSC1:ABC", "scene": "metro"}') == ("SSC1:ABC", "metro")
    assert parse_verify(b'{"token": "SSC1:ABC"}') == ("SSC1:ABC", None)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"token": "a", "token": "b"}', b'{"token": "a"} x', b"\xff"],
)
def test_unreadable_or_repeated_members_are_refused_as_by_the_model(raw: bytes) -> None:
    answer = by_parse_verify(raw)
    assert isinstance(answer, list) and answer
    assert answer == by_the_model(raw)


@settings(max_examples=600, deadline=None)
@given(BODIES)
def test_any_json_body_gets_the_models_answer(body: object) -> None:
    raw = orjson.dumps(body)
    assert by_parse_verify(raw) == by_the_model(raw)
