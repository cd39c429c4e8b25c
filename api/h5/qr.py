"""A QR code drawn on a page without the script: the same single SVG path of dark runs that
`h5.js` draws for the live codes, for codes that do not change (a share's link)."""

from __future__ import annotations


def svg_path(rows: list[str]) -> str:
    """The `d` of one path covering the dark modules, row by row, a rectangle per run."""
    parts: list[str] = []
    for y, row in enumerate(rows):
        x = 0
        while x < len(row):
            if row[x] != "1":
                x += 1
                continue
            run = 1
            while x + run < len(row) and row[x + run] == "1":
                run += 1
            parts.append(f"M{x} {y}h{run}v1h-{run}z")
            x += run
    return "".join(parts)
