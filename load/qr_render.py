"""QR images per CPU second: segno (what `qr.render` uses) against qrcode, PNG and SVG.

Run: `.venv/bin/python -m load.qr_render` (a few seconds, one core). Both libraries draw the
same symbol as `qr.render` does for `GET /v1/me/qr.png` and `.svg`: a real `SSC1` token,
error correction M, 8 px per module, the 4-module quiet zone, black on white. Figures are CPU
time of this process (`time.process_time`), so a busy machine slows them less than wall
clock would. qrcode is a dev dependency for this comparison only.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

from qr import QUIET_ZONE_MODULES, render
from token_service import KeyRing, TokenIssuer

SCALE = 8
MIN_CPU_SECONDS = 1.0


@dataclass(frozen=True)
class RenderRate:
    library: str
    fmt: str
    per_cpu_second: float
    bytes: int


def sample_token() -> str:
    """A token as the phone gets it (fresh key, random handle, a status index)."""
    with tempfile.TemporaryDirectory() as directory:
        ring = KeyRing.load_or_create(Path(directory), b"k" * 32, retire_grace=60)
        issuer = TokenIssuer(ring, "360000", b"\x01" * 16, lifetime=60)
        return issuer.issue(b"\x02" * 16, status_index=12345).token


def qrcode_png(token: str) -> bytes:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=SCALE, border=4)
    code.add_data(token)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(out)
    return out.getvalue()


def qrcode_svg(token: str) -> bytes:
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M,
        box_size=SCALE,
        border=QUIET_ZONE_MODULES,
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    code.add_data(token)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image().save(out)
    return out.getvalue()


def rate(draw: Callable[[], bytes]) -> tuple[float, int]:
    """Images per CPU second, over at least `MIN_CPU_SECONDS`; and one image's size."""
    size = len(draw())
    count, started = 0, time.process_time()
    while (used := time.process_time() - started) < MIN_CPU_SECONDS:
        for _ in range(20):
            draw()
        count += 20
    return count / used, size


def measure() -> list[RenderRate]:
    token = sample_token()
    cases: list[tuple[str, str, Callable[[], bytes]]] = [
        ("segno", "png", lambda: render(token, "png", scale=SCALE)),
        ("qrcode", "png", lambda: qrcode_png(token)),
        ("segno", "svg", lambda: render(token, "svg", scale=SCALE)),
        ("qrcode", "svg", lambda: qrcode_svg(token)),
    ]
    results = []
    for library, fmt, draw in cases:
        per_second, size = rate(draw)
        results.append(RenderRate(library, fmt, per_second, size))
    return results


def main() -> None:
    for result in measure():
        print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
