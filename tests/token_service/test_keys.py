"""Key ring: creation, encrypted persistence, rotation states, publication formats."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import stat
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.token_service.support import GRACE, FakeClock
from token_service import KeyRing, KeyRingError, KeyState, key_id

KEK = bytes(range(32))


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def open_ring(directory: Path, clock: FakeClock, kek: bytes = KEK) -> KeyRing:
    return KeyRing.load_or_create(directory, kek, retire_grace=GRACE, clock=clock)


def states(ring: KeyRing) -> dict[bytes, KeyState]:
    return {key.kid: key.state for key in ring.published()}


class TestKeyId:
    def test_is_the_first_8_bytes_of_sha256_of_the_spki(self) -> None:
        public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        spki = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert key_id(public_key) == hashlib.sha256(spki).digest()[:8]

    def test_signing_key_kid_matches_its_public_key(self, ring: KeyRing) -> None:
        signing = ring.signing_key
        assert signing.kid == key_id(signing.private_key.public_key())


class TestCreation:
    def test_empty_directory_gets_one_active_and_one_next_key(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        ring = open_ring(tmp_path / "keys", clock)
        assert sorted(states(ring).values()) == [KeyState.ACTIVE, KeyState.NEXT]
        assert len(list((tmp_path / "keys").glob("*.json"))) == 2

    def test_key_files_are_private_to_the_owner(self, tmp_path: Path, clock: FakeClock) -> None:
        open_ring(tmp_path, clock)
        for path in tmp_path.glob("*.json"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_ephemeral_ring_has_the_same_shape_and_writes_nothing(
        self, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        ring = KeyRing.ephemeral(clock=clock)
        assert sorted(states(ring).values()) == [KeyState.ACTIVE, KeyState.NEXT]
        assert list(tmp_path.iterdir()) == []


class TestPersistence:
    def test_reload_gives_the_same_keys_and_states(self, tmp_path: Path, clock: FakeClock) -> None:
        first = open_ring(tmp_path, clock)
        second = open_ring(tmp_path, clock)
        assert states(second) == states(first)
        assert second.signing_key.kid == first.signing_key.kid
        assert (
            second.signing_key.private_key.private_numbers()
            == first.signing_key.private_key.private_numbers()
        )

    def test_private_keys_are_not_stored_in_plaintext(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        ring = open_ring(tmp_path, clock)
        private_key = ring.signing_key.private_key
        scalar = private_key.private_numbers().private_value.to_bytes(32, "big")
        disclosures = [
            scalar,
            scalar.hex().encode(),
            base64.b64encode(scalar),
            base64.urlsafe_b64encode(scalar).rstrip(b"="),
            b"PRIVATE KEY",
            private_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ]
        stored = b"".join(path.read_bytes() for path in tmp_path.glob("*.json"))
        for disclosure in disclosures:
            assert disclosure not in stored

    def test_wrong_kek_is_a_clear_error(self, tmp_path: Path, clock: FakeClock) -> None:
        open_ring(tmp_path, clock)
        with pytest.raises(KeyRingError, match="wrong key-encryption key"):
            open_ring(tmp_path, clock, kek=secrets.token_bytes(32))

    def test_kek_must_be_32_bytes(self, tmp_path: Path, clock: FakeClock) -> None:
        with pytest.raises(KeyRingError, match="32 bytes"):
            open_ring(tmp_path, clock, kek=b"short")

    def test_ciphertext_moved_to_another_key_file_does_not_decrypt(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        open_ring(tmp_path, clock)
        first, second = sorted(tmp_path.glob("*.json"))
        documents = [json.loads(path.read_text()) for path in (first, second)]
        documents[0]["private_key"] = documents[1]["private_key"]
        first.write_text(json.dumps(documents[0]))
        with pytest.raises(KeyRingError, match="wrong key-encryption key or tampered"):
            open_ring(tmp_path, clock)

    def test_unreadable_key_file_names_the_file(self, tmp_path: Path, clock: FakeClock) -> None:
        open_ring(tmp_path, clock)
        broken = sorted(tmp_path.glob("*.json"))[0]
        broken.write_text("{not json")
        with pytest.raises(KeyRingError, match=broken.name):
            open_ring(tmp_path, clock)


class TestRotation:
    def test_next_key_is_published_before_it_signs(self, ring: KeyRing) -> None:
        upcoming = next(key for key in ring.published() if key.state is KeyState.NEXT)
        assert ring.signing_key.kid != upcoming.kid
        assert ring.find(upcoming.kid) == upcoming.public_key
        assert any(jwk["kid"] == jwk_kid(upcoming.kid) for jwk in ring.jwks()["keys"])
        assert ring.rotate().kid == upcoming.kid

    def test_rotate_moves_every_state_along(self, ring: KeyRing, clock: FakeClock) -> None:
        before = {key.state: key.kid for key in ring.published()}
        clock.advance(100)
        ring.rotate()
        after = {key.kid: key for key in ring.published()}
        assert after[before[KeyState.NEXT]].state is KeyState.ACTIVE
        assert after[before[KeyState.NEXT]].activated_at == clock.now
        assert after[before[KeyState.ACTIVE]].state is KeyState.RETIRED
        assert after[before[KeyState.ACTIVE]].retired_at == clock.now
        fresh = [key for key in after.values() if key.state is KeyState.NEXT]
        assert len(fresh) == 1
        assert fresh[0].kid not in before.values()

    def test_retired_key_verifies_within_grace_then_vanishes_after_prune(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        ring = open_ring(tmp_path, clock)
        retired = ring.signing_key.kid
        ring.rotate()
        clock.advance(GRACE)
        assert ring.find(retired) is not None
        assert ring.prune() == []
        clock.advance(1)
        assert ring.find(retired) is None
        assert retired not in states(ring)
        assert ring.prune() == [retired]
        assert not (tmp_path / f"{retired.hex()}.json").exists()
        assert retired not in states(open_ring(tmp_path, clock))

    def test_rotation_is_persisted(self, tmp_path: Path, clock: FakeClock) -> None:
        ring = open_ring(tmp_path, clock)
        ring.rotate()
        assert states(open_ring(tmp_path, clock)) == states(ring)

    def test_other_process_sees_a_rotation_after_reload(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        worker = open_ring(tmp_path, clock)
        operator = open_ring(tmp_path, clock)
        new_signer = operator.rotate()
        assert worker.signing_key.kid != new_signer.kid
        worker.reload()
        assert worker.signing_key.kid == new_signer.kid

    def test_rotation_on_a_stale_ring_builds_on_the_stored_state(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        stale = open_ring(tmp_path, clock)
        open_ring(tmp_path, clock).rotate()
        stale.rotate()
        assert sorted(states(open_ring(tmp_path, clock)).values()) == [
            KeyState.ACTIVE,
            KeyState.NEXT,
            KeyState.RETIRED,
            KeyState.RETIRED,
        ]

    def test_interrupted_rotation_with_two_active_keys_keeps_the_newest(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        ring = open_ring(tmp_path, clock)
        old = ring.signing_key.kid
        clock.advance(10)
        new = ring.rotate().kid
        path = tmp_path / f"{old.hex()}.json"
        document = json.loads(path.read_text())
        document.update(state="active", retired_at=None)
        path.write_text(json.dumps(document))
        recovered = open_ring(tmp_path, clock)
        assert recovered.signing_key.kid == new
        assert states(recovered)[old] is KeyState.RETIRED

    def test_a_ring_without_an_active_key_is_refused(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        ring = open_ring(tmp_path, clock)
        path = tmp_path / f"{ring.signing_key.kid.hex()}.json"
        document = json.loads(path.read_text())
        document.update(state="next", activated_at=None)
        path.write_text(json.dumps(document))
        with pytest.raises(KeyRingError, match="no active key"):
            open_ring(tmp_path, clock)


def jwk_kid(kid: bytes) -> str:
    return base64.urlsafe_b64encode(kid).rstrip(b"=").decode()


class TestPublication:
    def test_jwks_members(self, ring: KeyRing) -> None:
        jwks = ring.jwks()
        assert list(jwks) == ["keys"]
        published = {jwk_kid(key.kid): key for key in ring.published()}
        assert len(jwks["keys"]) == 2
        for jwk in jwks["keys"]:
            assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use", "status"}
            assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (
                "EC",
                "P-256",
                "ES256",
                "sig",
            )
            key = published[jwk["kid"]]
            assert jwk["status"] == key.state.value
            rebuilt = ec.EllipticCurvePublicNumbers(
                int.from_bytes(b64url_decode(jwk["x"]), "big"),
                int.from_bytes(b64url_decode(jwk["y"]), "big"),
                ec.SECP256R1(),
            )
            assert rebuilt == key.public_key.public_numbers()
            assert len(b64url_decode(jwk["x"])) == len(b64url_decode(jwk["y"])) == 32
            assert "=" not in jwk["x"] + jwk["y"] + jwk["kid"]

    def test_cose_key_set(self, ring: KeyRing) -> None:
        keys = cbor2.loads(ring.cose_key_set())
        published = {key.kid: key for key in ring.published()}
        assert len(keys) == 2
        for cose_key in keys:
            assert set(cose_key) == {1, 2, 3, -1, -2, -3}
            assert (cose_key[1], cose_key[3], cose_key[-1]) == (2, -7, 1)
            numbers = published[cose_key[2]].public_key.public_numbers()
            assert cose_key[-2] == numbers.x.to_bytes(32, "big")
            assert cose_key[-3] == numbers.y.to_bytes(32, "big")

    def test_published_lists_next_then_active_then_retired(
        self, ring: KeyRing, clock: FakeClock
    ) -> None:
        ring.rotate()
        assert [key.state for key in ring.published()] == [
            KeyState.NEXT,
            KeyState.ACTIVE,
            KeyState.RETIRED,
        ]
