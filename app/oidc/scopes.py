"""Scopes and the claims each one releases (minimal claims: nothing beyond what a scope names).

`openid` releases only the (pairwise) subject; every other scope is optional on the consent
page. `id_document` is given only to clients registered with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScopeInfo:
    claims: tuple[str, ...]
    label_zh: str
    label_en: str


SCOPES: dict[str, ScopeInfo] = {
    "openid": ScopeInfo(
        (), "识别您的身份（匿名标识）", "Identify you (an app-specific identifier)"
    ),
    "profile": ScopeInfo(("name",), "姓名", "Your name"),
    "ssc_card": ScopeInfo(
        ("card_status", "card_number_masked", "issuing_region"),
        "社保卡状态、脱敏卡号、发卡地区",
        "Card status, masked card number, issuing region",
    ),
    "id_document": ScopeInfo(
        ("document_type", "document_number"),
        "证件类型和证件号码",
        "Identity document type and number",
    ),
    "phone": ScopeInfo(("phone_number",), "手机号码", "Your mobile phone number"),
    "entitlements": ScopeInfo(("entitlements",), "待遇资格", "Your entitlements"),
}
SCOPE_ORDER = tuple(SCOPES)
REQUIRED_SCOPE = "openid"
OFFLINE_ACCESS = "offline_access"
"""Accepted and ignored: every grant here gets a refresh token."""

CLAIMS_SUPPORTED = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    *(claim for info in SCOPES.values() for claim in info.claims),
)


def parse_scope(text: str | None) -> list[str]:
    """Scope tokens in the order of `SCOPES`, duplicates and `offline_access` dropped;
    unknown tokens are kept (for the caller to refuse)."""
    tokens = [] if not text else text.split()
    known = [scope for scope in SCOPE_ORDER if scope in tokens]
    unknown = sorted({t for t in tokens if t not in SCOPES and t != OFFLINE_ACCESS})
    return known + unknown


def ordered(scopes: set[str] | list[str]) -> list[str]:
    return [scope for scope in SCOPE_ORDER if scope in scopes]


def claims_of(scopes: list[str]) -> list[str]:
    return [claim for scope in ordered(scopes) for claim in SCOPES[scope].claims]
