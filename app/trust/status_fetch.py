"""Other issuers' status lists, fetched from their announced URL on a schedule.

Every registered issuer with a `status_list_uri` has its signed list (CWT) fetched again
one check interval (`fetch_tick`) before the list we hold is older than its `ttl` claim
(`SSC_STATUS_LIST_TTL` when it has none, at least `MIN_TTL`), so a card lost at the other
issuer reads `card_lost` here within that TTL:

- `If-None-Match` with the ETag of the list we hold; `304 Not Modified` keeps it;
- the whole exchange is bounded by `SSC_STATUS_LIST_FETCH_TIMEOUT` seconds, the body by
  `SSC_STATUS_LIST_FETCH_MAX_BYTES` (a larger `Content-Length` is refused before reading);
  redirects are not followed (the announced URL is the list's `sub`);
- the list must be signed by one of the issuer's registered keys, name that URL as its
  `sub`, be current and not older than the one held (`issuers.store_status_list`, the same
  checks as an administrator's upload); anything else is refused and the list we hold kept;
- a new list is stored and announced like an upload (`trust-changes`), so every worker
  answers from it within a second.

Every worker runs the check (`app.trust.background`); a store key per issuer, set only if
absent for the fetch period, makes one of them fetch and the rest skip. A failed fetch is
tried again after `RETRY_SECONDS` (or the period, if shorter). Each outcome is logged on
the `ssc.trust.status_fetch` logger: updates at INFO, refusals and failures at WARNING with
the issuer, the URL and the cause, `304` at DEBUG.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from enum import StrEnum

import httpx

from app.media_types import media_type_of
from app.runtime import Runtime
from app.trust.errors import InvalidIssuer, IssuerNotFound
from app.trust.issuers import list_issuers, store_status_list
from app.trust.models import TrustedIssuerRecord

logger = logging.getLogger("ssc.trust.status_fetch")

SYSTEM_ACTOR = "system:status-list-fetch"
CWT_MEDIA_TYPE = "application/statuslist+cwt"
RETRY_SECONDS = 60
MIN_TTL = 10
"""A shorter `ttl` claim is taken as this: no issuer makes us fetch more often."""


class FetchOutcome(StrEnum):
    updated = "updated"
    """A new list was fetched, verified and stored."""
    not_modified = "not_modified"
    """304, or the same bytes as the list held."""
    not_due = "not_due"
    """The list held is fresh enough, or another worker is fetching it."""
    refused = "refused"
    """The answer was not a list we may use (status, size, type, signature, URL, age)."""
    failed = "failed"
    """No answer: connection refused, timeout, broken transfer."""


class _Refused(Exception):
    """The answer cannot be used; the message says why."""


def schedule_key(code: str) -> str:
    return f"status-list-fetch:{code}"


def etag_key(code: str) -> str:
    return f"status-list-etag:{code}"


def list_ttl(runtime: Runtime, code: str) -> int:
    """The TTL of `code`'s list: its `ttl` claim (ours when it has none), at least `MIN_TTL`."""
    held = runtime.foreign_status_lists.get(code)
    ttl = held.ttl if held is not None and held.ttl else runtime.settings.status_list_ttl
    return max(MIN_TTL, ttl)


