"""The QR images decode back to the exact token with a real decoder and keep the quiet zone."""

from __future__ import annotations

import io
import random
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image

from qr import (
    LARGE_MIN_SCALE,
    MAX_SCALE,
    MAX_TOKEN_LENGTH,
    MIN_SCALE,
    QUIET_ZONE_MODULES,
    ErrorLevel,
    qr_version,
    render,
)

BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
SVG_NS = "{http://www.w3.org/2000/svg}"


def realistic_token(length: int = 205, seed: int = 1) -> str:
    """An `SSC1` token of the size docs/token-spec.md gives, without depending on the codec."""
    rng = random.Random(seed)
    prefix = "SSC1:"
    return prefix + "".join(rng.choice(BASE45_ALPHABET) for _ in range(length - len(prefix)))


TOKEN = realistic_token()


def read(png: bytes) -> list[zxingcpp.Barcode]:
    with Image.open(io.BytesIO(png)) as image:
        return list(zxingcpp.read_barcodes(image))


def decode(png: bytes) -> list[str]:
    return [barcode.text for barcode in read(png)]


def decoded_error_level(png: bytes) -> str:
    (barcode,) = read(png)
    return str(barcode.ec_level)


def png_size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size


class TestRenderPng:
    def test_decodes_to_the_exact_token(self) -> None:
        assert decode(render(TOKEN)) == [TOKEN]

    def test_token_with_space_and_symbols_round_trips(self) -> None:
        token = "SSC1:" + " $%*+-./:" * 10
        assert decode(render(token)) == [token]

    @pytest.mark.parametrize("scale", [MIN_SCALE, 3, MAX_SCALE])
    def test_image_side_is_modules_plus_quiet_zone_times_scale(self, scale: int) -> None:
        modules = 17 + 4 * qr_version(TOKEN)
        side = (modules + 2 * QUIET_ZONE_MODULES) * scale
        assert png_size(render(TOKEN, scale=scale)) == (side, side)

    def test_default_error_correction_is_m(self) -> None:
        assert decoded_error_level(render(TOKEN)) == "M"

    @pytest.mark.parametrize("error", ["l", "m", "q", "h"])
    def test_every_error_level_decodes_at_that_level(self, error: ErrorLevel) -> None:
        png = render(TOKEN, error=error)
        assert decode(png) == [TOKEN]
        assert decoded_error_level(png) == error.upper()

    def test_quiet_zone_is_white_for_four_modules_at_every_corner(self) -> None:
        scale = 5
        png = render(TOKEN, scale=scale)
        margin = QUIET_ZONE_MODULES * scale
        with Image.open(io.BytesIO(png)) as image:
            grey = image.convert("L")
            width, height = grey.size
            corners = [(0, 0), (width - margin, 0), (0, height - margin)]
            corners.append((width - margin, height - margin))
            for left, top in corners:
                corner = grey.crop((left, top, left + margin, top + margin))
                assert corner.getextrema() == (255, 255)
            # Just inside the quiet zone starts a finder pattern: a dark module.
            assert grey.getpixel((margin, margin)) == 0

    def test_is_pure_black_on_pure_white(self) -> None:
        with Image.open(io.BytesIO(render(TOKEN))) as image:
            counts = image.convert("RGB").getcolors()
        assert counts is not None
        colours = {colour for _, colour in counts}
        assert colours == {(0, 0, 0), (255, 255, 255)}


class TestLargeHighContrast:
    def test_decodes_to_the_exact_token(self) -> None:
        assert decode(render(TOKEN, large_high_contrast=True)) == [TOKEN]

    def test_is_larger_than_the_default(self) -> None:
        default_side = png_size(render(TOKEN))[0]
        large_side = png_size(render(TOKEN, large_high_contrast=True))[0]
        assert large_side >= 2 * default_side

    def test_uses_error_correction_q(self) -> None:
        assert decoded_error_level(render(TOKEN, large_high_contrast=True)) == "Q"

    def test_keeps_a_higher_requested_level(self) -> None:
        assert decoded_error_level(render(TOKEN, large_high_contrast=True, error="h")) == "H"

    def test_side_is_the_level_q_symbol_at_the_minimum_large_scale(self) -> None:
        modules = 17 + 4 * qr_version(TOKEN, error="q")
        side = (modules + 2 * QUIET_ZONE_MODULES) * LARGE_MIN_SCALE
        assert png_size(render(TOKEN, large_high_contrast=True)) == (side, side)

    def test_keeps_a_larger_requested_scale(self) -> None:
        large = render(TOKEN, scale=20, large_high_contrast=True)
        minimum = render(TOKEN, large_high_contrast=True)
        assert png_size(large)[0] == png_size(minimum)[0] * 20 // LARGE_MIN_SCALE


class TestRenderSvg:
    def test_is_well_formed_svg_of_the_right_size(self) -> None:
        scale = 8
        root = ET.fromstring(render(TOKEN, "svg", scale=scale))
        side = (17 + 4 * qr_version(TOKEN) + 2 * QUIET_ZONE_MODULES) * scale
        assert root.tag == f"{SVG_NS}svg"
        assert (root.get("width"), root.get("height")) == (str(side), str(side))

    def test_draws_black_modules_on_a_white_background(self) -> None:
        svg = render(TOKEN, "svg").decode()
        assert 'fill="#fff"' in svg
        assert 'stroke="#000"' in svg


class TestVersion:
    def test_realistic_token_fits_version_8_at_m(self) -> None:
        assert qr_version(TOKEN) == 8

    def test_token_with_status_index_still_fits_version_8_at_m(self) -> None:
        assert qr_version(realistic_token(215)) == 8

    def test_level_q_needs_a_larger_version(self) -> None:
        assert qr_version(TOKEN, error="q") == 10

    def test_error_level_is_not_boosted(self) -> None:
        # Version 1 has room for H here; segno would raise L to H unless told not to.
        png = render("SSC1:ABC", error="l")
        assert qr_version("SSC1:ABC", error="l") == 1
        assert decoded_error_level(png) == "L"


class TestRefusals:
    @pytest.mark.parametrize("scale", [MIN_SCALE - 1, -3, MAX_SCALE + 1])
    def test_scale_out_of_range(self, scale: int) -> None:
        with pytest.raises(ValueError, match="scale must be between 1 and 40"):
            render(TOKEN, scale=scale)

    def test_token_too_long(self) -> None:
        with pytest.raises(ValueError, match="at most 1024"):
            render("A" * (MAX_TOKEN_LENGTH + 1))

    def test_longest_accepted_token_renders(self) -> None:
        assert qr_version("A" * MAX_TOKEN_LENGTH) <= 40

    def test_empty_token(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            render("")

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match="image format"):
            render(TOKEN, "gif")  # type: ignore[arg-type]

    def test_unknown_error_level(self) -> None:
        with pytest.raises(ValueError, match="error correction level"):
            qr_version(TOKEN, error="x")  # type: ignore[arg-type]
