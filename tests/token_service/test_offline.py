"""The offline verifier: a signed bundle, status lists, scenes, replay, staleness."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import cbor2
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.token_service.support import ISSUER, OTHER_ISSUER, START, FakeClock
from token_service import (
    BundleError,
    KeyRing,
    OfflineVerifier,
    PublicKeySet,
    ReplayCache,
    ReplayCacheError,
    SignedBundle,
    Status,
    StatusList,
    TokenIssuer,
    TrustedIssuer,
    Verdict,
    build_bundle,
    sign_status_list_cwt,
)

CHONGQING = "500000"
URIS = {ISSUER: "https://jx.example.cn/status/1", CHONGQING: "https://cq.example.cn/status/1"}
MAX_AGE = 3600
SCENES = ("bus", "clinic")
CARD = 7


class Deployment:
    """Our deployment (bundle signer), two issuers with status lists, one scanner."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.anchor = KeyRing.ephemeral(clock=clock)
        self.rings = {code: KeyRing.ephemeral(clock=clock) for code in URIS}
        self.lists = {code: StatusList(1024) for code in URIS}

    @property
    def anchor_keys(self) -> PublicKeySet:
        return PublicKeySet.from_keyring(self.anchor)

    def bundle(self, *, status_expires_in: int = 86_400) -> SignedBundle:
        now = int(self.clock())
        return build_bundle(
            keyring=self.anchor,
            client_id="scanner-bus-42",
            scenes=SCENES,
            issuers=[
                TrustedIssuer.from_keyring(
                    code, code, ring, token_lifetime=60, status_list_uri=URIS[code]
                )
                for code, ring in self.rings.items()
            ],
            status_lists={
                code: sign_status_list_cwt(
                    self.lists[code],
                    uri=URIS[code],
                    keyring=self.rings[code],
                    issued_at=now,
                    expires_in=status_expires_in,
                )
                for code in URIS
            },
            issued_at=now,
            max_age=MAX_AGE,
        )

    def verifier(self, data: bytes | None = None, **options: object) -> OfflineVerifier:
        return OfflineVerifier(
            self.bundle().data if data is None else data,
            self.anchor_keys,
            clock=self.clock,
            **options,  # type: ignore[arg-type]
        )

    def token(
        self, code: str = ISSUER, *, index: int | None = CARD, ring: KeyRing | None = None
    ) -> str:
        issuer = TokenIssuer(ring or self.rings[code], code, bytes(16), clock=self.clock)
        return issuer.issue(secrets.token_bytes(16), status_index=index).token


@pytest.fixture
def deployment(clock: FakeClock) -> Deployment:
    return Deployment(clock)


class TestValid:
    def test_a_fresh_token_is_accepted(self, deployment: Deployment) -> None:
        result = deployment.verifier().verify(deployment.token(), scene="bus")
        assert (result.verdict, result.accepted, result.stale) == (Verdict.VALID, True, False)
        assert (result.issuer, result.status_index, result.status) == (ISSUER, CARD, Status.VALID)
        assert result.bundle_age_seconds == 0

    def test_a_second_issuer_via_the_trust_entries(self, deployment: Deployment) -> None:
        result = deployment.verifier().verify(deployment.token(CHONGQING))
        assert (result.verdict, result.issuer, result.accepted) == (
            Verdict.VALID,
            CHONGQING,
            True,
        )

    def test_the_bundle_reports_what_it_holds(self, deployment: Deployment) -> None:
        signed = deployment.bundle()
        bundle = deployment.verifier(signed.data).bundle
        assert (bundle.client_id, bundle.scenes, bundle.max_age) == (
            "scanner-bus-42",
            frozenset(SCENES),
            MAX_AGE,
        )
        assert {entry.code for entry in bundle.issuers} == set(URIS)
        assert bundle.etag == signed.etag
        assert bundle.kid == deployment.anchor.signing_key.kid

    def test_the_digest_follows_the_content_not_the_signing_time(
        self, deployment: Deployment
    ) -> None:
        first = deployment.bundle()
        deployment.lists[ISSUER].set(3, Status.LOST)
        assert deployment.bundle().etag != first.etag


