"""`make clean` leaves nothing the tools wrote (caches of pytest, mypy, ruff, hypothesis and
schemathesis, the venv, var/)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"
LEFT_BY_TOOLS = (
    ".venv",
    "var",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".schemathesis",
    "schemathesis-report",
)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_make_clean_removes_what_the_tools_left(tmp_path: Path) -> None:
    for name in LEFT_BY_TOOLS:
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")
    (tmp_path / "kept.txt").write_text("source")
    subprocess.run(
        ["make", "-C", str(tmp_path), "-f", str(MAKEFILE), "clean"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept.txt"]
