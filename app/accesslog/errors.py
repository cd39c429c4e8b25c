"""Errors of the access log; each has a stable problem `type`."""

from __future__ import annotations

from app.errors import InvalidRequest


class InvalidCursor(InvalidRequest):
    code = "invalid-cursor"
    title = "The cursor is not one this service handed out"