class TestStatus:
    @pytest.mark.parametrize(
        ("status", "verdict"),
        [
            (Status.LOST, Verdict.CARD_LOST),
            (Status.SUSPENDED, Verdict.CARD_SUSPENDED),
            (Status.INVALID, Verdict.CARD_CANCELLED),
        ],
    )
    def test_a_card_is_refused_once_the_bundle_is_rebuilt(
        self, deployment: Deployment, status: Status, verdict: Verdict
    ) -> None:
        token = deployment.token()
        old_bundle = deployment.bundle()
        deployment.lists[ISSUER].set(CARD, status)
        deployment.clock.advance(10)
        new_bundle = deployment.bundle()
        assert deployment.verifier(old_bundle.data).verify(token).verdict is Verdict.VALID
        result = deployment.verifier(new_bundle.data).verify(token)
        assert (result.verdict, result.status, result.accepted) == (verdict, status, False)

    def test_a_token_without_status_index_is_refused(self, deployment: Deployment) -> None:
        result = deployment.verifier().verify(deployment.token(index=None))
        assert (result.verdict, result.reason) == (Verdict.MALFORMED, "status_index_missing")

    def test_an_index_outside_the_list_is_refused(self, deployment: Deployment) -> None:
        result = deployment.verifier().verify(deployment.token(index=1024))
        assert (result.verdict, result.reason) == (Verdict.MALFORMED, "status_index_out_of_range")


class TestReplay:
    def test_a_second_presentation_is_replayed(self, deployment: Deployment) -> None:
        verifier, token = deployment.verifier(), deployment.token()
        assert verifier.verify(token).accepted
        second = verifier.verify(token)
        assert (second.verdict, second.accepted) == (Verdict.REPLAYED, False)

    def test_a_restarted_scanner_remembers(self, deployment: Deployment, tmp_path: Path) -> None:
        path = tmp_path / "replay.json"
        token = deployment.token()
        first = deployment.verifier(replay_cache=ReplayCache(path, clock=deployment.clock))
        assert first.verify(token).accepted
        restarted = deployment.verifier(replay_cache=ReplayCache(path, clock=deployment.clock))
        assert restarted.verify(token).verdict is Verdict.REPLAYED

    def test_entries_leave_after_the_token_expires(
        self, deployment: Deployment, tmp_path: Path
    ) -> None:
        cache = ReplayCache(tmp_path / "replay.json", clock=deployment.clock)
        cache.record(ISSUER, bytes(8), until=START + 65)
        deployment.clock.advance(66)
        assert not cache.seen(ISSUER, bytes(8))
        cache.record(ISSUER, b"\x01" * 8, until=START + 200)
        assert len(ReplayCache(tmp_path / "replay.json", clock=deployment.clock)) == 1

    def test_a_full_cache_drops_the_entries_closest_to_expiry(self, clock: FakeClock) -> None:
        cache = ReplayCache(clock=clock, max_entries=2)
        for number, until in enumerate((START + 30, START + 90, START + 60)):
            cache.record(ISSUER, bytes([number]) * 8, until)
        assert [cache.seen(ISSUER, bytes([n]) * 8) for n in range(3)] == [False, True, True]

    def test_a_corrupt_cache_file_is_a_clear_error(self, tmp_path: Path) -> None:
        path = tmp_path / "replay.json"
        path.write_text(json.dumps({"format": "ssc-replay-cache/1", "entries": {"!": 1}}))
        with pytest.raises(ReplayCacheError, match="unreadable"):
            ReplayCache(path)


class TestStale:
    def test_beyond_max_age_the_verdict_stands_but_nothing_is_accepted(
        self, deployment: Deployment
    ) -> None:
        verifier = deployment.verifier()
        deployment.clock.advance(MAX_AGE + 1)
        token = deployment.token()
        result = verifier.verify(token)
        assert (result.verdict, result.stale, result.accepted) == (Verdict.VALID, True, False)
        assert result.bundle_age_seconds == MAX_AGE + 1
        assert verifier.verify(token).verdict is Verdict.VALID  # not recorded: not accepted

    def test_an_expired_status_list_makes_its_issuers_tokens_stale(
        self, deployment: Deployment
    ) -> None:
        verifier = deployment.verifier(deployment.bundle(status_expires_in=600).data)
        deployment.clock.advance(606)
        result = verifier.verify(deployment.token())
        assert (result.verdict, result.stale, result.accepted) == (Verdict.VALID, True, False)

    def test_within_max_age_the_age_is_reported(self, deployment: Deployment) -> None:
        verifier = deployment.verifier()
        deployment.clock.advance(MAX_AGE)
        result = verifier.verify(deployment.token())
        assert (result.accepted, result.bundle_age_seconds) == (True, MAX_AGE)


