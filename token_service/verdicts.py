"""Stable verdict codes of a scan; their string values are the API."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """Outcome of presenting a token. The codec yields the first eight; the service the rest."""

    VALID = "valid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    """Signed (or claiming to be signed) by a key its issuer revoked in an emergency (a leaked
    key): never admitted; the phone fetches a token signed by the new key."""
    ISSUER_UNTRUSTED = "issuer_untrusted"
    MALFORMED = "malformed"
    REPLAYED = "replayed"
    CARD_LOST = "card_lost"
    CARD_CANCELLED = "card_cancelled"
    CARD_SUSPENDED = "card_suspended"
    SCENE_NOT_ALLOWED = "scene_not_allowed"
    REISSUE_REQUIRED = "reissue_required"
    """A genuine token valid from before the verification store lost its data (its replay
    record may be gone with it): never admitted online; the phone fetches a new QR."""
