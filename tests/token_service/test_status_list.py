"""Token Status List (draft-ietf-oauth-status-list): bit layout, compression, signed forms."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable

import cbor2
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key
from pycose.messages.sign1message import Sign1Message

from tests.token_service.support import START, FakeClock
from token_service import (
    KeyRing,
    PublicKeySet,
    Status,
    StatusList,
    StatusListError,
    _cose,
    sign_status_list_cwt,
    sign_status_list_jwt,
    verify_status_list_cwt,
    verify_status_list_jwt,
)
from token_service.keys import b64url
from token_service.status_list import MAX_LIST_BYTES

URI = "https://ecard.example.cn/v1/status-lists/360000"
NOW = int(START)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def filled(values: list[int], bits: int) -> StatusList:
    status_list = StatusList(len(values), bits)
    for index, value in enumerate(values):
        status_list.set(index, value)
    return status_list


class TestDraftVectors:
    """The examples of the draft's section "Status List" (1-bit and 2-bit lists)."""

    ONE_BIT = (1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1)
    TWO_BITS = (1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3)

    def test_one_bit_list(self) -> None:
        status_list = filled(list(self.ONE_BIT), 1)
        assert status_list.to_bytes() == bytes((0xB9, 0xA3))
        assert b64url(status_list.compress()) == "eNrbuRgAAhcBXQ"

    def test_two_bit_list(self) -> None:
        status_list = filled(list(self.TWO_BITS), 2)
        assert status_list.to_bytes() == bytes((0xC9, 0x44, 0xF9))
        assert b64url(status_list.compress()) == "eNo76fITAAPfAgc"

    def test_the_draft_compressed_lists_decode(self) -> None:
        one = StatusList.decompress(b64url_decode("eNrbuRgAAhcBXQ"), bits=1)
        two = StatusList.decompress(b64url_decode("eNo76fITAAPfAgc"), bits=2)
        assert tuple(one.get(i) for i in range(16)) == self.ONE_BIT
        assert tuple(two.get(i) for i in range(12)) == self.TWO_BITS


