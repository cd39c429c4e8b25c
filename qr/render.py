"""Render an `SSC1` token as a QR code image (PNG or SVG bytes), with an accessible variant.

Pure: no I/O beyond in-memory buffers, and nothing from the rest of the project.
"""

from __future__ import annotations

import io
from typing import Final, Literal

import segno

ErrorLevel = Literal["l", "m", "q", "h"]
ImageFormat = Literal["png", "svg"]

MIN_SCALE: Final = 1
MAX_SCALE: Final = 40
MAX_TOKEN_LENGTH: Final = 1024
QUIET_ZONE_MODULES: Final = 4
"""ISO/IEC 18004 asks for 4 light modules around the symbol; scanners misread tighter codes."""

LARGE_MIN_SCALE: Final = 16
"""Modules of at least 16 px stay readable on a phone held at arm's length by elderly users."""

_LEVEL_ORDER: Final[tuple[ErrorLevel, ...]] = ("l", "m", "q", "h")
_DARK: Final = "#000000"
_LIGHT: Final = "#ffffff"


def render(
    token: str,
    fmt: ImageFormat = "png",
    *,
    scale: int = 8,
    large_high_contrast: bool = False,
    error: ErrorLevel = "m",
) -> bytes:
    """Return the QR code of `token` as PNG or SVG bytes, black on white with a 4-module border.

    The error correction level is exactly `error` (segno's boosting is off) so that the
    symbol version stays predictable. `large_high_contrast` is the accessible variant:
    modules of at least `LARGE_MIN_SCALE` px and at least ECC Q, so a worn or glaring
    screen still scans.

    :param token: the text to encode, at most `MAX_TOKEN_LENGTH` characters.
    :param fmt: ``"png"`` or ``"svg"``.
    :param scale: pixels per module, `MIN_SCALE` to `MAX_SCALE`.
    :param large_high_contrast: render the variant for elderly or low-vision users.
    :param error: error correction level ``"l"``, ``"m"``, ``"q"`` or ``"h"``.
    :raises ValueError: on an empty or too long token, a scale out of range, or an unknown
        format or error level.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown image format {fmt!r}; expected 'png' or 'svg'")
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, got {scale}")
    if large_high_contrast:
        scale = max(scale, LARGE_MIN_SCALE)
        error = max(error, "q", key=_level_rank)
    code = _make(token, error)
    out = io.BytesIO()
    if fmt == "png":
        code.save(out, kind="png", scale=scale, border=QUIET_ZONE_MODULES, dark=_DARK, light=_LIGHT)
    else:
        code.save(
            out,
            kind="svg",
            scale=scale,
            border=QUIET_ZONE_MODULES,
            dark=_DARK,
            light=_LIGHT,
            svgclass=None,
            lineclass=None,
        )
    return out.getvalue()


def modules(token: str, *, large_high_contrast: bool = False, error: ErrorLevel = "m") -> list[str]:
    """Return the QR code of `token` as rows of ``"1"`` (dark) and ``"0"`` (light), the
    4-module quiet zone included: for a page that draws the code itself (`/h5/`), with the
    error correction `render` uses for the same arguments.

    :raises ValueError: on an empty or too long token, or an unknown error level.
    """
    if large_high_contrast:
        error = max(error, "q", key=_level_rank)
    code = _make(token, error)
    return [
        "".join("1" if dark else "0" for dark in row)
        for row in code.matrix_iter(scale=1, border=QUIET_ZONE_MODULES)
    ]


def qr_version(token: str, error: ErrorLevel = "m") -> int:
    """Return the QR version (1-40) that `render` uses for `token` at level `error`.

    Lets callers check the token budget (version 8 or lower at M) without rendering.

    :raises ValueError: on an empty or too long token, or an unknown error level.
    """
    version = _make(token, error).version
    assert isinstance(version, int)  # make_qr never yields a Micro QR ("M1".."M4").
    return version


def _make(token: str, error: ErrorLevel) -> segno.QRCode:
    if error not in _LEVEL_ORDER:
        raise ValueError(f"unknown error correction level {error!r}; expected one of l, m, q, h")
    if not token:
        raise ValueError("token must not be empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(
            f"token is {len(token)} characters long; at most {MAX_TOKEN_LENGTH} are accepted"
        )
    return segno.make_qr(token, error=error, boost_error=False)


def _level_rank(level: ErrorLevel) -> int:
    return _LEVEL_ORDER.index(level)
