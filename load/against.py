"""Verify throughput of an older commit beside ours, in one run (`load.run_benchmarks
--against <commit>`): issue 12 asks that per-scene disclosure keep verify within 5 % of
before, measured by the same command against the previous commit.

The commit is checked out with `git worktree add` into a temporary directory (removed
afterwards) and its service is run from there with this venv and the same settings
(`load.servers.Stack.tree`). Two figures, each alternating ours and theirs so that a drift of
the machine's speed hits both alike:

- CPU microseconds per request in process (`load/bench_pipeline.py`, run by its path with the
  other checkout as working directory and `PYTHONPATH`), with no scene (the masked name and
  the pseudonym, as before the catalog) and with the `hospital` scene (full name, masked
  document number, age band: the sealed attribute view opened per scan; before the catalog,
  the same scene got the masked name). Both trees' processes stay up and take turns, ours
  then theirs then theirs then ours, in `PIPELINE_ROUNDS` short rounds each;
- wrk against `POST /v1/verify`, one uvicorn worker each, requests per second and requests per
  server CPU-second, with no scene and with the `hospital` scene, `ROUNDS` rounds each.

The speed of this shared machine moves by +-10 % within minutes (hypervisor steal), more
than the difference to measure. So each ratio is the median of the ratios of the rounds
that ran next to each other, each pair measured under the same conditions; the spread of
those paired ratios (interquartile range) is reported beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from load.bench_verify import run_wrk, verify_bodies
from load.servers import BIN, ROOT, Stack, cpu_meter, settle, write_lines

ROUNDS = 3
"""wrk rounds per side and scene."""
PIPELINE_ROUNDS = 20
"""In-process rounds per side and scene, of `PIPELINE_REQUESTS` requests each."""
PIPELINE_REQUESTS = 1500
WARM_UP_ROUNDS = 2
"""In-process rounds run first and not counted: the first requests fill the caches."""
SCENE = "hospital"
"""A demo scanner's scene (`app.demo.DEMO_SCENES`) that receives the sealed attribute view."""
PIPELINE = ROOT / "load" / "bench_pipeline.py"


@dataclass(frozen=True)
class Side:
    cpu_us: list[float]
    """CPU microseconds per `POST /v1/verify` in process, per round."""
    cpu_us_scene: list[float]
    """The same with a scene that discloses the sealed attribute view."""
    requests_per_s: list[float]
    per_cpu_second: list[float]
    requests_per_s_scene: list[float]
    """wrk with the `hospital` scene."""
    per_cpu_second_scene: list[float]


@dataclass(frozen=True)
class Against:
    commit: str
    ours: Side
    theirs: Side


@contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """`commit` checked out in a temporary directory (a detached git worktree)."""
    parent = Path(tempfile.mkdtemp(prefix="ssc-against-"))
    tree = parent / commit
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), commit],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def _round_server(tree: Path, log: Path) -> Iterator[Callable[[str, int], float]]:
    """`load/bench_pipeline.py` serving rounds (`serve_rounds`) in `tree`: a function that
    runs one round of a figure and gives its CPU microseconds per request."""
    env = {**os.environ, "PIPELINE_SERVE": "1", "PYTHONPATH": str(tree)}
    with log.open("w") as errors:
        process = subprocess.Popen(
            [str(BIN / "python"), str(PIPELINE)],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert process.stdin is not None and process.stdout is not None
    requests_in, answers = process.stdin, process.stdout

    def answer() -> dict[str, object]:
        line = answers.readline()
        if not line:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"bench_pipeline in {tree} stopped: {tail}")
        parsed: dict[str, object] = json.loads(line)
        return parsed

    def run(figure: str, requests: int) -> float:
        requests_in.write(f"{figure} {requests}\n")
        requests_in.flush()
        return float(str(answer()["cpu_us"]))

    try:
        answer()  # ready
        yield run
    finally:
        requests_in.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pipeline_cpu(trees: dict[str, Path], directory: Path) -> dict[str, dict[str, list[float]]]:
    """Per side, per figure (`cpu`, `cpu_scene`): CPU microseconds per request of each round,
    the two sides' rounds interleaved ours, theirs, theirs, ours, ..."""
    figures = {"cpu": "verify", "cpu_scene": "verify_scene"}
    with (
        _round_server(trees["ours"], directory / "ours.log") as ours,
        _round_server(trees["theirs"], directory / "theirs.log") as theirs,
    ):
        runs = {"ours": ours, "theirs": theirs}
        for run in runs.values():
            for figure in figures.values():
                for _ in range(WARM_UP_ROUNDS):
                    run(figure, PIPELINE_REQUESTS)
        values: dict[str, dict[str, list[float]]] = {"ours": {}, "theirs": {}}
        for round_number in range(PIPELINE_ROUNDS):
            order = ("ours", "theirs") if round_number % 2 == 0 else ("theirs", "ours")
            for key, figure in figures.items():
                for side in order:
                    values[side].setdefault(key, []).append(runs[side](figure, PIPELINE_REQUESTS))
        return values


