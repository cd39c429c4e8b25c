"""`ScannerTokenCache`: decodes a scanner token once, never past its expiry, within its bound."""

import uuid

import pytest

from app.errors import Forbidden
from app.security.errors import InvalidAccessToken
from app.security.tokens import AccessTokenCodec, PrincipalKind
from app.verification.scanners import ScannerTokenCache

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def scanner_token(codec: AccessTokenCodec, scopes: tuple[str, ...] = ("verify",)) -> str:
    extra = {"org": str(uuid.uuid4()), "scenes": "museum,hotel"}
    return codec.issue(PrincipalKind.scanner, "scn_1", scopes, 60, extra).token


class TestScannerTokenCache:
    def test_a_cached_token_gives_the_same_principal(self) -> None:
        clock = Clock()
        codec = AccessTokenCodec(SECRET, "ssc:test", clock)
        cache = ScannerTokenCache(codec, clock=clock)
        token = scanner_token(codec)
        first = cache.principal(token)
        assert cache.principal(token) is first
        assert first.scenes == {"museum", "hotel"}

    def test_an_expired_token_is_refused_although_it_was_cached(self) -> None:
        clock = Clock()
        codec = AccessTokenCodec(SECRET, "ssc:test", clock, leeway=0)
        cache = ScannerTokenCache(codec, clock=clock)
        token = scanner_token(codec)
        cache.principal(token)
        clock.now += 61
        with pytest.raises(InvalidAccessToken):
            cache.principal(token)
        assert len(cache) == 0

    def test_other_kinds_and_missing_scopes_are_refused_and_not_cached(self) -> None:
        codec = AccessTokenCodec(SECRET, "ssc:test")
        cache = ScannerTokenCache(codec)
        holder = codec.issue(PrincipalKind.holder, str(uuid.uuid4()), ["card"], 60).token
        with pytest.raises(InvalidAccessToken):
            cache.principal(holder)
        with pytest.raises(Forbidden):
            cache.principal(scanner_token(codec, scopes=("other",)))
        assert len(cache) == 0

    def test_the_cache_stays_within_its_capacity(self) -> None:
        codec = AccessTokenCodec(SECRET, "ssc:test")
        cache = ScannerTokenCache(codec, capacity=3)
        for _ in range(5):
            cache.principal(scanner_token(codec))
        assert len(cache) == 3
