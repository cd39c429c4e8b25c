"""The page language a browser asks for: Chinese, or English where the browser prefers it.

The holder pages (/h5/) and the login-by-card pages (/oidc/) both answer in it.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["zh", "en"]


def language_of(accept_language: str | None) -> Language:
    """Chinese unless the browser ranks English above every Chinese variant."""
    best: tuple[float, Language] | None = None
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language: Language | None = (
            "zh" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        )
        if language is None or quality <= 0:
            continue
        ranked = (quality - position * 1e-6, language)
        if best is None or ranked[0] > best[0]:
            best = ranked
    return "zh" if best is None else best[1]
