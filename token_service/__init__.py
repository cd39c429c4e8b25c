"""Signed rotating QR tokens (`SSC1`) for the electronic social security card.

A pure library: key rings, the token codec, issuing and verifying, status lists, trust
lists and the offline verifier. It imports nothing from the service, so scanner vendors can
use it on its own.
"""

from token_service._cose import DocumentError
from token_service.bundle import (
    BundleError,
    SignedBundle,
    VerifierBundle,
    build_bundle,
    load_bundle,
)
from token_service.codec import (
    BUDGET_CHARS,
    MAX_TOKEN_CHARS,
    PREFIX,
    Claims,
    DecodedToken,
    decode_token,
)
from token_service.errors import (
    KeyRingError,
    MalformedTokenError,
    TokenBudgetError,
    TokenServiceError,
)
from token_service.issue import IssuedToken, TokenIssuer
from token_service.key_set import KeySetError, PublicKeySet
from token_service.keys import (
    KeyRing,
    KeyState,
    PublishedKey,
    RevocationReason,
    SigningKey,
    key_id,
)
from token_service.offline import (
    OfflineResult,
    OfflineVerifier,
    ReplayCache,
    ReplayCacheError,
)
from token_service.status_list import (
    Status,
    StatusList,
    StatusListError,
    StatusListToken,
    sign_status_list_cwt,
    sign_status_list_jwt,
    verify_status_list_cwt,
    verify_status_list_jwt,
)
from token_service.trust_list import (
    TrustedIssuer,
    TrustedKeys,
    TrustList,
    TrustListError,
    sign_trust_list_cwt,
    sign_trust_list_jwt,
    verify_trust_list_cwt,
    verify_trust_list_jwt,
)
from token_service.verdicts import Verdict
from token_service.verify import (
    KeyDirectory,
    KeyResolver,
    TokenCheck,
    TokenVerifier,
    VerificationKey,
)

__all__ = [
    "BUDGET_CHARS",
    "MAX_TOKEN_CHARS",
    "PREFIX",
    "BundleError",
    "Claims",
    "DecodedToken",
    "DocumentError",
    "IssuedToken",
    "KeyDirectory",
    "KeyResolver",
    "KeyRing",
    "KeyRingError",
    "KeySetError",
    "KeyState",
    "MalformedTokenError",
    "OfflineResult",
    "OfflineVerifier",
    "PublicKeySet",
    "PublishedKey",
    "ReplayCache",
    "ReplayCacheError",
    "RevocationReason",
    "SignedBundle",
    "SigningKey",
    "Status",
    "StatusList",
    "StatusListError",
    "StatusListToken",
    "TokenBudgetError",
    "TokenCheck",
    "TokenIssuer",
    "TokenServiceError",
    "TokenVerifier",
    "TrustList",
    "TrustListError",
    "TrustedIssuer",
    "TrustedKeys",
    "Verdict",
    "VerificationKey",
    "VerifierBundle",
    "build_bundle",
    "decode_token",
    "key_id",
    "load_bundle",
    "sign_status_list_cwt",
    "sign_status_list_jwt",
    "sign_trust_list_cwt",
    "sign_trust_list_jwt",
    "verify_status_list_cwt",
    "verify_status_list_jwt",
    "verify_trust_list_cwt",
    "verify_trust_list_jwt",
]
