"""Rate limits per client address, card, holder: counted in the store (see `service`)."""

from app.ratelimits.errors import RateLimited
from app.ratelimits.service import (
    RateLimit,
    RateLimitRule,
    address_subject,
    card_subject,
    enforce,
)

__all__ = [
    "RateLimit",
    "RateLimitRule",
    "RateLimited",
    "address_subject",
    "card_subject",
    "enforce",
]
