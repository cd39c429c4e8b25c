"""Identity documents a card can be issued against, and validation of their numbers.

Validation proves that a number is well formed (structure, check character, a real birth
date), not that it was ever issued: that needs the issuing authority's verification service.

Formats:

- `resident_id`, 居民身份证 (GB 11643-1999): 6-digit address code (first two digits: province),
  8-digit birth date YYYYMMDD, 3-digit sequence (the last is odd for men, even for women) and an
  ISO 7064 MOD 11-2 check character (0-9 or X). First-generation 15-digit numbers stopped being
  valid in 2013 and are refused.
- `hk_macau_tw_residence_permit`, 港澳台居民居住证 (since 2018): the same structure with the
  address code 810000 (Hong Kong), 820000 (Macau) or 830000 (Taiwan).
- `foreigner_permanent_residence`, 外国人永久居留身份证, two number formats in circulation:
  * 18 characters, the edition issued since 1 December 2023: "9" (marks a foreigner), 2-digit
    province code of the accepting authority, 3-digit ISO 3166-1 numeric nationality, birth
    date YYYYMMDD, 3-digit sequence (last digit odd for men, even for women), MOD 11-2 check
    character as in the resident ID.
  * 15 characters, the 2004 and 2017 editions: 3-letter ISO 3166-1 alpha-3 nationality,
    4-digit code of the accepting authority (province + city), birth date YYMMDD, then 2 digits.
    The century of the birth date is not written, so no birth date is returned, and the last
    digits' meaning (sequence, check digit) is not published in a form we could confirm, so
    they are not checked: accepting a malformed old number is safer than refusing a real one.
    (The brief called the 18-character format "2017"; the 2017 edition still used 15.)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from app.china_time import today_in_china
from app.errors import InvalidRequest


class DocumentType(StrEnum):
    resident_id = "resident_id"
    hk_macau_tw_residence_permit = "hk_macau_tw_residence_permit"
    foreigner_permanent_residence = "foreigner_permanent_residence"


class Sex(StrEnum):
    male = "male"
    female = "female"


class DocumentProblem(StrEnum):
    """Which check a document number failed (`InvalidDocument.reason`)."""

    unknown_type = "unknown_type"
    wrong_length = "wrong_length"
    bad_characters = "bad_characters"
    bad_region = "bad_region"
    wrong_prefix = "wrong_prefix"
    bad_birth_date = "bad_birth_date"
    check_character = "check_character"


class InvalidDocument(InvalidRequest):
    """A document number that cannot be right; the message says precisely why."""

    code = "invalid-document"
    title = "Invalid identity document number"

    def __init__(self, message: str, *, reason: DocumentProblem) -> None:
        super().__init__(message, reason=str(reason))
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ValidatedDocument:
    """A well-formed document number in its normal form (ASCII, upper-case, no spaces)."""

    doc_type: DocumentType
    number: str
    birth_date: date | None
    sex: Sex | None


MAX_INPUT_CHARS = 64
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
PROVINCE_CODES = frozenset(
    [*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66)]
)
RESIDENCE_PERMIT_PREFIXES = {"810000": "Hong Kong", "820000": "Macau", "830000": "Taiwan"}
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
_EIGHTEEN = re.compile(r"[0-9]{17}[0-9X]")
_OLD_FOREIGNER = re.compile(r"[A-Z]{3}[0-9]{12}")


def mod11_2_check_character(body: str) -> str:
    """The ISO 7064 MOD 11-2 check character of 17 digits, as in GB 11643-1999."""
    total = sum(int(digit) * weight for digit, weight in zip(body, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def validate_document(
    doc_type: DocumentType | str, number: str, *, today: date | None = None
) -> ValidatedDocument:
    """Normalises and checks a document number; `today` (China time by default) bounds birth
    dates.

    :raises InvalidDocument: for any input that is not a well-formed number of that type.
    """
    try:
        kind = DocumentType(doc_type)
    except ValueError:
        raise InvalidDocument(
            f"unknown document type {str(doc_type)[:40]!r}", reason=DocumentProblem.unknown_type
        ) from None
    if not isinstance(number, str):
        raise InvalidDocument(
            "a document number must be text", reason=DocumentProblem.bad_characters
        )
    if len(number) > MAX_INPUT_CHARS:
        raise InvalidDocument(
            "a document number is at most 18 characters", reason=DocumentProblem.wrong_length
        )
    normal = "".join(unicodedata.normalize("NFKC", number).split()).upper()
    if today is None:
        today = today_in_china()
    elif isinstance(today, datetime):
        today = today.date()
    if kind is DocumentType.resident_id:
        return _resident_id(normal, today)
    if kind is DocumentType.hk_macau_tw_residence_permit:
        return _residence_permit(normal, today)
    return _foreigner_permanent_residence(normal, today)


def _resident_id(number: str, today: date) -> ValidatedDocument:
    if len(number) == 15 and number.isascii() and number.isdigit():
        raise InvalidDocument(
            "15-digit first-generation resident ID numbers are no longer valid; "
            "use the 18-character number",
            reason=DocumentProblem.wrong_length,
        )
    _require_eighteen(number, "a resident ID number")
    if int(number[:2]) not in PROVINCE_CODES:
        raise InvalidDocument(
            f"{number[:2]} is not a province code of mainland China",
            reason=DocumentProblem.bad_region,
        )
    return _checked_eighteen(DocumentType.resident_id, number, today)


def _residence_permit(number: str, today: date) -> ValidatedDocument:
    _require_eighteen(number, "a residence permit number")
    if number[:6] not in RESIDENCE_PERMIT_PREFIXES:
        raise InvalidDocument(
            "a Hong Kong, Macau or Taiwan residence permit number starts with "
            "810000, 820000 or 830000",
            reason=DocumentProblem.wrong_prefix,
        )
    return _checked_eighteen(DocumentType.hk_macau_tw_residence_permit, number, today)


def _foreigner_permanent_residence(number: str, today: date) -> ValidatedDocument:
    kind = DocumentType.foreigner_permanent_residence
    if len(number) == 15:
        if not _OLD_FOREIGNER.fullmatch(number):
            raise InvalidDocument(
                "a 15-character permanent residence number is 3 letters and 12 digits",
                reason=DocumentProblem.bad_characters,
            )
        _require_province(number[3:5])
        _require_short_birth_date(number[7:13], today)
        return ValidatedDocument(kind, number, birth_date=None, sex=None)
    _require_eighteen(
        number, "a permanent residence number", also="or 15 characters (editions before 2023)"
    )
    if number[0] != "9":
        raise InvalidDocument(
            "an 18-character permanent residence number starts with 9",
            reason=DocumentProblem.wrong_prefix,
        )
    _require_province(number[1:3])
    return _checked_eighteen(kind, number, today)


def _require_eighteen(number: str, what: str, *, also: str = "") -> None:
    if len(number) != 18:
        alternatives = f" {also}" if also else ""
        raise InvalidDocument(
            f"{what} has 18 characters{alternatives}, got {len(number)}",
            reason=DocumentProblem.wrong_length,
        )
    if not _EIGHTEEN.fullmatch(number):
        raise InvalidDocument(
            f"{what} is 17 digits followed by a digit or X",
            reason=DocumentProblem.bad_characters,
        )


def _require_province(code: str) -> None:
    if int(code) not in PROVINCE_CODES:
        raise InvalidDocument(
            f"{code} is not the province code of an accepting authority",
            reason=DocumentProblem.bad_region,
        )


def _checked_eighteen(kind: DocumentType, number: str, today: date) -> ValidatedDocument:
    """Birth date (characters 7-14), check character, and sex from the 17th digit."""
    birth_date = _birth_date(number[6:14], today)
    expected = mod11_2_check_character(number[:17])
    if number[17] != expected:
        raise InvalidDocument(
            "the check character does not match: the number has a typing error",
            reason=DocumentProblem.check_character,
        )
    sex = Sex.male if int(number[16]) % 2 else Sex.female
    return ValidatedDocument(kind, number, birth_date=birth_date, sex=sex)


def _birth_date(yyyymmdd: str, today: date) -> date:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise InvalidDocument(
            f"{yyyymmdd} is not a calendar date", reason=DocumentProblem.bad_birth_date
        ) from None
    if born > today:
        raise InvalidDocument(
            f"birth date {born.isoformat()} is in the future", reason=DocumentProblem.bad_birth_date
        )
    if born < EARLIEST_BIRTH_DATE:
        raise InvalidDocument(
            f"birth date {born.isoformat()} is before 1900", reason=DocumentProblem.bad_birth_date
        )
    return born


def _require_short_birth_date(yymmdd: str, today: date) -> None:
    """YYMMDD must be a past date in the 1900s or the 2000s (which one cannot be told)."""
    for century in (2000, 1900):
        try:
            born = date(century + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
        except ValueError:
            continue
        if born <= today:
            return
    raise InvalidDocument(
        f"{yymmdd} is not a past birth date (YYMMDD)", reason=DocumentProblem.bad_birth_date
    )
