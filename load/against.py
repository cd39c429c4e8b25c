"""Verify throughput of an older commit beside ours, in one run (`load.run_benchmarks
--against <commit>`): issue 12 asks that per-scene disclosure keep verify within 5 % of
before, measured by the same command against the previous commit.

The commit is checked out with `git worktree add` into a temporary directory (removed
afterwards) and its service is run from there with this venv and the same settings
(`load.servers.Stack.tree`). Two figures, each alternating ours and theirs so that a drift of
the machine's speed hits both alike:

- CPU microseconds per request in process (`load/bench_pipeline.py`, run by its path with the
  other checkout as working directory and `PYTHONPATH`): repeatable under load;
- wrk against `POST /v1/verify`, one uvicorn worker each, requests per second and requests per
  server CPU-second: with no scene (the masked name and the pseudonym, as before the catalog)
  and with the `hospital` scene (full name, masked document number, age band: the sealed
  attribute view opened per scan; before the catalog, the same scene got the masked name).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from load.bench_verify import run_wrk, verify_bodies
from load.servers import BIN, ROOT, Stack, cpu_meter, settle, write_lines

ROUNDS = 2
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


def _pipeline_cpu(tree: Path, requests: int) -> dict[str, float]:
    env = {
        **os.environ,
        "PIPELINE_REQUESTS": str(requests),
        "PIPELINE_SINGLE_ONLY": "1",
        "PYTHONPATH": str(tree),
    }
    for attempt in (1, 2):  # once more if a loaded machine made the store time out (503)
        done = subprocess.run(
            [str(BIN / "python"), str(PIPELINE)],
            cwd=tree,
            env=env,
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            break
        failure = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        print(f"bench_pipeline in {tree} failed (attempt {attempt}): {failure}", flush=True)
    done.check_returncode()
    figures: dict[str, float] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return figures


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


def measure(commit: str, *, seconds: int, requests: int = 1000) -> Against:
    figures: dict[str, dict[str, list[float]]] = {"ours": {}, "theirs": {}}
    with checkout(commit) as tree, Stack() as ours_stack, Stack(tree=tree) as theirs_stack:
        trees = {"ours": ROOT, "theirs": tree}
        for _ in range(ROUNDS):
            for side, where in trees.items():
                cpu = _pipeline_cpu(where, requests)
                figures[side].setdefault("cpu", []).append(cpu["verify"])
                figures[side].setdefault("cpu_scene", []).append(cpu["verify_scene"])
                print(f"against {commit}: {side} in process {cpu}", flush=True)
        runners = {
            "ours": _http_side(ours_stack, seconds),
            "theirs": _http_side(theirs_stack, seconds),
        }
        for _ in range(ROUNDS):
            for scene, suffix in ((None, ""), (SCENE, "_scene")):
                for side, run in runners.items():
                    rate, per_cpu = run(scene)
                    figures[side].setdefault("rate" + suffix, []).append(rate)
                    figures[side].setdefault("per_cpu" + suffix, []).append(per_cpu)
                    print(
                        f"against {commit}: {side} wrk scene {scene}: {rate:.0f} req/s, "
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


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def report(result: Against) -> list[str]:
    ours, theirs = result.ours, result.theirs
    rows = [
        (
            "CPU per `POST /v1/verify` in process, no scene (load/bench_pipeline.py)",
            ours.cpu_us,
            theirs.cpu_us,
            "us",
            _mean(theirs.cpu_us) / _mean(ours.cpu_us),
        ),
        (
            "the same with the `hospital` scene (discloses the sealed view)",
            ours.cpu_us_scene,
            theirs.cpu_us_scene,
            "us",
            _mean(theirs.cpu_us_scene) / _mean(ours.cpu_us_scene),
        ),
        (
            "wrk `POST /v1/verify`, 1 uvicorn worker, req/s",
            ours.requests_per_s,
            theirs.requests_per_s,
            "req/s",
            _mean(ours.requests_per_s) / _mean(theirs.requests_per_s),
        ),
        (
            "the same per server CPU-second (audit backlog included)",
            ours.per_cpu_second,
            theirs.per_cpu_second,
            "req/CPU-s",
            _mean(ours.per_cpu_second) / _mean(theirs.per_cpu_second),
        ),
        (
            "wrk `POST /v1/verify` with the `hospital` scene, req/s",
            ours.requests_per_s_scene,
            theirs.requests_per_s_scene,
            "req/s",
            _mean(ours.requests_per_s_scene) / _mean(theirs.requests_per_s_scene),
        ),
        (
            "the same per server CPU-second (audit backlog included)",
            ours.per_cpu_second_scene,
            theirs.per_cpu_second_scene,
            "req/CPU-s",
            _mean(ours.per_cpu_second_scene) / _mean(theirs.per_cpu_second_scene),
        ),
    ]
    lines = [
        f"## Against commit {result.commit} (same run, alternating, {ROUNDS} rounds each)",
        "",
        "Ours / theirs: above 100 % means this commit does better (less CPU, more requests).",
        "",
        "| measure | ours (rounds) | theirs (rounds) | ours / theirs |",
        "| --- | --- | --- | --- |",
    ]
    for name, mine, other, unit, ratio in rows:
        shown_mine = ", ".join(f"{value:,.0f}" for value in mine)
        shown_other = ", ".join(f"{value:,.0f}" for value in other)
        lines.append(f"| {name} | {shown_mine} {unit} | {shown_other} {unit} | **{ratio:.0%}** |")
    return lines
