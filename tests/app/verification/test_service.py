"""Pure rules of the verify path (its behaviour end to end is in tests/api/test_verify.py)."""

import re
import uuid

from api.schemas.verify import VerifyRequest
from app.catalog.scenes import SCENES
from app.verification.service import PSEUDONYM_CHARS, ScanResult, pairwise_pseudonym
from token_service import Verdict

KEY = b"p" * 32


class TestPairwisePseudonym:
    def test_is_stable_for_one_organisation_and_card(self) -> None:
        org, card = uuid.uuid4(), uuid.uuid4()
        assert pairwise_pseudonym(KEY, org, card) == pairwise_pseudonym(KEY, org, card)
        assert len(pairwise_pseudonym(KEY, org, card)) == PSEUDONYM_CHARS

    def test_differs_across_organisations_cards_and_keys(self) -> None:
        org, card = uuid.uuid4(), uuid.uuid4()
        reference = pairwise_pseudonym(KEY, org, card)
        assert pairwise_pseudonym(KEY, uuid.uuid4(), card) != reference
        assert pairwise_pseudonym(KEY, org, uuid.uuid4()) != reference
        assert pairwise_pseudonym(b"q" * 32, org, card) != reference

    def test_is_url_safe(self) -> None:
        value = pairwise_pseudonym(KEY, uuid.uuid4(), uuid.uuid4())
        assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class TestScanResult:
    def test_holder_appears_only_when_given(self) -> None:
        refused = ScanResult(Verdict.REPLAYED, "2026-01-01T00:00:00.000Z", "kid", "360000", None)
        assert refused.as_dict() == {
            "verdict": "replayed",
            "checked_at": "2026-01-01T00:00:00.000Z",
            "kid": "kid",
            "iss": "360000",
            "scene": None,
        }

    def test_catalog_codes_match_the_request_pattern(self) -> None:
        pattern = VerifyRequest.model_json_schema()["properties"]["scene"]["anyOf"][0]["pattern"]
        assert all(re.fullmatch(pattern, code) for code in SCENES)
