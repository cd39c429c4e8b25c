"""load/RESULTS.md and the history of benchmark runs behind its spread table.

The one benchmark command (`load.run_benchmarks`) rewrites RESULTS.md; measurements made by
separate commands (status list size, vault memory) own a section each, which it keeps.
Every run of the benchmark command appends its ratios to `load/runs.jsonl`, so the report can
show the spread over every run of the same code, not only the one it was written from.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable, Mapping

from load.servers import ROOT

RESULTS = ROOT / "load" / "RESULTS.md"
HISTORY = ROOT / "load" / "runs.jsonl"
SERVED_CODE = ("app", "api", "token_service", "qr", "alembic", "load", "pyproject.toml")
"""What a benchmark run measures: a change under these paths makes its runs another code's."""


def section_of(text: str, title: str) -> str:
    """The section `title` (a `## ` heading) of a RESULTS.md text, up to the next one."""
    start = text.find(title)
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(title))
    return text[start : len(text) if end < 0 else end].strip()


def kept_sections(titles: Iterable[str]) -> list[str]:
    text = RESULTS.read_text() if RESULTS.exists() else ""
    return [found for title in titles if (found := section_of(text, title))]


def write_section(title: str, section: str) -> None:
    """Replace the section `title` of RESULTS.md with `section`, or append it."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    old = section_of(text, title)
    text = text.replace(old, section.strip()) if old else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")


def code_version() -> str:
    """The commit measured, `+changes` when the served code differs from it."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    changed = _git("status", "--porcelain", "--", *SERVED_CODE)
    return commit + ("+changes" if changed else "")


def record_run(ratios: Mapping[str, float]) -> list[dict[str, float]]:
    """Append this run's ratios to the history; every run of the same code, this one last."""
    version = code_version()
    entry = {"code": version, "measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}
    with HISTORY.open("a") as history:
        history.write(json.dumps({**entry, "ratios": dict(ratios)}) + "\n")
    runs = []
    for line in HISTORY.read_text().splitlines():
        item = json.loads(line)
        if item["code"] == version:
            runs.append(item["ratios"])
    return runs


def _git(*arguments: str) -> str:
    done = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, check=False)
    return done.stdout.decode().strip() if done.returncode == 0 else ""
