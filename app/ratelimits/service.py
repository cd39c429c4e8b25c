"""Rate limits: every rule in one place, counted in the store so they hold across workers.

Each rule allows `count` requests per `seconds` for one *subject* (a client address, a card
number as presented, a holder) and answers 429 `too-many-requests` with `Retry-After` past it.
The limits are settings (`SSC_RATE_LIMIT_<RULE>`, "COUNT/SECONDS"); `api.rate_limits`
applies them to the routes as dependencies (the client address is the ASGI client: `ssc serve`
sets it from `X-Forwarded-For` only for a peer in `SSC_TRUSTED_PROXIES`).

How they are counted, and why not the `limits` library: a **fixed window** counter on our
own `Store` protocol. One `Store.incr` with a TTL per check (one round trip; atomic on the
memory store, Redis and Redis Cluster alike), keyed by rule, window number and subject, so the
counters inherit everything the store already does right: its namespace, the cluster's slot
groups, the fail-closed `StoreUnavailable` (answered 503: a limit we cannot count is not
waived). `limits` would bring its own connection to Redis (another client library, another
pool, its own key layout and cluster handling) and nothing for the in-process memory store
of one-process deployments. The price of a fixed window is that a client can send up to twice
the limit across a window boundary; for the rules here (a brake on guessing and flooding,
not a quota) that is acceptable, and the PIN lockout stays the control on guessing a PIN.

Subjects never reach the store as they are: each is replaced by a keyed hash (the PII blind
index under a field of its own), so a dump of the store shows no card number and no address.
The per-card rule hashes the card number as presented and looks nothing up, so an unknown
card and a real one are counted, and answered, alike.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from enum import StrEnum

from app.cards.numbers import normalise_card_number
from app.config import Settings
from app.ratelimits.errors import RateLimited
from app.security.pii import PiiCipher
from app.store import Store


class RateLimitRule(StrEnum):
    """The rules; each value names the setting `SSC_RATE_LIMIT_<NAME>` and the store key."""

    login_per_address = "login_per_address"
    login_per_card = "login_per_card"
    token_per_address = "token_per_address"  # noqa: S105 (a rule name, not a secret)
    qr_per_holder = "qr_per_holder"
    applications_per_address = "applications_per_address"
    complaints_per_address = "complaints_per_address"
    complaint_lookups_per_address = "complaint_lookups_per_address"


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """'10/60' -> ten per minute (the settings have validated the form)."""
        count, _, seconds = text.partition("/")
        return cls(int(count), int(seconds))

    @classmethod
    def of(cls, settings: Settings, rule: RateLimitRule) -> RateLimit:
        text: str = getattr(settings, f"rate_limit_{rule.value}")
        return cls.parse(text)


@dataclass(frozen=True, slots=True)
class RateCount:
    """Where one request of a subject is counted under a rule, and how to judge the count."""

    key: str
    limit: RateLimit
    window: int
    now: float

    def check(self, count: int) -> None:
        """:raises RateLimited: when `count` is past the limit of the window (429)."""
        if count > self.limit.count:
            remaining = (self.window + 1) * self.limit.seconds - self.now
            raise RateLimited(max(1, math.ceil(remaining)))


def rate_count(
    pii: PiiCipher,
    settings: Settings,
    rule: RateLimitRule,
    subject: str,
    *,
    now: float | None = None,
) -> RateCount:
    """The counter of `subject` under `rule` now, for callers that count it together with
    other reads in one round trip (`Store.incr_and_get_many`, the phone's QR path)."""
    limit = RateLimit.of(settings, rule)
    now = time.time() if now is None else now
    window = int(now // limit.seconds)
    digest = pii.blind_index(f"rate-limit:{rule.value}", subject)[:32]
    return RateCount(f"rate:{rule.value}:{window}:{digest}", limit, window, now)


async def enforce(
    store: Store,
    pii: PiiCipher,
    settings: Settings,
    rule: RateLimitRule,
    subject: str,
    *,
    now: float | None = None,
) -> None:
    """Counts one request of `subject` under `rule`.

    :raises RateLimited: past the limit within the current window (429, `Retry-After`).
    :raises StoreUnavailable: the count cannot be kept (503).
    """
    counted = rate_count(pii, settings, rule, subject, now=now)
    counted.check(await store.incr(counted.key, ttl=counted.limit.seconds))


def address_subject(host: str | None) -> str:
    """The subject of a client address: an IPv4 address as it is, an IPv6 address by its /64
    (one subscriber's prefix: an attacker gets a whole /64 to pick addresses from)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def card_subject(card_number: str | None, document_type: str | None, document: str | None) -> str:
    """The subject of a login's identity as presented: the card number, else the document,
    in the form the lookup normalises to (full-width digits, spaces and case do not make a
    new subject)."""
    if card_number is not None:
        return "card:" + normalise_card_number(card_number)
    return f"document:{document_type or ''}:{normalise_card_number(document or '')}"