class TestStatusList:
    def test_starts_all_valid_and_rounds_size_up_to_whole_bytes(self) -> None:
        status_list = StatusList(10)
        assert status_list.size == 12
        assert all(status_list.get(i) == Status.VALID for i in range(12))

    def test_status_values(self) -> None:
        assert [int(s) for s in Status] == [0, 1, 2, 3]
        assert int(Status.LOST) == 3  # the draft's application-specific value

    def test_set_changes_only_its_entry(self) -> None:
        status_list = StatusList(8)
        status_list.set(5, Status.LOST)
        status_list.set(5, Status.SUSPENDED)
        assert [status_list.get(i) for i in range(8)] == [0, 0, 0, 0, 0, 2, 0, 0]

    @pytest.mark.parametrize("index", [-1, 12])
    def test_index_outside_the_list(self, index: int) -> None:
        with pytest.raises(IndexError):
            StatusList(12).get(index)

    def test_value_must_fit_the_bits(self) -> None:
        with pytest.raises(ValueError, match="0 to 3"):
            StatusList(4).set(0, 4)

    @pytest.mark.parametrize("bits", [0, 3, 16])
    def test_bits_are_1_2_4_or_8(self, bits: int) -> None:
        with pytest.raises(ValueError):
            StatusList(4, bits)

    def test_refuses_a_zlib_bomb(self) -> None:
        bomb = zlib.compress(bytes(MAX_LIST_BYTES + 1))
        with pytest.raises(StatusListError, match="oversized"):
            StatusList.decompress(bomb)

    @pytest.mark.parametrize(
        "data", [b"", b"not zlib", zlib.compress(bytes(8))[:-2], zlib.compress(bytes(8)) + b"x"]
    )
    def test_refuses_broken_zlib(self, data: bytes) -> None:
        with pytest.raises(StatusListError):
            StatusList.decompress(data)

    @given(
        bits=st.sampled_from([1, 2, 4, 8]),
        values=st.lists(st.integers(min_value=0, max_value=255), max_size=300),
    )
    def test_round_trip_through_compression(self, bits: int, values: list[int]) -> None:
        values = [value % (1 << bits) for value in values]
        status_list = filled(values, bits)
        restored = StatusList.decompress(status_list.compress(), bits)
        assert restored == status_list
        assert [restored.get(i) for i in range(len(values))] == values
        assert all(restored.get(i) == 0 for i in range(len(values), restored.size))

    @given(
        size=st.integers(min_value=1, max_value=2000),
        changes=st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(list(Status)))),
    )
    def test_the_bit_layout_is_the_drafts(self, size: int, changes: list[tuple[int, int]]) -> None:
        status_list = StatusList(size)
        expected = [0] * status_list.size
        for position, value in changes:
            index = position % status_list.size
            status_list.set(index, value)
            expected[index] = value
        raw = status_list.to_bytes()
        assert [(raw[i // 4] >> 2 * (i % 4)) & 3 for i in range(status_list.size)] == expected


@pytest.fixture
def lost_list() -> StatusList:
    status_list = StatusList(1024)
    status_list.set(7, Status.LOST)
    status_list.set(8, Status.SUSPENDED)
    return status_list


class TestSignedCwt:
    def test_round_trip(self, ring: KeyRing, lost_list: StatusList) -> None:
        data = sign_status_list_cwt(
            lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=3600, ttl=300
        )
        token = verify_status_list_cwt(data, PublicKeySet.from_keyring(ring), now=NOW, uri=URI)
        assert token.status_list == lost_list
        assert (token.uri, token.issued_at, token.expires_at, token.ttl) == (
            URI,
            NOW,
            NOW + 3600,
            300,
        )
        assert token.kid == ring.signing_key.kid

    def test_layout_is_the_drafts(self, ring: KeyRing, lost_list: StatusList) -> None:
        data = sign_status_list_cwt(
            lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=3600, ttl=300
        )
        message = cbor2.loads(data)
        assert message.tag == 18
        assert cbor2.loads(message.value[0]) == {
            1: -7,
            4: ring.signing_key.kid,
            16: "application/statuslist+cwt",
        }
        claims = cbor2.loads(message.value[2])
        assert claims[2] == URI
        assert (claims[6], claims[4], claims[65534]) == (NOW, NOW + 3600, 300)
        assert claims[65533]["bits"] == 2
        assert zlib.decompress(claims[65533]["lst"]) == lost_list.to_bytes()

    def test_pycose_verifies_it_with_the_key_from_our_jwks(
        self, ring: KeyRing, lost_list: StatusList
    ) -> None:
        data = sign_status_list_cwt(lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=60)
        jwk = next(k for k in ring.jwks()["keys"] if k["kid"] == b64url(ring.signing_key.kid))
        message = Sign1Message.decode(data)
        message.key = EC2Key(crv=P256, x=b64url_decode(jwk["x"]), y=b64url_decode(jwk["y"]))
        assert message.verify_signature()

    def test_expired_list_is_refused_unless_allowed(
        self, ring: KeyRing, lost_list: StatusList
    ) -> None:
        data = sign_status_list_cwt(lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=60)
        keys = PublicKeySet.from_keyring(ring)
        with pytest.raises(StatusListError) as raised:
            verify_status_list_cwt(data, keys, now=NOW + 66)
        assert raised.value.reason == "expired"
        assert verify_status_list_cwt(data, keys, now=NOW + 66, allow_expired=True).status_list

    def test_refusals(self, ring: KeyRing, clock: FakeClock, lost_list: StatusList) -> None:
        data = sign_status_list_cwt(lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=60)
        keys = PublicKeySet.from_keyring(ring)
        stranger = PublicKeySet.from_keyring(KeyRing.ephemeral(clock=clock))
        tampered = bytearray(data)
        tampered[-1] ^= 1
        cases: dict[str, Callable[[], object]] = {
            "unknown_key": lambda: verify_status_list_cwt(data, stranger, now=NOW),
            "bad_signature": lambda: verify_status_list_cwt(bytes(tampered), keys, now=NOW),
            "inconsistent": lambda: verify_status_list_cwt(data, keys, now=NOW, uri=URI + "x"),
            "not_yet_valid": lambda: verify_status_list_cwt(data, keys, now=NOW - 60),
            "malformed": lambda: verify_status_list_cwt(data[:-3], keys, now=NOW),
        }
        for reason, attempt in cases.items():
            with pytest.raises(StatusListError) as raised:
                attempt()
            assert raised.value.reason == reason

    def test_a_cwt_of_another_type_is_refused(self, ring: KeyRing) -> None:
        other = _cose.sign1(
            cbor2.dumps({2: URI}), content_type="application/cwt", signing=ring.signing_key
        )
        with pytest.raises(StatusListError) as raised:
            verify_status_list_cwt(other, ring, now=NOW)
        assert raised.value.reason == "wrong_type"


class TestSignedJwt:
    def test_round_trip(self, ring: KeyRing, lost_list: StatusList) -> None:
        text = sign_status_list_jwt(
            lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=3600, ttl=300
        )
        token = verify_status_list_jwt(text, PublicKeySet.from_keyring(ring), now=NOW, uri=URI)
        assert token.status_list == lost_list
        assert (token.issued_at, token.expires_at, token.ttl) == (NOW, NOW + 3600, 300)

    def test_pyjwt_verifies_it_with_the_key_from_our_jwks(
        self, ring: KeyRing, lost_list: StatusList
    ) -> None:
        text = sign_status_list_jwt(lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=60)
        header = jwt.get_unverified_header(text)
        assert (header["typ"], header["alg"]) == ("statuslist+jwt", "ES256")
        jwk = next(k for k in ring.jwks()["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(
            text, jwt.PyJWK(jwk).key, algorithms=["ES256"], options={"verify_exp": False}
        )
        assert claims["sub"] == URI
        assert claims["status_list"]["bits"] == 2
        lst = zlib.decompress(b64url_decode(claims["status_list"]["lst"]))
        assert lst == lost_list.to_bytes()

    def test_refusals(self, ring: KeyRing, clock: FakeClock, lost_list: StatusList) -> None:
        text = sign_status_list_jwt(lost_list, uri=URI, keyring=ring, issued_at=NOW, expires_in=60)
        keys = PublicKeySet.from_keyring(ring)
        head, _, signature = text.split(".")
        other_body = b64url(b'{"sub":"x","iat":1,"status_list":{"bits":2,"lst":"eNoDAAAAAAE"}}')
        wrong_type = jwt.encode(
            {"sub": URI},
            ring.signing_key.private_key,
            algorithm="ES256",
            headers={"typ": "JWT", "kid": b64url(ring.signing_key.kid)},
        )
        stranger = PublicKeySet.from_keyring(KeyRing.ephemeral(clock=clock))
        cases: dict[str, Callable[[], object]] = {
            "bad_signature": lambda: verify_status_list_jwt(
                f"{head}.{other_body}.{signature}", keys, now=NOW
            ),
            "unknown_key": lambda: verify_status_list_jwt(text, stranger, now=NOW),
            "expired": lambda: verify_status_list_jwt(text, keys, now=NOW + 3600),
            "wrong_type": lambda: verify_status_list_jwt(wrong_type, keys, now=NOW),
            "malformed": lambda: verify_status_list_jwt("not.a.jwt", keys, now=NOW),
        }
        for reason, attempt in cases.items():
            with pytest.raises(StatusListError) as raised:
                attempt()
            assert raised.value.reason == reason


class TestHostileInput:
    @given(st.binary(max_size=300))
    def test_random_bytes_raise_only_status_list_errors(self, data: bytes) -> None:
        with pytest.raises(StatusListError):
            verify_status_list_cwt(b"\xd2" + data, PublicKeySet(), now=NOW)

    @given(st.text(max_size=300))
    def test_random_text_raises_only_status_list_errors(self, text: str) -> None:
        with pytest.raises(StatusListError):
            verify_status_list_jwt(text, PublicKeySet(), now=NOW)


class TestCompressedOnce:
    def test_the_compressed_form_is_reused_until_an_entry_changes(self) -> None:
        status_list = StatusList(1 << 16)
        first = status_list.compress()
        assert status_list.compress() is first
        status_list.set(3, Status.LOST)
        changed = status_list.compress()
        assert changed != first
        assert StatusList.decompress(changed).get(3) == Status.LOST
