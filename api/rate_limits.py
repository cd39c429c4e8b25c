"""The rate limits of `app.ratelimits` as route dependencies: `dependencies=LOGIN_LIMITS`
and so on, with `RATE_LIMITED` documenting the 429 in each route's responses."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from api.deps import RuntimeDep
from api.schemas.holder import LoginRequest, PinResetRequest
from app.ratelimits import RateLimitRule, address_subject, card_subject, enforce
from app.runtime import Runtime

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "too-many-requests: the rate limit of this route is spent",
        "headers": {
            "Retry-After": {
                "description": "Seconds until the limit's window ends",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {"application/problem+json": {}},
    }
}


async def _count(runtime: Runtime, rule: RateLimitRule, subject: str) -> None:
    await enforce(runtime.store, runtime.pii, runtime.settings, rule, subject)


def _address(request: Request) -> str:
    """The client's address as the server saw it (behind a trusted proxy, the address the
    proxy forwarded: `ssc serve` believes X-Forwarded-For only from SSC_TRUSTED_PROXIES)."""
    client = request.client
    return address_subject(client.host if client else None)


def _per_address(rule: RateLimitRule) -> DependsParam:
    async def per_address(request: Request, runtime: RuntimeDep) -> None:
        await _count(runtime, rule, _address(request))

    per_address.__name__ = f"rate_limit_{rule.value}"
    dependency: DependsParam = Depends(per_address)
    return dependency


async def login_per_card(body: LoginRequest, runtime: RuntimeDep) -> None:
    """Keyed on the identity as presented, looked up nowhere: unknown and real cards alike."""
    subject = card_subject(body.card_number, body.document_type, body.document_number)
    await _count(runtime, RateLimitRule.login_per_card, subject)


async def pin_reset_per_card(body: PinResetRequest, runtime: RuntimeDep) -> None:
    """A PIN reset spends the login budget of its card number: the same subject, the same rule."""
    subject = card_subject(body.card_number, None, None)
    await _count(runtime, RateLimitRule.login_per_card, subject)


LOGIN_LIMITS = [_per_address(RateLimitRule.login_per_address), Depends(login_per_card)]
PIN_RESET_LIMITS = [_per_address(RateLimitRule.login_per_address), Depends(pin_reset_per_card)]
TOKEN_LIMITS = [_per_address(RateLimitRule.token_per_address)]
APPLICATION_LIMITS = [_per_address(RateLimitRule.applications_per_address)]
COMPLAINT_LIMITS = [_per_address(RateLimitRule.complaints_per_address)]
COMPLAINT_LOOKUP_LIMITS = [_per_address(RateLimitRule.complaint_lookups_per_address)]
OIDC_LOGIN_LIMITS = [_per_address(RateLimitRule.login_per_address)]
# The QR routes count `qr_per_holder` in the same store round trip that reads the holder's
# state (`app.holders.qr_state.qr_card`), not through a dependency.
