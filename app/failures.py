"""What an operator reads when a command cannot start: one line naming the setting and the
cause (`explain`), instead of the traceback of whichever layer noticed first."""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.config import Settings, SettingsError
from app.db import (
    DRIVER_ERRORS,
    DatabaseMissing,
    DatabaseNotMigrated,
    DatabaseUnavailable,
    is_missing_database_error,
    is_unavailable_error,
)
from app.store import StoreUnavailable
from token_service import KeyRingError


class CannotCreateDatabase(Exception):
    """`ssc migrate` found the database missing and its role may not create it."""


def database_location(url: str) -> str:
    """Where a database URL points, without its credentials: `host:port/name` or the path."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "?"
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database or ":memory:")
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def redis_location(url: str) -> str:
    """Where a Redis URL points, without its credentials."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] + parts.path if parts.netloc else url


def cause(error: BaseException) -> str:
    """The innermost cause of `error`, one line: what the driver or the socket said."""
    innermost = error
    seen = {id(error)}
    while True:
        deeper = innermost.__cause__ or getattr(innermost, "orig", None)
        if not isinstance(deeper, BaseException) or id(deeper) in seen:
            break
        seen.add(id(deeper))
        innermost = deeper
    text = " ".join(str(innermost).split())[:300]
    return f"{type(innermost).__name__}: {text}" if text else type(innermost).__name__


def explain(error: BaseException, settings: Settings | None) -> str:
    """One line for the operator: the setting at fault, where it points, and why."""
    database = database_location(settings.database_url) if settings else "the database"
    if isinstance(error, SettingsError):
        return str(error)
    if isinstance(error, CannotCreateDatabase):
        return f"SSC_DATABASE_URL: {error}"
    if isinstance(error, DatabaseMissing) or is_missing_database_error(error):
        return (
            f"SSC_DATABASE_URL: database {database} does not exist; "
            "`ssc migrate` creates it (when its role may)"
        )
    if isinstance(error, DatabaseNotMigrated):
        return f"SSC_DATABASE_URL: database {database} is not migrated ({error}); run `ssc migrate`"
    if isinstance(error, StoreUnavailable | RedisError):
        redis = redis_location(settings.redis_url) if settings and settings.redis_url else "Redis"
        return f"SSC_REDIS_URL: cannot reach Redis at {redis}: {cause(error)}"
    if isinstance(error, DatabaseUnavailable | OSError) or is_unavailable_error(error):
        return f"SSC_DATABASE_URL: cannot reach the database at {database}: {cause(error)}"
    if isinstance(error, DRIVER_ERRORS):
        return f"SSC_DATABASE_URL: the database at {database} failed: {cause(error)}"
    if isinstance(error, KeyRingError):
        return f"SSC_KEY_DIR / SSC_KEY_ENCRYPTION_KEY: cannot open the key ring: {cause(error)}"
    return f"unexpected error: {cause(error)}"
