from app.store.base import (
    EPOCH_KEY,
    EpochChanged,
    ScanClaim,
    ScanClaimResult,
    Store,
    StoreError,
    StoreUnavailable,
    StreamEntry,
    Subscription,
)

__all__ = [
    "EPOCH_KEY",
    "EpochChanged",
    "ScanClaim",
    "ScanClaimResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StreamEntry",
    "Subscription",
]
