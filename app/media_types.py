"""Media types of HTTP bodies, in and out."""

from __future__ import annotations


def media_type_of(content_type: str | None) -> str:
    """The bare media type of a `Content-Type` (or one `Accept` item), lower case, without
    parameters: `Application/JSON; charset=utf-8` is `application/json`; absent is `""`."""
    return (content_type or "").split(";", 1)[0].strip().lower()
