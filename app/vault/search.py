"""Search tokens of the holder's full-text search over titles and public summary fields.

Chinese has no spaces between words, and neither PostgreSQL's `simple` configuration nor a
LIKE knows where words end; so the text is stored as tokens: Latin words and numbers as they
are (case-folded), runs of Chinese characters as every single character and every pair of
neighbours. A query of one Chinese character matches the single characters, a longer one
matches when all its pairs are there ("劳动合同" -> 劳动, 动合, 合同). PostgreSQL matches the
tokens with full-text search (`to_tsvector('simple', search_text) @@ plainto_tsquery(...)`,
GIN-indexed); SQLite, the embedded default, with one LIKE per token.

Sealed (personal) fields are not in the tokens: they cannot be searched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
MAX_QUERY_CHARS = 100
MAX_QUERY_TOKENS = 16


def _runs(text: str) -> list[str]:
    return _RUNS.findall(unicodedata.normalize("NFKC", text).casefold())


def search_text(texts: Iterable[str]) -> str:
    """The stored token string of a document's searchable texts."""
    tokens: set[str] = set()
    for text in texts:
        for run in _runs(text):
            if _IS_CJK.match(run):
                tokens.update(run)
                tokens.update(run[i : i + 2] for i in range(len(run) - 1))
            else:
                tokens.add(run)
    return " ".join(sorted(tokens))


def query_tokens(query: str) -> list[str]:
    """The tokens all of which a matching document has (empty: match nothing)."""
    tokens: list[str] = []
    for run in _runs(query[:MAX_QUERY_CHARS]):
        if _IS_CJK.match(run):
            pairs = [run[i : i + 2] for i in range(len(run) - 1)] or [run]
            tokens.extend(pairs)
        else:
            tokens.append(run)
    return list(dict.fromkeys(tokens))[:MAX_QUERY_TOKENS]
