"""The repository's documentation stands on its own: nothing links outside the repository.

Every Markdown file (README.md, docs/, load/, ...) is read: a relative link must name a file
or directory of the repository, an `http(s)://` URL may only name the loopback host (or a
reserved example domain: RFC 2606 / RFC 6761), and no file of the repository may point at the
design and domain notes that a clone does not have (they lived in a `shared` directory next
to it). The token specification lists every verdict the code can give.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from token_service import Verdict

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__", "out"}
TEXT_SUFFIXES = {".md", ".py", ".toml", ".cfg", ".ini", ".txt", ".yml", ".yaml", ".lua", ".json"}
TEXT_NAMES = frozenset({"Dockerfile", "Makefile"})

INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>()\"'`\]]+")
OUTSIDE_NOTES = re.compile(r"\.\./shared\b|\b(?:DESIGN|DOMAIN)\.md\b")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
EXAMPLE_DOMAINS = ("example", "example.com", "example.org", "example.net", "test", "invalid")


def _files(suffixes: set[str], names: frozenset[str] = frozenset()) -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in relative.parts[:-1]):
            continue
        if path.is_file() and (path.suffix in suffixes or path.name in names):
            found.append(path)
    return sorted(found)


MARKDOWN = _files({".md"})


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _is_allowed_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host in LOOPBACK_HOSTS:
        return True
    return any(host == domain or host.endswith("." + domain) for domain in EXAMPLE_DOMAINS)


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated anchor numbered (`-1`, `-2`, ...)."""
    anchors: set[str] = set()
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_code or heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        anchor, number = slug, 0
        while anchor in anchors:
            number += 1
            anchor = f"{slug}-{number}"
        anchors.add(anchor)
    return anchors


def link_problems(path: Path, text: str) -> list[str]:
    """What in one Markdown file leaves the repository (empty: nothing)."""
    problems = [f"points outside the repository: {m}" for m in OUTSIDE_NOTES.findall(text)]
    targets = INLINE_LINK.findall(text) + REFERENCE_DEFINITION.findall(text)
    for target in targets:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            continue  # URLs are checked below with every other URL
        local, _, anchor = target.partition("#")
        local = unquote(local.split("?", 1)[0])
        resolved = (path.parent / local).resolve() if local else path.resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"link leaves the repository: {target}")
        elif not resolved.exists():
            problems.append(f"link to a missing file: {target}")
        elif anchor and resolved.suffix == ".md":
            headings = text if resolved == path.resolve() else resolved.read_text("utf-8")
            if anchor not in heading_anchors(headings):
                problems.append(f"link to a missing heading: {target}")
    for url in URL.findall(text):
        parts = urlsplit(url)
        if parts.scheme in {"http", "https"}:
            if not _is_allowed_host(parts.hostname or ""):
                problems.append(f"URL outside the repository: {url}")
        elif parts.scheme in {"ftp", "file", "git", "ssh"}:
            problems.append(f"URL outside the repository: {url}")
    return problems


def test_the_repository_has_its_documentation() -> None:
    names = {_id(path) for path in MARKDOWN}
    assert {
        "README.md",
        "docs/architecture.md",
        "docs/token-spec.md",
        "docs/verifier-guide.md",
    } <= names


@pytest.mark.parametrize("path", MARKDOWN, ids=_id)
def test_markdown_links_stay_in_the_repository(path: Path) -> None:
    assert link_problems(path, path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", _files(TEXT_SUFFIXES, TEXT_NAMES), ids=_id)
def test_no_file_points_at_notes_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    assert [match.group(0) for match in OUTSIDE_NOTES.finditer(text)] == []


class TestTheChecker:
    """The checker itself: what it refuses and what it lets through."""

    def test_refuses_what_leaves_the_repository(self, tmp_path: Path) -> None:
        text = (
            "[notes](../"
            "shared/notes.md) [gone](docs/missing.md) "
            "[web](https://github.com/some/where) <https://pypi.org/project/x> "
            "see http://10.0.0.1:8000/v1/verify\n[ref]: ../../elsewhere.md\n"
        )
        problems = link_problems(ROOT / "README.md", text)
        assert len(problems) == 7, problems  # the shared link: as a name and as a path

    def test_refuses_a_link_to_a_heading_that_is_not_there(self) -> None:
        text = "[a](#no-such-heading) [b](docs/token-spec.md#no-such-heading)\n# Title\n"
        assert len(link_problems(ROOT / "README.md", text)) == 2

    def test_anchors_are_githubs(self) -> None:
        text = "# Signature: ES256, low-S\n## `ssc verify-offline`\n## Notes\n## Notes\n"
        assert heading_anchors(text) == {
            "signature-es256-low-s",
            "ssc-verify-offline",
            "notes",
            "notes-1",
        }

    def test_lets_through_local_files_anchors_and_loopback_examples(self) -> None:
        text = (
            "[spec](docs/token-spec.md#verdicts) [top](#set-up) [dir](docs/)\n## Set-up\n"
            "curl -s http://127.0.0.1:8000/readyz http://localhost:8000/docs "
            "SSC_PUBLIC_URL=https://ecard.example.com redis://127.0.0.1:6379/0\n"
        )
        assert link_problems(ROOT / "README.md", text) == []


def test_the_token_spec_lists_every_verdict() -> None:
    spec = (ROOT / "docs" / "token-spec.md").read_text(encoding="utf-8")
    missing = [verdict.value for verdict in Verdict if f"`{verdict.value}`" not in spec]
    assert missing == []
