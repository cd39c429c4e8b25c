"""load/RESULTS.md keeps the sections other commands measured; the spread counts every run."""

import subprocess
from pathlib import Path

import pytest

from load import results_file
from load.run_benchmarks import Ratio, _spread_report


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(results_file, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(results_file, "HISTORY", tmp_path / "runs.jsonl")
    monkeypatch.setattr(results_file, "code_version", lambda: "abc1234")
    return tmp_path / "RESULTS.md"


def test_a_section_is_replaced_in_place_and_the_others_kept(results: Path) -> None:
    results.write_text("# Benchmark results\n\n## A\n\nold a\n\n## B\n\nb\n")
    results_file.write_section("## A", "## A\n\nnew a\n")
    assert results.read_text() == "# Benchmark results\n\n## A\n\nnew a\n\n## B\n\nb\n"
    assert results_file.kept_sections(["## B", "## missing", "## A"]) == [
        "## B\n\nb",
        "## A\n\nnew a",
    ]


def test_a_new_section_is_appended(results: Path) -> None:
    results_file.write_section("## C", "## C\n\nc\n")
    assert results.read_text() == "# Benchmark results\n\n## C\n\nc\n"


def test_the_spread_covers_every_run_of_the_same_code_only(
    results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results_file, "code_version", lambda: "older")
    results_file.record_run({"ratio": 0.9})
    monkeypatch.setattr(results_file, "code_version", lambda: "abc1234")
    results_file.record_run({"ratio": 0.5})
    results_file.record_run({"ratio": 0.7})
    history = results_file.record_run({"ratio": 0.6})
    row = Ratio("ratio", "figures", 0.6, "%", ">= 80 %")
    table = _spread_report([row], history)
    assert table[0].startswith("## Spread over 3 runs of this code (abc1234")
    assert table[-1] == "| ratio | 3 | 50% | 60% | 70% | >= 80 % |"


def _git(root: Path, *arguments: str) -> None:
    subprocess.run(["git", *arguments], cwd=root, check=True, capture_output=True)


def test_the_measured_code_is_the_served_files_not_the_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "load").mkdir()
    (tmp_path / "load" / "bench.py").write_text("speed = 1\n")
    (tmp_path / "load" / "RESULTS.md").write_text("# Benchmark results\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "code")
    monkeypatch.setattr(results_file, "ROOT", tmp_path)
    measured = results_file.code_version()
    assert measured.startswith("code ") and not measured.endswith("+changes")

    (tmp_path / "load" / "RESULTS.md").write_text("# Benchmark results\n\nrun 1\n")
    (tmp_path / "load" / "runs.jsonl").write_text("{}\n")
    assert results_file.code_version() == measured
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results")
    assert results_file.code_version() == measured

    (tmp_path / "load" / "bench.py").write_text("speed = 2\n")
    assert results_file.code_version() == measured + "+changes"
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "faster")
    assert results_file.code_version() not in (measured, measured + "+changes")
