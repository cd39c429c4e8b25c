"""Identity document numbers: what is accepted, in which normal form, and why others are not.

Valid samples are built here with ISO 7064 MOD 11-2 computed from its definition (weights
2^(i-1) mod 11), independently of the production weight table.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cards.documents import (
    DocumentProblem,
    DocumentType,
    InvalidDocument,
    Sex,
    ValidatedDocument,
    validate_document,
)

TODAY = date(2024, 6, 1)


def check_character(body: str) -> str:
    assert len(body) == 17
    total = sum(int(digit) * pow(2, 17 - i, 11) for i, digit in enumerate(body))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def with_check(body: str) -> str:
    return body + check_character(body)


def wrong_check(body: str) -> str:
    right = check_character(body)
    return body + ("0" if right != "0" else "1")


def validate(doc_type: DocumentType, number: str) -> ValidatedDocument:
    return validate_document(doc_type, number, today=TODAY)


def rejection(doc_type: DocumentType | str, number: str) -> InvalidDocument:
    with pytest.raises(InvalidDocument) as caught:
        validate_document(doc_type, number, today=TODAY)
    return caught.value


class TestResidentId:
    def test_accepts_a_constructed_number_and_reads_birth_date_and_sex(self) -> None:
        number = with_check("110101199003071" + "23")
        document = validate(DocumentType.resident_id, number)
        assert document == ValidatedDocument(
            DocumentType.resident_id, number, date(1990, 3, 7), Sex.male
        )

    def test_even_sequence_digit_is_female(self) -> None:
        document = validate(DocumentType.resident_id, with_check("44030419851224004"))
        assert document.sex is Sex.female

    def test_accepts_the_example_of_the_standard_with_check_character_x(self) -> None:
        document = validate(DocumentType.resident_id, "11010519491231002X")
        assert document.birth_date == date(1949, 12, 31)
        assert document.sex is Sex.female

    def test_lower_case_x_full_width_digits_and_spaces_are_normalised(self) -> None:
        document = validate(DocumentType.resident_id, " １１０１０５ 19491231 002x ")
        assert document.number == "11010519491231002X"

    def test_accepts_a_birth_date_of_today(self) -> None:
        number = with_check("31010120240601001")
        assert validate(DocumentType.resident_id, number).birth_date == TODAY

    def test_accepts_every_province_of_the_standard(self) -> None:
        for province in (11, 15, 21, 23, 31, 37, 41, 46, 50, 54, 61, 65):
            validate(DocumentType.resident_id, with_check(f"{province}0101199001010011"[:17]))

    def test_refuses_a_wrong_check_character(self) -> None:
        error = rejection(DocumentType.resident_id, wrong_check("11010119900307123"))
        assert error.reason is DocumentProblem.check_character

    @pytest.mark.parametrize(
        ("birth", "why"),
        [
            ("19990230", "not a calendar date"),
            ("19991301", "not a calendar date"),
            ("19990001", "not a calendar date"),
            ("20240602", "in the future"),
            ("18991231", "before 1900"),
        ],
    )
    def test_refuses_impossible_birth_dates(self, birth: str, why: str) -> None:
        error = rejection(DocumentType.resident_id, with_check(f"110101{birth}123"))
        assert error.reason is DocumentProblem.bad_birth_date
        assert why in str(error)

    def test_refuses_the_1880_example_of_the_standard_as_before_1900(self) -> None:
        error = rejection(DocumentType.resident_id, "440524188001010014")
        assert error.reason is DocumentProblem.bad_birth_date

    def test_today_may_be_given_as_a_datetime(self) -> None:
        number = with_check("31010120240601001")
        moment = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
        document = validate_document(DocumentType.resident_id, number, today=moment)
        assert document.birth_date == TODAY

    def test_refuses_a_date_in_the_future_with_the_default_clock(self) -> None:
        with pytest.raises(InvalidDocument, match="future"):
            validate_document(DocumentType.resident_id, with_check("11010120990101123"))

    @pytest.mark.parametrize("province", ["00", "10", "16", "71", "81", "82", "91", "99"])
    def test_refuses_codes_outside_the_mainland_provinces(self, province: str) -> None:
        error = rejection(DocumentType.resident_id, with_check(f"{province}010119900307123"))
        assert error.reason is DocumentProblem.bad_region

    @pytest.mark.parametrize("number", ["", "1101011990030712", "1101011990030712345"])
    def test_refuses_wrong_lengths(self, number: str) -> None:
        assert rejection(DocumentType.resident_id, number).reason is DocumentProblem.wrong_length

    def test_refuses_first_generation_15_digit_numbers_saying_so(self) -> None:
        error = rejection(DocumentType.resident_id, "110101900307123")
        assert error.reason is DocumentProblem.wrong_length
        assert "first-generation" in str(error)

    @pytest.mark.parametrize(
        "number",
        ["11010119900307A23X", "X10101199003071234", "1101011990030712XX", "11010119900307123Y"],
    )
    def test_refuses_letters_other_than_a_final_x(self, number: str) -> None:
        assert rejection(DocumentType.resident_id, number).reason is DocumentProblem.bad_characters

    def test_refuses_non_ascii_digits(self) -> None:
        arabic_indic = "١١٠١٠١١٩٩٠٠٣٠٧١٢٣٤"
        assert len(arabic_indic) == 18
        assert rejection(DocumentType.resident_id, arabic_indic).reason is (
            DocumentProblem.bad_characters
        )


class TestResidencePermit:
    @pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
    def test_accepts_hong_kong_macau_and_taiwan(self, prefix: str) -> None:
        number = with_check(f"{prefix}19920130002")
        document = validate(DocumentType.hk_macau_tw_residence_permit, number)
        assert document.birth_date == date(1992, 1, 30)
        assert document.sex is Sex.female

    @pytest.mark.parametrize("prefix", ["110101", "810001", "840000", "800000"])
    def test_refuses_other_prefixes(self, prefix: str) -> None:
        error = rejection(
            DocumentType.hk_macau_tw_residence_permit, with_check(f"{prefix}19920130002")
        )
        assert error.reason is DocumentProblem.wrong_prefix

    def test_refuses_a_wrong_check_character(self) -> None:
        error = rejection(
            DocumentType.hk_macau_tw_residence_permit, wrong_check("81000019920130002")
        )
        assert error.reason is DocumentProblem.check_character

    def test_refuses_an_impossible_birth_date(self) -> None:
        error = rejection(
            DocumentType.hk_macau_tw_residence_permit, with_check("82000019990230002")
        )
        assert error.reason is DocumentProblem.bad_birth_date

    def test_a_mainland_number_is_not_a_residence_permit_and_vice_versa(self) -> None:
        mainland = with_check("11010119900307123")
        permit = with_check("81000019900307123")
        assert rejection(DocumentType.hk_macau_tw_residence_permit, mainland).reason is (
            DocumentProblem.wrong_prefix
        )
        assert rejection(DocumentType.resident_id, permit).reason is DocumentProblem.bad_region


class TestForeignerPermanentResidence:
    def test_accepts_the_18_character_edition(self) -> None:
        number = with_check("9" + "31" + "840" + "19850615" + "003")
        document = validate(DocumentType.foreigner_permanent_residence, number)
        assert document == ValidatedDocument(
            DocumentType.foreigner_permanent_residence, number, date(1985, 6, 15), Sex.male
        )

    def test_refuses_18_characters_not_starting_with_9(self) -> None:
        error = rejection(
            DocumentType.foreigner_permanent_residence, with_check("11010119900307123")
        )
        assert error.reason is DocumentProblem.wrong_prefix

    def test_refuses_an_accepting_authority_outside_the_provinces(self) -> None:
        error = rejection(
            DocumentType.foreigner_permanent_residence, with_check("99984019850615003")
        )
        assert error.reason is DocumentProblem.bad_region

    def test_refuses_a_wrong_check_character(self) -> None:
        error = rejection(
            DocumentType.foreigner_permanent_residence, wrong_check("93184019850615003")
        )
        assert error.reason is DocumentProblem.check_character

    def test_refuses_an_impossible_birth_date_in_the_18_character_edition(self) -> None:
        error = rejection(
            DocumentType.foreigner_permanent_residence, with_check("93184019850230003")
        )
        assert error.reason is DocumentProblem.bad_birth_date

    def test_accepts_the_15_character_edition_without_claiming_a_birth_date(self) -> None:
        document = validate(DocumentType.foreigner_permanent_residence, "usa110085061501")
        assert document == ValidatedDocument(
            DocumentType.foreigner_permanent_residence, "USA110085061501", None, None
        )

    def test_a_15_character_birth_date_may_fall_in_either_century(self) -> None:
        validate(DocumentType.foreigner_permanent_residence, "GBR310000022901")  # 2000-02-29
        validate(DocumentType.foreigner_permanent_residence, "GBR310030010101")  # 1930-01-01

    @pytest.mark.parametrize(
        ("number", "reason"),
        [
            ("US1110085061501", DocumentProblem.bad_characters),
            ("USA11008506150A", DocumentProblem.bad_characters),
            ("USA990085061501", DocumentProblem.bad_region),
            ("USA110085023001", DocumentProblem.bad_birth_date),
            ("USA110099023101", DocumentProblem.bad_birth_date),
            ("USA11008506150", DocumentProblem.wrong_length),
        ],
    )
    def test_refuses_malformed_15_character_numbers(
        self, number: str, reason: DocumentProblem
    ) -> None:
        assert rejection(DocumentType.foreigner_permanent_residence, number).reason is reason


class TestInput:
    def test_document_type_may_be_given_by_its_value(self) -> None:
        document = validate_document("resident_id", "11010519491231002X", today=TODAY)
        assert document.doc_type is DocumentType.resident_id

    def test_refuses_an_unknown_document_type(self) -> None:
        assert rejection("passport", "E12345678").reason is DocumentProblem.unknown_type

    def test_refuses_huge_input_before_normalising_it(self) -> None:
        error = rejection(DocumentType.resident_id, "1" * 100_000)
        assert error.reason is DocumentProblem.wrong_length

    def test_the_error_is_a_422_problem_with_a_stable_code_and_reason(self) -> None:
        error = rejection(DocumentType.resident_id, "123")
        assert (error.status, error.code) == (422, "invalid-document")
        assert error.extensions == {"reason": "wrong_length"}


dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)


class TestProperties:
    @given(
        province=st.sampled_from([11, 12, 13, 14, 15, 21, 22, 23, 31, 44, 50, 54, 61, 65]),
        rest_of_address=st.integers(0, 9999),
        born=dates,
        sequence=st.integers(0, 999),
    )
    def test_every_well_formed_resident_id_is_accepted(
        self, province: int, rest_of_address: int, born: date, sequence: int
    ) -> None:
        number = with_check(f"{province}{rest_of_address:04d}{born:%Y%m%d}{sequence:03d}")
        document = validate(DocumentType.resident_id, number)
        assert (document.number, document.birth_date) == (number, born)
        assert document.sex is (Sex.male if sequence % 2 else Sex.female)

    @given(doc_type=st.sampled_from(DocumentType), number=st.text(max_size=40))
    def test_any_text_gives_a_document_or_invalid_document(
        self, doc_type: DocumentType, number: str
    ) -> None:
        try:
            document = validate(doc_type, number)
        except InvalidDocument:
            return
        assert document.doc_type is doc_type

    @given(
        doc_type=st.sampled_from(DocumentType),
        number=st.text(alphabet="0123456789Xx9ABU ", min_size=13, max_size=20),
    )
    def test_near_miss_numbers_give_a_document_or_invalid_document(
        self, doc_type: DocumentType, number: str
    ) -> None:
        try:
            document = validate(doc_type, number)
        except InvalidDocument:
            return
        assert document.number.isascii()
        assert len(document.number) in {15, 18}
