"""Key rotation: tokens in flight survive it, new tokens use the new key, old keys leave."""

from __future__ import annotations

import asyncio
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.store import Store
from app.trust.key_rotation import RotationPolicy, rotate_if_due
from app.trust.verifier import build_token_verifier
from token_service import KeyDirectory, KeyRing, KeyState, TokenIssuer, Verdict

ISSUER = "360000"
DAY = 86400.0
GRACE = 60 + 3 * DAY


class FakeClock:
    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_ring(directory: Path, kek: bytes, clock: FakeClock | None = None) -> KeyRing:
    """One worker's view of the shared key directory."""
    if clock is None:
        return KeyRing.load_or_create(directory, kek, retire_grace=GRACE)
    return KeyRing.load_or_create(directory, kek, retire_grace=GRACE, clock=clock)


@pytest.fixture
def kek() -> bytes:
    return secrets.token_bytes(32)


class TestRotationUnderLoad:
    def test_no_token_in_flight_fails_while_another_worker_rotates(
        self, tmp_path: Path, kek: bytes
    ) -> None:
        handle_key = secrets.token_bytes(16)
        signer_ring = open_ring(tmp_path, kek)
        verifier_ring = open_ring(tmp_path, kek)
        verifier = build_token_verifier(
            issuer=ISSUER,
            own_keys=KeyDirectory({ISSUER: verifier_ring}),
            card_handle_key=handle_key,
            clock_skew=5,
        )
        issuer = TokenIssuer(signer_ring, ISSUER, handle_key)
        old_kid = signer_ring.signing_key.kid
        before = [issuer.issue(secrets.token_bytes(16)).token for _ in range(150)]
        rotated = threading.Event()
        after: list[str] = []

        def rotate_in_the_middle() -> None:
            signer_ring.rotate()
            after.extend(issuer.issue(secrets.token_bytes(16)).token for _ in range(150))
            rotated.set()
            verifier_ring.reload()  # the verifying worker's next sync, while it verifies

        def verify_all(tokens: list[str]) -> list[Verdict]:
            return [verifier.verify(token).verdict for token in tokens]

        with ThreadPoolExecutor(max_workers=4) as pool:
            during = [pool.submit(verify_all, before) for _ in range(2)]
            pool.submit(rotate_in_the_middle).result()
            rotated.wait()
            during += [pool.submit(verify_all, after), pool.submit(verify_all, before)]
            verdicts = [verdict for future in during for verdict in future.result()]

        assert set(verdicts) == {Verdict.VALID}
        assert len(verdicts) == 4 * 150
        new_kid = signer_ring.signing_key.kid
        assert new_kid != old_kid
        assert issuer.issue(secrets.token_bytes(16)).kid == new_kid


class TestScheduledRotation:
    async def test_rotates_only_when_due_and_the_next_key_was_published_long_enough(
        self, tmp_path: Path, kek: bytes, store: Store
    ) -> None:
        clock = FakeClock()
        ring = open_ring(tmp_path, kek, clock)
        policy = RotationPolicy(rotate_after=90 * DAY, publish_ahead=DAY)
        first = ring.signing_key.kid
        clock.now += 89 * DAY
        assert not await rotate_if_due(ring, store, policy, now=clock.now)
        clock.now += 2 * DAY
        assert await rotate_if_due(ring, store, policy, now=clock.now)
        assert ring.signing_key.kid != first
        # The key created by that rotation must be published a day before it may sign.
        eager = RotationPolicy(rotate_after=1, publish_ahead=DAY)
        clock.now += DAY - 1
        assert not await rotate_if_due(ring, store, eager, now=clock.now)
        clock.now += 1
        assert await rotate_if_due(ring, store, eager, now=clock.now)

    async def test_two_workers_due_at_once_rotate_once(
        self, tmp_path: Path, kek: bytes, store: Store
    ) -> None:
        clock = FakeClock()
        workers = [open_ring(tmp_path, kek, clock) for _ in range(3)]
        policy = RotationPolicy(rotate_after=DAY, publish_ahead=DAY)
        clock.now += 2 * DAY
        results = await asyncio.gather(
            *(rotate_if_due(ring, store, policy, now=clock.now) for ring in workers)
        )
        assert results.count(True) == 1
        states = [key.state for key in open_ring(tmp_path, kek, clock).published()]
        assert sorted(states) == sorted([KeyState.ACTIVE, KeyState.NEXT, KeyState.RETIRED])

    async def test_a_retired_key_leaves_the_jwks_after_its_grace(
        self, tmp_path: Path, kek: bytes, store: Store
    ) -> None:
        clock = FakeClock()
        ring = open_ring(tmp_path, kek, clock)
        policy = RotationPolicy(rotate_after=DAY, publish_ahead=DAY)
        retired = ring.signing_key.kid
        clock.now += 2 * DAY
        assert await rotate_if_due(ring, store, policy, now=clock.now)
        directory = KeyDirectory({ISSUER: ring}, clock=clock)

        def published_kids() -> set[bytes]:
            return {key.kid for key in ring.published()}

        clock.now += GRACE
        await rotate_if_due(ring, store, RotationPolicy(0, DAY), now=clock.now)
        assert retired in published_kids()
        assert directory.resolve(retired) is not None
        clock.now += 1
        await rotate_if_due(ring, store, RotationPolicy(0, DAY), now=clock.now)
        assert retired not in published_kids()
        assert directory.resolve(retired) is None
        assert retired not in {key.kid for key in open_ring(tmp_path, kek, clock).published()}

    async def test_zero_days_turns_scheduled_rotation_off(
        self, tmp_path: Path, kek: bytes, store: Store
    ) -> None:
        clock = FakeClock()
        ring = open_ring(tmp_path, kek, clock)
        active = ring.signing_key.kid
        clock.now += 3650 * DAY
        assert not await rotate_if_due(ring, store, RotationPolicy(0, 0), now=clock.now)
        assert ring.signing_key.kid == active
