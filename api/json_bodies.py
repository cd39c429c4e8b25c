"""JSON request bodies, read strictly: an object that names a member twice is refused.

RFC 8259 leaves repeated names to each parser, and parsers differ (most keep the last,
some the first): a gateway or proxy in front of us could act on one `token` while we act
on the other. So every JSON body the API accepts is read here, by `loads`, which refuses
them. The verify hot path calls `loads` itself; every FastAPI route gets it through
`StrictJsonRoute`, the route class of every router.

orjson cannot report repeated names, and a parse with `object_pairs_hook` costs several
times more, so `loads` parses with orjson and proves the absence of repeats cheaply: in a
body without a backslash every `"` opens or closes a string, so the body's quotes are twice
its strings; if the parsed value holds fewer strings (names and string values), a repeated
name took some with it. Only a body that fails that count, or has a backslash (an escaped
quote breaks the count), is parsed again with a hook that names the repeat.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response


class InvalidJson(json.JSONDecodeError):
    """A body that is not JSON, or that names a member of one object twice.

    A `json.JSONDecodeError`, so FastAPI answers it as it answers any unreadable JSON body
    (422 validation error), and `msg` says what is wrong.
    """


def loads(raw: bytes) -> Any:
    """The JSON value of `raw` (UTF-8).

    :raises InvalidJson: on anything but one JSON value with no repeated member name.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidJson(error.msg, error.doc, error.pos) from None
    if b"\\" in raw or raw.count(b'"') != 2 * _strings(value):
        _refuse_repeated_names(raw)
    return value


def _strings(value: object) -> int:
    """Member names and string values in `value`, at any depth (no recursion: orjson reads
    nesting deeper than Python's recursion limit)."""
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is dict:
            count += len(item)
            members: Iterable[object] = item.values()
        elif type(item) is list:
            members = item
        else:
            count += type(item) is str
            continue
        for member in members:
            kind = type(member)
            if kind is str:
                count += 1
            elif kind is dict or kind is list:
                pending.append(member)
    return count


def _refuse_repeated_names(raw: bytes) -> None:
    text = raw.decode("utf-8")  # orjson has already checked it is UTF-8 and JSON

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members: dict[str, Any] = {}
        for name, member in pairs:
            if name in members:
                raise InvalidJson(f"member name {name[:64]!r} is repeated", text, 0)
            members[name] = member
        return members

    try:
        json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise InvalidJson("nested too deeply", text, 0) from None


class StrictJsonRequest(Request):
    """A request whose `json()` is `loads`: what FastAPI calls to read a JSON body."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """The route class of every router: its JSON body is read by `loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_json_handler
