"""Search tokens and content sniffing: the small pure pieces of the vault."""

from __future__ import annotations

import pytest

from app.vault.content import JSON, OFD, PDF, sniff
from app.vault.search import query_tokens, search_text


class TestSearchTokens:
    def test_chinese_runs_become_characters_and_pairs(self) -> None:
        stored = set(search_text(["电子劳动合同"]).split())
        assert {"电", "劳", "劳动", "动合", "合同"} <= stored
        assert set(query_tokens("劳动合同")) <= stored
        assert query_tokens("劳") == ["劳"]

    def test_latin_words_are_case_folded_and_full_width_normalised(self) -> None:
        assert search_text(["Electrician LEVEL 3"]).split() == ["3", "electrician", "level"]
        assert query_tokens("ＡＣＭＥ") == ["acme"]

    def test_punctuation_and_sql_wildcards_are_not_tokens(self) -> None:
        assert query_tokens("%_' OR 1=1 --") == ["_", "or", "1"]
        assert query_tokens("!!!") == []


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7\n...", PDF),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 16 + b"\x07\x00\x00\x00OFD.xml", OFD),
        (b'\xef\xbb\xbf  {"a": 1}', JSON),
        (b"\n[1, 2]", JSON),
        (b"PK\x03\x04 a plain zip", None),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"", None),
        (b"hello", None),
    ],
)
def test_the_kind_is_read_from_the_first_bytes(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind
