"""QR images of `SSC1` tokens: `render` to PNG/SVG bytes, `qr_version` to check the budget."""

from qr.render import (
    LARGE_MIN_SCALE,
    MAX_SCALE,
    MAX_TOKEN_LENGTH,
    MIN_SCALE,
    QUIET_ZONE_MODULES,
    ErrorLevel,
    ImageFormat,
    modules,
    qr_version,
    render,
)

__all__ = [
    "LARGE_MIN_SCALE",
    "MAX_SCALE",
    "MAX_TOKEN_LENGTH",
    "MIN_SCALE",
    "QUIET_ZONE_MODULES",
    "ErrorLevel",
    "ImageFormat",
    "modules",
    "qr_version",
    "render",
]
