from app.store.base import (
    ScanClaim,
    ScanClaimResult,
    Store,
    StoreError,
    StoreUnavailable,
    StreamEntry,
    Subscription,
)

__all__ = [
    "ScanClaim",
    "ScanClaimResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StreamEntry",
    "Subscription",
]