class TestScenesAndIssuers:
    def test_a_scene_the_scanner_may_not_verify_for(self, deployment: Deployment) -> None:
        result = deployment.verifier().verify(deployment.token(), scene="pharmacy")
        assert (result.verdict, result.accepted) == (Verdict.SCENE_NOT_ALLOWED, False)

    def test_an_issuer_outside_the_bundle_is_untrusted(self, deployment: Deployment) -> None:
        outsider = deployment.token(OTHER_ISSUER, ring=KeyRing.ephemeral(clock=deployment.clock))
        assert deployment.verifier().verify(outsider).verdict is Verdict.ISSUER_UNTRUSTED

    def test_an_unknown_key_of_a_listed_issuer(self, deployment: Deployment) -> None:
        forged = deployment.token(ISSUER, ring=KeyRing.ephemeral(clock=deployment.clock))
        assert deployment.verifier().verify(forged).verdict is Verdict.UNKNOWN_KEY

    @pytest.mark.parametrize("token", ["", "SSC1:", "hello", "SSC1:" + "A" * 600])
    def test_hostile_tokens_are_malformed(self, deployment: Deployment, token: str) -> None:
        assert deployment.verifier().verify(token).verdict is Verdict.MALFORMED


class TestBundleIntegrity:
    def test_a_wrong_anchor_is_refused(self, deployment: Deployment, clock: FakeClock) -> None:
        stranger = PublicKeySet.from_keyring(KeyRing.ephemeral(clock=clock))
        with pytest.raises(BundleError) as raised:
            OfflineVerifier(deployment.bundle().data, stranger, clock=clock)
        assert raised.value.reason == "unknown_key"

    def test_a_tampered_bundle_is_refused(self, deployment: Deployment) -> None:
        message = cbor2.loads(deployment.bundle().data)
        claims = cbor2.loads(message.value[2])
        claims["scenes"].append("pharmacy")
        message.value[2] = cbor2.dumps(claims)
        with pytest.raises(BundleError) as raised:
            deployment.verifier(cbor2.dumps(message))
        assert raised.value.reason == "bad_signature"

    def test_a_status_list_signed_by_another_issuer_is_refused_at_build(
        self, deployment: Deployment
    ) -> None:
        forged = sign_status_list_cwt(
            StatusList(8),
            uri=URIS[ISSUER],
            keyring=KeyRing.ephemeral(),
            issued_at=int(START),
            expires_in=60,
        )
        with pytest.raises(BundleError, match="status list of issuer"):
            build_bundle(
                keyring=deployment.anchor,
                client_id="s",
                scenes=[],
                issuers=[
                    TrustedIssuer.from_keyring(
                        ISSUER,
                        "x",
                        deployment.rings[ISSUER],
                        token_lifetime=60,
                        status_list_uri=URIS[ISSUER],
                    )
                ],
                status_lists={ISSUER: forged},
                issued_at=int(START),
                max_age=60,
            )

    def test_from_file(self, deployment: Deployment, tmp_path: Path) -> None:
        path = tmp_path / "bundle.cwt"
        path.write_bytes(deployment.bundle().data)
        verifier = OfflineVerifier.from_file(path, deployment.anchor_keys, clock=deployment.clock)
        assert verifier.verify(deployment.token()).accepted
        with pytest.raises(BundleError, match="cannot read"):
            OfflineVerifier.from_file(tmp_path / "missing", deployment.anchor_keys)

    @settings(max_examples=200, deadline=None)
    @given(data=st.binary(max_size=400), tagged=st.booleans())
    def test_random_bytes_raise_only_bundle_errors(self, data: bytes, tagged: bool) -> None:
        anchor = PublicKeySet.from_keyring(ANCHOR)
        with pytest.raises(BundleError):
            OfflineVerifier((b"\xd2" if tagged else b"") + data, anchor)

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_mutated_bundles_raise_only_bundle_errors(self, data: st.DataObject) -> None:
        raw = bytearray(VALID_BUNDLE)
        for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
            position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
            raw[position] ^= data.draw(st.integers(min_value=1, max_value=255))
        assume(raw != VALID_BUNDLE)  # two flips of one byte may cancel out
        with pytest.raises(BundleError):
            OfflineVerifier(bytes(raw), PublicKeySet.from_keyring(ANCHOR), clock=lambda: START)


ANCHOR = KeyRing.ephemeral()
VALID_BUNDLE = build_bundle(
    keyring=ANCHOR,
    client_id="s",
    scenes=["bus"],
    issuers=[TrustedIssuer.from_keyring(ISSUER, "x", KeyRing.ephemeral(), token_lifetime=60)],
    status_lists={},
    issued_at=int(START),
    max_age=60,
).data