def _http_side(stack: Stack, seconds: int) -> Callable[[str | None], tuple[float, float]]:
    """A function that runs one wrk round against the stack's API, for a scene or none:
    (req/s, req per CPU-s)."""
    stack.start_redis()
    api = stack.start_api(workers=1)
    seeded = stack.demo(api.url)
    holder, scanner = seeded["holder"], seeded["scanner"]
    assert isinstance(holder, dict) and isinstance(scanner, dict)
    headers = {"Authorization": f"Bearer {scanner['access_token']}"}
    redis = stack.started[0]

    def run(scene: str | None) -> tuple[float, float]:
        tokens = stack.issue_tokens(holder["card_number"], 4000 * seconds)
        bodies = write_lines(stack.root / "against.jsonl", verify_bodies(tokens, scene))
        settle([api.process.pid, redis.process.pid])
        with cpu_meter([api.process.pid]) as used:
            result = run_wrk(api.url + "/v1/verify", bodies, headers, seconds=seconds)
            settle([api.process.pid, redis.process.pid])  # its audit backlog is charged too
        requests = result.requests_per_s * result.seconds
        return result.requests_per_s, requests / max(used[0], 1e-9)

    return run


def measure(commit: str, *, seconds: int) -> Against:
    figures: dict[str, dict[str, list[float]]] = {"ours": {}, "theirs": {}}
    with checkout(commit) as tree, Stack() as ours_stack, Stack(tree=tree) as theirs_stack:
        trees = {"ours": ROOT, "theirs": tree}
        for name, values in _pipeline_cpu(trees, ours_stack.root).items():
            figures[name].update(values)
            print(f"against {commit}: {name} in process {values}", flush=True)
        runners = {
            "ours": _http_side(ours_stack, seconds),
            "theirs": _http_side(theirs_stack, seconds),
        }
        for round_number in range(ROUNDS):
            order = ("ours", "theirs") if round_number % 2 == 0 else ("theirs", "ours")
            for scene, suffix in ((None, ""), (SCENE, "_scene")):
                for name in order:
                    rate, per_cpu = runners[name](scene)
                    figures[name].setdefault("rate" + suffix, []).append(rate)
                    figures[name].setdefault("per_cpu" + suffix, []).append(per_cpu)
                    print(
                        f"against {commit}: {name} wrk scene {scene}: {rate:.0f} req/s, "
                        f"{per_cpu:.0f} per CPU-s",
                        flush=True,
                    )

    def side(name: str) -> Side:
        values = figures[name]
        return Side(
            values["cpu"],
            values["cpu_scene"],
            values["rate"],
            values["per_cpu"],
            values["rate_scene"],
            values["per_cpu_scene"],
        )

    return Against(commit, side("ours"), side("theirs"))


@dataclass(frozen=True)
class PairedRatio:
    """Ours against theirs over rounds run next to each other: the median of the rounds'
    ratios and the middle half of them (above 1: ours does better)."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, ours: list[float], theirs: list[float], *, lower_is_better: bool) -> PairedRatio:
        """`ours[i]` and `theirs[i]` ran next to each other. The quartiles are the medians of
        the ratios below and above the median (for two rounds: the two ratios)."""
        if len(ours) != len(theirs) or not ours:
            raise ValueError("paired rounds: as many of ours as of theirs, at least one")
        ratios = sorted(
            (other / mine) if lower_is_better else (mine / other)
            for mine, other in zip(ours, theirs, strict=True)
        )
        half = len(ratios) // 2
        lower, upper = ratios[:half] or ratios, ratios[len(ratios) - half :] or ratios
        return cls(statistics.median(ratios), statistics.median(lower), statistics.median(upper))


def report(result: Against) -> list[str]:
    ours, theirs = result.ours, result.theirs
    rows = [
        (
            "CPU per `POST /v1/verify` in process, no scene (load/bench_pipeline.py)",
            ours.cpu_us,
            theirs.cpu_us,
            "us",
            True,
        ),
        (
            "the same with the `hospital` scene (discloses the sealed view)",
            ours.cpu_us_scene,
            theirs.cpu_us_scene,
            "us",
            True,
        ),
        (
            "wrk `POST /v1/verify`, 1 uvicorn worker, req/s",
            ours.requests_per_s,
            theirs.requests_per_s,
            "req/s",
            False,
        ),
        (
            "the same per server CPU-second (audit backlog included)",
            ours.per_cpu_second,
            theirs.per_cpu_second,
            "req/CPU-s",
            False,
        ),
        (
            "wrk `POST /v1/verify` with the `hospital` scene, req/s",
            ours.requests_per_s_scene,
            theirs.requests_per_s_scene,
            "req/s",
            False,
        ),
        (
            "the same per server CPU-second (audit backlog included)",
            ours.per_cpu_second_scene,
            theirs.per_cpu_second_scene,
            "req/CPU-s",
            False,
        ),
    ]
    lines = [
        f"## Against commit {result.commit} (same run, rounds interleaved: {PIPELINE_ROUNDS} "
        f"in process of {PIPELINE_REQUESTS} requests, {ROUNDS} of wrk, per side and scene)",
        "",
        "Ours / theirs: above 100 % means this commit does better (less CPU, more requests). "
        "Each ratio is the median of the ratios of rounds run next to each other; beside it, "
        "the middle half of those ratios.",
        "",
        "| measure | ours (median of rounds) | theirs (median of rounds) | ours / theirs "
        "| middle half |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, mine, other, unit, lower_is_better in rows:
        ratio = PairedRatio.of(mine, other, lower_is_better=lower_is_better)
        lines.append(
            f"| {name} | {statistics.median(mine):,.0f} {unit} "
            f"| {statistics.median(other):,.0f} {unit} | **{ratio.median:.0%}** "
            f"| {ratio.low:.0%} to {ratio.high:.0%} |"
        )
    return lines
