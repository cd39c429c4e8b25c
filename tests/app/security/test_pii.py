"""Personal data at rest: sealing, blind indexes and display masks."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import DomainError
from app.security import PiiCipher, PiiError, mask_document_number, mask_name

MASTER = bytes(range(32))
ENCRYPTION_KEY = b"e" * 32
INDEX_KEY = b"i" * 32

unicode_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)


@pytest.fixture(scope="module")
def cipher() -> PiiCipher:
    return PiiCipher(ENCRYPTION_KEY, INDEX_KEY)


class TestSeal:
    def test_round_trips_chinese_text(self, cipher: PiiCipher) -> None:
        assert cipher.open("name", cipher.seal("name", "欧阳小明")) == "欧阳小明"

    def test_format_is_version_nonce_ciphertext_and_tag(self, cipher: PiiCipher) -> None:
        sealed = cipher.seal("phone", "13800138000")
        assert sealed[:1] == b"\x01"
        assert len(sealed) == 1 + 12 + len("13800138000") + 16

    def test_sealing_twice_gives_unrelated_ciphertexts(self, cipher: PiiCipher) -> None:
        first, second = cipher.seal("name", "张三"), cipher.seal("name", "张三")
        assert first[1:13] != second[1:13]
        assert first != second

    def test_a_value_moved_to_another_column_does_not_open(self, cipher: PiiCipher) -> None:
        sealed_name = cipher.seal("name", "张三")
        with pytest.raises(PiiError):
            cipher.open("phone", sealed_name)

    @pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
    def test_any_flipped_bit_is_detected(self, cipher: PiiCipher, position: int) -> None:
        sealed = bytearray(cipher.seal("name", "张三"))
        sealed[position] ^= 0x01
        with pytest.raises(PiiError):
            cipher.open("name", bytes(sealed))

    @pytest.mark.parametrize("length", [0, 1, 13, 28])
    def test_truncated_values_are_refused(self, cipher: PiiCipher, length: int) -> None:
        with pytest.raises(PiiError, match="truncated"):
            cipher.open("name", cipher.seal("name", "")[:length])

    def test_the_empty_string_round_trips(self, cipher: PiiCipher) -> None:
        assert cipher.open("name", cipher.seal("name", "")) == ""

    def test_another_key_cannot_open(self, cipher: PiiCipher) -> None:
        other = PiiCipher(b"E" * 32, INDEX_KEY)
        with pytest.raises(PiiError):
            other.open("name", cipher.seal("name", "张三"))

    def test_failure_is_a_server_side_integrity_error(self, cipher: PiiCipher) -> None:
        with pytest.raises(PiiError) as caught:
            cipher.open("name", b"\x01" + bytes(40))
        assert isinstance(caught.value, DomainError)
        assert (caught.value.status, caught.value.code) == (500, "pii-integrity")

    def test_a_lone_surrogate_is_refused_as_bad_input(self, cipher: PiiCipher) -> None:
        with pytest.raises(ValueError, match="surrogate"):
            cipher.seal("name", "\ud800")

    def test_a_field_name_is_required(self, cipher: PiiCipher) -> None:
        with pytest.raises(ValueError, match="field"):
            cipher.seal("", "张三")

    @given(field=st.sampled_from(["name", "id_number", "phone"]), plaintext=unicode_text)
    def test_round_trips_any_text(self, cipher: PiiCipher, field: str, plaintext: str) -> None:
        assert cipher.open(field, cipher.seal(field, plaintext)) == plaintext

    @given(garbage=st.binary(max_size=80))
    def test_garbage_only_ever_raises_pii_error(self, cipher: PiiCipher, garbage: bytes) -> None:
        with pytest.raises(PiiError):
            cipher.open("name", garbage)


class TestKeys:
    @pytest.mark.parametrize(
        ("encryption_key", "index_key"), [(b"e" * 16, INDEX_KEY), (ENCRYPTION_KEY, b"i" * 31)]
    )
    def test_keys_must_be_32_bytes(self, encryption_key: bytes, index_key: bytes) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            PiiCipher(encryption_key, index_key)

    def test_the_index_key_must_differ_from_the_encryption_key(self) -> None:
        with pytest.raises(ValueError, match="differ"):
            PiiCipher(ENCRYPTION_KEY, ENCRYPTION_KEY)

    def test_one_master_key_gives_the_same_ciphers_every_time(self) -> None:
        first, second = PiiCipher.from_master_key(MASTER), PiiCipher.from_master_key(MASTER)
        assert second.open("name", first.seal("name", "张三")) == "张三"
        assert first.blind_index("name", "张三") == second.blind_index("name", "张三")

    def test_another_master_key_gives_other_keys(self) -> None:
        first = PiiCipher.from_master_key(MASTER)
        other = PiiCipher.from_master_key(os.urandom(32))
        assert first.blind_index("name", "张三") != other.blind_index("name", "张三")
        with pytest.raises(PiiError):
            other.open("name", first.seal("name", "张三"))

    def test_a_short_master_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            PiiCipher.from_master_key(b"k" * 31)


class TestBlindIndex:
    def test_is_a_hex_sha256_mac(self, cipher: PiiCipher) -> None:
        index = cipher.blind_index("id_number", "11010519491231002X")
        assert len(index) == 64
        assert set(index) <= set("0123456789abcdef")

    def test_equal_values_give_equal_indexes(self, cipher: PiiCipher) -> None:
        assert cipher.blind_index("phone", "13800138000") == cipher.blind_index(
            "phone", "13800138000"
        )

    def test_different_values_give_different_indexes(self, cipher: PiiCipher) -> None:
        assert cipher.blind_index("phone", "13800138000") != cipher.blind_index(
            "phone", "13800138001"
        )

    @pytest.mark.parametrize(
        "typed",
        ["11010519491231002x", " 11010519491231002X ", "１１０１０５１９４９１２３１００２Ｘ"],
    )
    def test_document_numbers_are_normalised(self, cipher: PiiCipher, typed: str) -> None:
        assert cipher.blind_index("id_number", typed) == cipher.blind_index(
            "id_number", "11010519491231002X"
        )

    def test_latin_names_match_whatever_the_case_and_spacing(self, cipher: PiiCipher) -> None:
        assert cipher.blind_index("name", "john  smith") == cipher.blind_index("name", "JOHN SMITH")

    def test_the_same_value_in_two_fields_has_unrelated_indexes(self, cipher: PiiCipher) -> None:
        assert cipher.blind_index("name", "13800138000") != cipher.blind_index(
            "phone", "13800138000"
        )

    def test_field_and_value_cannot_be_shifted_into_each_other(self, cipher: PiiCipher) -> None:
        assert cipher.blind_index("ab", "C") != cipher.blind_index("a", "BC")

    def test_depends_on_the_index_key_only(self, cipher: PiiCipher) -> None:
        other_index_key = PiiCipher(ENCRYPTION_KEY, b"j" * 32)
        other_encryption_key = PiiCipher(b"E" * 32, INDEX_KEY)
        assert other_index_key.blind_index("name", "张三") != cipher.blind_index("name", "张三")
        assert other_encryption_key.blind_index("name", "张三") == cipher.blind_index(
            "name", "张三"
        )


class TestMaskName:
    @pytest.mark.parametrize(
        ("name", "masked"),
        [
            ("张三", "张*"),
            ("张小三", "张*三"),
            ("欧阳小明", "欧**明"),
            ("买买提·艾力", "买**·*力"),
            ("王", "*"),
            ("JOHN SMITH", "J*** S****"),
            ("Mary-Jane O'Neil", "M***-J*** O'N***"),
            ("A B", "A B"),
            ("  李四  ", "李*"),
            ("", ""),
        ],
    )
    def test_masks(self, name: str, masked: str) -> None:
        assert mask_name(name) == masked

    @given(name=unicode_text)
    def test_never_raises_and_keeps_the_length_of_the_trimmed_name(self, name: str) -> None:
        assert len(mask_name(name)) == len(name.strip())


class TestMaskDocumentNumber:
    @pytest.mark.parametrize(
        ("number", "masked"),
        [
            ("110105194912311234", "110***********1234"),
            ("USA110085061501", "USA********1501"),
            ("12345678", "123*5678"),
            ("1234567", "*******"),
            ("", ""),
        ],
    )
    def test_keeps_the_first_three_and_last_four(self, number: str, masked: str) -> None:
        assert mask_document_number(number) == masked
