"""load/RESULTS.md and the history of benchmark runs behind its spread table.

The one benchmark command (`load.run_benchmarks`) rewrites RESULTS.md; measurements made by
separate commands (status list size, vault memory) own a section each, which it keeps.
Every run of the benchmark command appends its ratios to `load/runs.jsonl`, so the report can
show the spread over every run of the same code, not only the one it was written from.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterable, Mapping

from load.servers import ROOT

RESULTS = ROOT / "load" / "RESULTS.md"
HISTORY = ROOT / "load" / "runs.jsonl"
SERVED_CODE = ("app", "api", "token_service", "qr", "alembic", "load", "pyproject.toml")
"""What a benchmark run measures: a change under these paths makes its runs another code's."""
RUN_OUTPUTS = frozenset(
    {
        "load/RESULTS.md",
        "load/PROFILE.md",
        "load/runs.jsonl",
        "load/throughput.png",
        "load/peak_backlog.png",
    }
)
"""What runs write or notes describe under `load/`: committing them changes no measured code."""


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
    """The code measured: a digest of the served files as committed, `+changes` when the
    working tree differs. Commits that only add results keep the digest, so runs before and
    after committing RESULTS.md count as runs of the same code."""
    listing = _git("ls-tree", "-r", "HEAD", "--", *SERVED_CODE).splitlines()
    served = [line for line in listing if line.split("\t", 1)[-1] not in RUN_OUTPUTS]
    digest = hashlib.sha256("\n".join(served).encode()).hexdigest()[:12]
    status = _git("status", "--porcelain", "--", *SERVED_CODE).splitlines()
    changed = [line for line in status if line[3:] not in RUN_OUTPUTS]
    return f"code {digest}" + ("+changes" if changed else "")


def record_run(ratios: Mapping[str, float]) -> list[dict[str, float]]:
    """Append this run's ratios to the history; every run of the same code, this one last."""
    version = code_version()
    entry = {
        "code": version,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }
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
    return done.stdout.decode().rstrip("\n") if done.returncode == 0 else ""
