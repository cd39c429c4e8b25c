"""Pages in a real browser: Debian's headless Chromium (`/usr/bin/chromium`, never a browser
Playwright downloads) at a phone's viewport, and the checks every page test shares: a
screenshot that is not blank, written under `var/screenshots/` for a person to look at."""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

from PIL import Image

CHROMIUM = os.environ.get("SSC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PHONE_VIEWPORT = {"width": 390, "height": 844}
SCREENSHOT_DIR = Path(os.environ.get("SSC_SCREENSHOT_DIR", "var/screenshots"))
# Root cannot use Chromium's sandbox; CI runs as root. /dev/shm is small in containers.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def blank_reason(png: bytes, *, min_ink: float = 0.003) -> str | None:
    """Why a screenshot looks blank or broken (one colour, or almost no pixel differing from
    the background), or None when something was drawn."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((image.width // 4 or 1, image.height // 4 or 1))
    colours = small.getcolors(maxcolors=1 << 16)
    if colours is None:
        return None  # more than 65,536 colours: certainly not blank
    if len(colours) < 3:
        return f"only {len(colours)} colour(s) on the page"
    background = max(colours)[0]
    total = small.width * small.height
    ink = 1 - background / total
    if ink < min_ink:
        return f"only {ink:.2%} of the page differs from its background"
    return None


def save_screenshot(name: str, png: bytes) -> Path:
    """Keeps a screenshot (not committed) so a person can look at what the test saw."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    path.write_bytes(png)
    return path


def assert_rendered(name: str, png: bytes) -> Path:
    path = save_screenshot(name, png)
    reason = blank_reason(png)
    assert reason is None, f"{path}: the page looks blank or broken: {reason}"
    return path
