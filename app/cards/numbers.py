"""Card numbers and generated social security numbers.

Card number (卡号): the issuing province (first two characters of the region code), nine random
digits and one Luhn check digit, e.g. `36` `482913075` `4` -> `364829130754` (12 characters).
The serial is random rather than sequential so card numbers cannot be enumerated; letters of a
region code take their IBAN values (A=10 ... Z=35) in the check-digit computation, so a typing
error in any single character is caught.

Social security number (社会保障号码): for a mainland resident it is the resident ID number.
For other documents this module generates an 18-character number of the same shape
(17 digits and a GB 11643 MOD 11-2 check character) whose first digit is 0: no resident ID,
residence permit or permanent residence number starts with 0, so a generated number can never
equal a real document number.
"""

from __future__ import annotations

import secrets
import unicodedata

from app.cards.documents import mod11_2_check_character

CARD_SERIAL_DIGITS = 9
GENERATED_SSN_PREFIX = "0"


def normalise_card_number(number: str) -> str:
    """A card number as typed, in the form it is stored: NFKC (full-width digits from IMEs
    become ASCII), no whitespace, upper case."""
    return "".join(unicodedata.normalize("NFKC", number).split()).upper()


def _digit_values(text: str) -> str:
    """Digits stay, letters A-Z become 10-35 (as in IBAN check digits)."""
    return "".join(char if char.isdigit() else str(ord(char) - ord("A") + 10) for char in text)


def luhn_check_digit(body: str) -> str:
    """The Luhn (ISO/IEC 7812) check digit of `body` (digits and upper-case letters)."""
    total = 0
    for position, char in enumerate(reversed(_digit_values(body))):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid_card_number(number: str) -> bool:
    """True when `number` has the shape of a card number and its check digit matches."""
    if len(number) != 2 + CARD_SERIAL_DIGITS + 1 or not number.isascii():
        return False
    prefix, serial, check = number[:2], number[2:-1], number[-1]
    if not (prefix.isalnum() and prefix == prefix.upper() and serial.isdigit()):
        return False
    return luhn_check_digit(prefix + serial) == check


def new_card_number(region_code: str) -> str:
    """A fresh random card number of the issuing region (uniqueness is the database's job)."""
    body = region_code[:2] + f"{secrets.randbelow(10**CARD_SERIAL_DIGITS):0{CARD_SERIAL_DIGITS}d}"
    return body + luhn_check_digit(body)


def new_social_security_number() -> str:
    """A generated SSN for holders without a resident ID (see the module docstring)."""
    body = GENERATED_SSN_PREFIX + f"{secrets.randbelow(10**16):016d}"
    return body + mod11_2_check_character(body)
