"""What the verify path computes once and reuses, held by the worker's `Runtime`
(`Runtime.verify_memo`), never in module globals: a test or a second app in one process gets
its own, and nothing outlives the runtime that filled it.

Each saves a microsecond or two of a scan that costs about 200 us of CPU in all
(load/bench_pipeline.py), which is why they exist at all; each is bounded.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from app.cards.snapshot import day_number
from app.china_time import CHINA_STANDARD_TIME
from app.clients.service import principal_key
from app.security.principals import ScannerPrincipal
from token_service.keys import b64url
from token_service.prekeyed_mac import PrekeyedHmacSha256

PSEUDONYM_CHARS = 22
MAX_SCANNERS_REMEMBERED = 4096
MAX_KEYS_REMEMBERED = 16


@dataclass(frozen=True, slots=True)
class ScannerConstants:
    """What every scan of one scanner repeats, computed once per scanner, not per scan."""

    org: str
    org_bytes: bytes
    principal_key: str
    claim_prefix: str


class IsoClock:
    """Times as ISO 8601 UTC with milliseconds, exactly as `datetime.isoformat` writes them;
    the date and time of day are formatted once per second, not once per request."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second, self._prefix = -1, ""

    def __call__(self, now: float) -> str:
        second = int(now)
        micros = round((now - second) * 1_000_000)  # as datetime.fromtimestamp rounds
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._second, self._prefix = (
                second,
                datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            )
        return f"{self._prefix}.{micros // 1000:03d}Z"


class ChinaDay:
    """Today in China as a `day_number`, computed once per day, not once per request."""

    __slots__ = ("_day", "_since", "_until")

    def __init__(self) -> None:
        self._day, self._since, self._until = 0, 0.0, 0.0

    def __call__(self, now: float) -> int:
        if not self._since <= now < self._until:  # a new day, or a clock set back
            moment = datetime.fromtimestamp(now, CHINA_STANDARD_TIME)
            midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            self._day, self._since, self._until = day_number(moment), midnight, midnight + 86400
        return self._day


class VerifyMemo:
    """Per-worker memo of the verify path: scanner constants, key id texts, the keyed
    pseudonym HMAC (keying costs as much as the rest of an HMAC over 32 bytes), the
    second of `checked_at` and the day in China of age bands."""

    __slots__ = ("_kids", "_macs", "_scanners", "checked_at", "today")

    def __init__(self) -> None:
        self._scanners: dict[tuple[str, uuid.UUID], ScannerConstants] = {}
        self._kids: dict[bytes, str] = {}
        self._macs: dict[bytes, PrekeyedHmacSha256] = {}
        self.checked_at = IsoClock()
        self.today = ChinaDay()

    def scanner(self, scanner: ScannerPrincipal) -> ScannerConstants:
        key = (scanner.client_id, scanner.organisation_id)
        constants = self._scanners.get(key)
        if constants is None:
            if len(self._scanners) >= MAX_SCANNERS_REMEMBERED:
                self._scanners.clear()
            constants = self._scanners[key] = ScannerConstants(
                org=str(scanner.organisation_id),
                org_bytes=scanner.organisation_id.bytes,
                principal_key=principal_key(scanner.client_id),
                claim_prefix=f"{scanner.client_id}|",
            )
        return constants

    def kid_text(self, kid: bytes) -> str:
        """The key id as verdicts show it; a service has a handful of keys (bounded against
        tokens with made-up key ids)."""
        text = self._kids.get(kid)
        if text is None:
            if len(self._kids) >= MAX_KEYS_REMEMBERED:
                self._kids.clear()
            text = self._kids[kid] = b64url(kid)
        return text

    def pseudonym(self, key: bytes, org_bytes: bytes, card_id: bytes) -> str:
        """`app.verification.service.pairwise_pseudonym`, from an HMAC keyed once;
        `org_bytes` and `card_id`: the ids' 16 bytes (`ScannerConstants.org_bytes`)."""
        keyed = self._macs.get(key)
        if keyed is None:
            if len(self._macs) >= MAX_KEYS_REMEMBERED:
                self._macs.clear()
            keyed = self._macs[key] = PrekeyedHmacSha256(key)
        mac = keyed.digest(org_bytes + card_id)
        return base64.urlsafe_b64encode(mac)[:PSEUDONYM_CHARS].decode("ascii")
