"""`load.against` compares two commits on a machine whose speed drifts: each ratio is the
median of rounds measured next to each other, and a serving bench answers rounds on request."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from load.against import PIPELINE, Against, PairedRatio, Side, report


class TestPairedRatio:
    def test_cpu_less_than_theirs_is_above_one(self) -> None:
        ratio = PairedRatio.of([100.0, 200.0, 300.0], [110.0, 220.0, 330.0], lower_is_better=True)
        assert ratio.median == pytest.approx(1.1)
        assert [ratio.low, ratio.high] == pytest.approx([1.1, 1.1])

    def test_a_drift_shared_by_both_sides_of_a_pair_leaves_the_ratio(self) -> None:
        """The machine slowed down by half between pairs: a ratio of whole-run means would
        move with the order of the rounds; the paired one does not."""
        ours = [100.0, 150.0, 100.0, 150.0, 100.0]
        theirs = [95.0, 142.5, 95.0, 142.5, 95.0]
        assert PairedRatio.of(ours, theirs, lower_is_better=True).median == pytest.approx(0.95)

    def test_one_wild_round_moves_the_middle_half_not_the_median(self) -> None:
        ours = [100.0, 100.0, 100.0, 100.0, 100.0]
        theirs = [100.0, 102.0, 98.0, 101.0, 300.0]
        ratio = PairedRatio.of(ours, theirs, lower_is_better=True)
        assert ratio.median == pytest.approx(1.01)
        assert ratio.low == pytest.approx(0.99)
        assert ratio.high == pytest.approx(2.01)

    def test_rates_higher_than_theirs_are_above_one(self) -> None:
        ratio = PairedRatio.of([1200.0, 1000.0], [1000.0, 1000.0], lower_is_better=False)
        assert ratio.median == pytest.approx(1.1)
        assert [ratio.low, ratio.high] == pytest.approx([1.0, 1.2])

    def test_unpaired_rounds_are_refused(self) -> None:
        with pytest.raises(ValueError, match="paired rounds"):
            PairedRatio.of([1.0, 2.0], [1.0], lower_is_better=True)
        with pytest.raises(ValueError, match="paired rounds"):
            PairedRatio.of([], [], lower_is_better=True)


def test_the_report_shows_each_measure_with_its_paired_ratio() -> None:
    ours = Side([90.0, 100.0], [95.0, 105.0], [1000.0], [400.0], [900.0], [380.0])
    theirs = Side([100.0, 100.0], [100.0, 100.0], [950.0], [400.0], [1000.0], [400.0])
    lines = report(Against("f3e806b", ours, theirs))
    assert lines[0].startswith("## Against commit f3e806b")
    rows = [line for line in lines if line.startswith("| CPU") or line.startswith("| wrk")]
    assert rows[0].endswith("| **106%** | 100% to 111% |")
    assert "| **105%** |" in rows[1]  # wrk no scene: 1000 / 950
    assert "| **90%** |" in rows[2]  # wrk with the scene: 900 / 1000


def test_the_pipeline_bench_serves_rounds_on_request(tmp_path: Path) -> None:
    """What `load.against` runs in each tree: ready, then one answer per round asked for."""
    process = subprocess.run(
        [sys.executable, str(PIPELINE)],
        input="verify 20\nverify_scene 20\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PIPELINE_SERVE": "1", "TMPDIR": str(tmp_path)},
        cwd=Path(PIPELINE).parents[1],
        timeout=280,
        check=True,
    )
    answers = [json.loads(line) for line in process.stdout.splitlines()]
    assert answers[0] == {"ready": True}
    assert [answer["figure"] for answer in answers[1:]] == ["verify", "verify_scene"]
    assert all(answer["cpu_us"] > 0 for answer in answers[1:])
