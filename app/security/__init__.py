"""Security primitives: PII encryption and masking, PIN hashing, access tokens, opaque secrets.

Pure code: no database, no HTTP, no store. Keys come in as bytes from settings.
"""

from app.security.errors import (
    InvalidAccessToken,
    PiiError,
    SecurityError,
    TokenRejection,
    WeakPinError,
)
from app.security.opaque import (
    constant_time_equals,
    hash_opaque_secret,
    new_opaque_secret,
    opaque_secret_matches,
)
from app.security.pii import PiiCipher, mask_document_number, mask_name, normalise_for_index
from app.security.pins import (
    DEFAULT_PIN_PARAMETERS,
    Argon2Parameters,
    PinHasher,
    PinRule,
    validate_pin_format,
)
from app.security.tokens import (
    AccessClaims,
    AccessTokenCodec,
    IssuedAccessToken,
    PrincipalKind,
)

__all__ = [
    "DEFAULT_PIN_PARAMETERS",
    "AccessClaims",
    "AccessTokenCodec",
    "Argon2Parameters",
    "InvalidAccessToken",
    "IssuedAccessToken",
    "PiiCipher",
    "PiiError",
    "PinHasher",
    "PinRule",
    "PrincipalKind",
    "SecurityError",
    "TokenRejection",
    "WeakPinError",
    "constant_time_equals",
    "hash_opaque_secret",
    "mask_document_number",
    "mask_name",
    "new_opaque_secret",
    "normalise_for_index",
    "opaque_secret_matches",
    "validate_pin_format",
]
