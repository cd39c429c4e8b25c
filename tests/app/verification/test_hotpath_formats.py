"""The verify path's cheaper formatting must write exactly what the plain library calls wrote:
scanners, the audit consumer and pseudonym holders compare these strings."""

import base64
import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from app.audit.log import audit_fields
from app.verification.service import PSEUDONYM_CHARS, iso_millis, pairwise_pseudonym

KEY = b"k" * 32


def isoformat(now: float) -> str:
    return (
        datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class TestCheckedAt:
    @pytest.mark.parametrize(
        "now",
        [
            0.0,
            1764115200.0,
            1764115200.0004994,
            1764115200.0005,
            1764115200.9994999,
            1764115200.9995,
            1764115200.9999996,  # rounds up into the next second
            1767225599.999,
        ],
    )
    def test_matches_datetime_isoformat(self, now: float) -> None:
        assert iso_millis(now) == isoformat(now)

    def test_follows_the_clock_across_seconds(self) -> None:
        times = [1764115200.25, 1764115201.5, 1764115200.75, 1764115261.125]
        assert [iso_millis(now) for now in times] == [isoformat(now) for now in times]


class TestPseudonymFormula:
    def test_is_hmac_sha256_of_organisation_and_card_base64url(self) -> None:
        org, card = uuid.uuid4(), uuid.uuid4()
        digest = hmac.new(KEY, org.bytes + card.bytes, hashlib.sha256).digest()
        expected = base64.urlsafe_b64encode(digest)[:PSEUDONYM_CHARS].decode()
        assert pairwise_pseudonym(KEY, org, card) == expected

    def test_each_key_keeps_its_own_pseudonyms(self) -> None:
        org, card = uuid.uuid4(), uuid.uuid4()
        first = pairwise_pseudonym(KEY, org, card)
        other = pairwise_pseudonym(b"o" * 32, org, card)
        assert pairwise_pseudonym(KEY, org, card) == first != other


class TestAuditEventIds:
    def test_are_distinct_and_readable_by_the_consumer(self) -> None:
        ids = [audit_fields("verify", "scn_1")["eid"] for _ in range(1000)]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(r"[0-9a-f]{32}", eid) for eid in ids)

    def test_fields_are_unchanged(self) -> None:
        fields = audit_fields("verify", "scn_1", "", {"kid": "k", "scene": None})
        assert set(fields) == {"eid", "at", "action", "actor", "subject", "data"}
        assert fields["data"] == '{"kid":"k","scene":null}'
        assert re.fullmatch(r"\d+\.\d{6}", fields["at"])

    def test_data_may_be_any_mapping(self) -> None:
        fields = audit_fields("verify", "scn_1", "", MappingProxyType({"org": "o"}))
        assert fields["data"] == '{"org":"o"}'
