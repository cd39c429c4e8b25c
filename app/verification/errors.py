"""Errors of the verify path. A bad token is a verdict, not an error; only the caller can fail."""

from __future__ import annotations

from app.errors import Unauthorized


class ScannerDisabled(Unauthorized):
    """The scanner's token verified, but the scanner has been disabled since it was issued."""

    code = "scanner-disabled"
    title = "Scanner disabled"