def fetch_tick(runtime: Runtime) -> float:
    """Seconds between two checks of which lists are due: `SSC_KEY_SYNC_INTERVAL`, at most
    15 and at most half the shortest TTL."""
    ttls = [list_ttl(runtime, code) for code in runtime.foreign_status_lists]
    shortest = min([runtime.settings.status_list_ttl, *ttls])
    return float(max(1, min(runtime.settings.key_sync_interval, 15, shortest // 2)))


def fetch_period(runtime: Runtime, code: str) -> float:
    """Seconds between two fetches of `code`'s list: its TTL less one check interval, so a
    change there is seen here within the TTL."""
    return list_ttl(runtime, code) - fetch_tick(runtime)


async def fetch_status_lists(
    runtime: Runtime, http: httpx.AsyncClient, *, force: bool = False
) -> dict[str, FetchOutcome]:
    """Fetches every registered issuer's list that is due (all of them with `force`);
    never raises for one issuer's failure. Returns the outcome per issuer code."""
    async with runtime.database.session() as session:
        records = [r for r in await list_issuers(session) if r.status_list_uri]
    outcomes: dict[str, FetchOutcome] = {}
    for record in records:
        try:
            outcomes[record.code] = await _fetch_if_due(runtime, http, record, force=force)
        except Exception:  # the database or the store failed us, not the issuer
            logger.exception("status list of %s: could not be checked or stored", record.code)
            outcomes[record.code] = FetchOutcome.failed
    return outcomes


async def _fetch_if_due(
    runtime: Runtime, http: httpx.AsyncClient, record: TrustedIssuerRecord, *, force: bool
) -> FetchOutcome:
    store, code = runtime.store, record.code
    period = fetch_period(runtime, code)
    if force:
        await store.set(schedule_key(code), b"1", ttl=period)
    elif not await store.set_if_absent(schedule_key(code), b"1", period):
        return FetchOutcome.not_due
    try:
        outcome = await _fetch(runtime, http, record)
    except Exception:
        await store.set(schedule_key(code), b"1", ttl=min(period, RETRY_SECONDS))
        raise
    if outcome in (FetchOutcome.updated, FetchOutcome.not_modified):
        # Due again by the TTL of the list now held, which may differ from the one before.
        await store.set(schedule_key(code), b"1", ttl=fetch_period(runtime, code))
    return outcome


async def _fetch(
    runtime: Runtime, http: httpx.AsyncClient, record: TrustedIssuerRecord
) -> FetchOutcome:
    code, url = record.code, record.status_list_uri
    assert url is not None
    settings = runtime.settings
    held = record.status_list
    # identity: a compressed body would be inflated past the size limit before it is counted.
    headers = {"Accept": CWT_MEDIA_TYPE, "Accept-Encoding": "identity"}
    etag = await _held_etag(runtime, code, held)
    if etag is not None:
        headers["If-None-Match"] = etag
    limit = settings.status_list_fetch_max_bytes
    try:
        async with asyncio.timeout(settings.status_list_fetch_timeout):
            status, body, new_etag = await _get(http, url, headers, limit)
    except (httpx.HTTPError, TimeoutError, OSError) as error:
        if isinstance(error, TimeoutError):
            cause = f"no complete answer within {settings.status_list_fetch_timeout:g} s"
        else:
            cause = f"{type(error).__name__}: {error}"
        _warn(runtime, code, url, f"fetch failed ({cause})")
        await runtime.store.set(schedule_key(code), b"1", ttl=_retry(runtime, code))
        return FetchOutcome.failed
    except _Refused as refusal:
        _warn(runtime, code, url, f"refused: {refusal}")
        await runtime.store.set(schedule_key(code), b"1", ttl=_retry(runtime, code))
        return FetchOutcome.refused
    if status == 304 or (body is not None and body == held):
        logger.debug("status list of %s not modified (%s)", code, url)
        return FetchOutcome.not_modified
    assert body is not None
    try:
        await store_status_list(runtime, SYSTEM_ACTOR, code, body)
    except (InvalidIssuer, IssuerNotFound) as error:
        _warn(runtime, code, url, f"refused: {error.detail}")
        await runtime.store.set(schedule_key(code), b"1", ttl=_retry(runtime, code))
        return FetchOutcome.refused
    if new_etag is not None:
        await runtime.store.set(etag_key(code), _etag_entry(new_etag, body))
    else:
        await runtime.store.delete(etag_key(code))
    logger.info("status list of %s updated from %s (%d bytes)", code, url, len(body))
    return FetchOutcome.updated


async def _get(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int
) -> tuple[int, bytes | None, str | None]:
    """(status, body or None for 304, ETag) of a GET, the body read up to `max_bytes`.

    :raises _Refused: on another status, another media type or a body over `max_bytes`.
    """
    async with http.stream("GET", url, headers=headers, follow_redirects=False) as response:
        if response.status_code == 304:
            return 304, None, response.headers.get("etag")
        if response.status_code != 200:
            raise _Refused(f"HTTP {response.status_code}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise _Refused(f"content encoding {encoding!r} (identity was asked for)")
        media_type = media_type_of(response.headers.get("content-type"))
        if media_type != CWT_MEDIA_TYPE:
            raise _Refused(f"content type {media_type or 'missing'!r}, not {CWT_MEDIA_TYPE}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _Refused(f"{declared} bytes announced, over the limit of {max_bytes}")
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise _Refused(f"body over the limit of {max_bytes} bytes")
        return 200, bytes(body), response.headers.get("etag")


def _etag_entry(etag: str, body: bytes) -> bytes:
    """The ETag with the digest of the list it belongs to: an administrator's upload in
    between replaces the list, and the ETag must not be sent for it."""
    return hashlib.sha256(body).hexdigest().encode() + b" " + etag.encode()


async def _held_etag(runtime: Runtime, code: str, held: bytes | None) -> str | None:
    if held is None:
        return None
    raw = await runtime.store.get(etag_key(code))
    if raw is None:
        return None
    digest, _, etag = raw.decode(errors="replace").partition(" ")
    return etag if etag and digest == hashlib.sha256(held).hexdigest() else None


def _retry(runtime: Runtime, code: str) -> float:
    return min(fetch_period(runtime, code), RETRY_SECONDS)


def _warn(runtime: Runtime, code: str, url: str, what: str) -> None:
    held = runtime.foreign_status_lists.get(code)
    if held is None:
        keeping = "we hold no list of it: its tokens answer issuer_untrusted"
    elif held.expires_at is not None and held.expires_at < time.time():
        keeping = "the list we hold has expired: its tokens answer issuer_untrusted"
    else:
        keeping = f"keeping the list issued at {held.issued_at} (expires {held.expires_at})"
    logger.warning("status list of %s from %s: %s; %s", code, url, what, keeping)
