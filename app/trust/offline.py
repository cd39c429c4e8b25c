"""`ssc verify-offline`: one scan against a downloaded verifier bundle, no network.

The scanned string comes from the command line or from a QR image (decoded with zxing-cpp and
Pillow, the `scanner` extra: `pip install 'ssc-ecard[scanner]'`, imported only for `--image`);
the bundle's signature is checked against an anchor JWK set (or, on a server host, our own
key ring); accepted tokens are remembered in a replay cache file next to the bundle, so a
second presentation answers `replayed` even after a restart.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.runtime import open_keyring
from token_service import (
    PREFIX,
    BundleError,
    KeyRingError,
    KeySetError,
    OfflineResult,
    OfflineVerifier,
    PublicKeySet,
    ReplayCache,
    ReplayCacheError,
)

MAX_ANCHOR_BYTES = 1 << 20
MAX_IMAGE_PIXELS = 40_000_000
SCANNER_EXTRA_HINT = (
    "reading QR images needs the scanner extra: pip install 'ssc-ecard[scanner]' "
    "(zxing-cpp and Pillow); or pass the scanned TOKEN instead of --image"
)


class OfflineInputError(Exception):
    """The bundle, anchor, image or replay cache cannot be used; the message says which."""


@dataclass(frozen=True, slots=True)
class OfflineScan:
    bundle: Path
    token: str | None = None
    image: Path | None = None
    anchor: Path | None = None
    scene: str | None = None
    replay_cache: Path | None = None


@dataclass(frozen=True, slots=True)
class OfflineOutcome:
    """The verdict of one scan, or why no verdict could be reached (`error`)."""

    result: OfflineResult | None = None
    max_age: int | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.result is not None and self.result.accepted

    def lines(self) -> list[str]:
        """What the operator reads: verdict, admission, staleness, bundle age, scene. Never
        anything of the holder: offline disclosure is nothing beyond the verdict."""
        result = self.result
        if result is None:
            return [f"error: {self.error}"]
        lines = [
            f"verdict: {result.verdict.value}",
            f"accepted: {'yes' if result.accepted else 'no'}",
            f"stale: {'yes' if result.stale else 'no'}",
            f"bundle age: {int(result.bundle_age_seconds)} s (max {self.max_age} s)",
        ]
        if result.scene is not None:
            lines.append(f"scene: {result.scene}")
        if result.issuer is not None:
            lines.append(f"issuer: {result.issuer}")
        if result.reason is not None:
            lines.append(f"reason: {result.reason}")
        return lines


def default_replay_cache(bundle: Path) -> Path:
    return bundle.with_name(bundle.name + ".replay.json")


def anchor_keys(anchor: Path | None, settings: Settings | None) -> PublicKeySet:
    """The keys that sign bundles: a JWK set file, else this deployment's key ring.

    :raises OfflineInputError: when neither can be read.
    """
    try:
        if anchor is not None:
            with anchor.open("rb") as handle:
                data = handle.read(MAX_ANCHOR_BYTES + 1)
            if len(data) > MAX_ANCHOR_BYTES:
                raise OfflineInputError(f"{anchor}: too large for a JWK set")
            return PublicKeySet.from_jwks(json.loads(data))
        if settings is None:
            raise OfflineInputError("give --anchor or run where the key ring is configured")
        return PublicKeySet.from_keyring(open_keyring(settings))
    except (OSError, ValueError, KeySetError, KeyRingError) as error:
        raise OfflineInputError(f"cannot read the anchor keys: {error}") from None


def token_from_image(path: Path) -> str:
    """The SSC1 string of the first matching QR code in an image.

    :raises OfflineInputError: when the file is no image or holds no SSC1 QR code.
    """
    zxingcpp, pil_image = _scanner_modules()
    pil_image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with pil_image.open(path) as image:
            barcodes = zxingcpp.read_barcodes(image.convert("L"))
    except (
        OSError,
        pil_image.UnidentifiedImageError,
        pil_image.DecompressionBombError,
        ValueError,
    ) as error:
        raise OfflineInputError(f"{path}: cannot read the image ({error})") from None
    for barcode in barcodes:
        if barcode.text.startswith(PREFIX):
            return str(barcode.text)
    raise OfflineInputError(f"{path}: no SSC1 QR code found")


def _scanner_modules() -> tuple[Any, Any]:
    """zxingcpp and PIL.Image, which only image scans need (the `scanner` extra).

    :raises OfflineInputError: naming what to install when they are missing.
    """
    try:
        return importlib.import_module("zxingcpp"), importlib.import_module("PIL.Image")
    except ImportError:
        raise OfflineInputError(SCANNER_EXTRA_HINT) from None


def scan_offline(scan: OfflineScan, settings: Settings | None) -> OfflineOutcome:
    """Verifies one scan; never raises for bad files or hostile tokens (see `error`)."""
    if not scan.bundle.is_file():
        return OfflineOutcome(error=f"{scan.bundle}: no such bundle file")
    try:
        keys = anchor_keys(scan.anchor, settings)
        token = scan.token if scan.token is not None else _image_token(scan.image)
        cache_path = scan.replay_cache or default_replay_cache(scan.bundle)
        verifier = OfflineVerifier.from_file(
            scan.bundle, keys, replay_cache=ReplayCache(cache_path)
        )
        result = verifier.verify(token, scene=scan.scene)
    except OfflineInputError as error:
        return OfflineOutcome(error=str(error))
    except BundleError as error:
        return OfflineOutcome(error=f"bundle refused ({error.reason}): {error}")
    except ReplayCacheError as error:
        return OfflineOutcome(error=str(error))
    return OfflineOutcome(result=result, max_age=verifier.bundle.max_age)


def _image_token(image: Path | None) -> str:
    if image is None:
        raise OfflineInputError("give a token or an image")
    return token_from_image(image)
