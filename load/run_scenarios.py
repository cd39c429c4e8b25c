"""Runs the four Locust scenarios headless against a server it starts, and checks correctness.

Run: `.venv/bin/python -m load.run_scenarios` (LOAD_DURATION seconds per scenario, default 20;
LOAD_USERS, default 20; LOAD_WORKERS API workers, default 2). Starts its own Redis and API on
127.0.0.1 (SQLite in a temporary directory), seeds four holders and scanners with
`ssc demo --json`, pre-generates the tokens, then runs gate storm, phones, mixed and replay
one after another (CSV files in load/out/), and stops everything. Exits non-zero when a
scenario failed a request or a correctness check (e.g. a scan after a loss not `card_lost`,
a replayed token not `valid` exactly once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from load.servers import BIN, ROOT, Stack, write_lines

DURATION = int(os.environ.get("LOAD_DURATION", "20"))
USERS = int(os.environ.get("LOAD_USERS", "20"))
WORKERS = int(os.environ.get("LOAD_WORKERS", "2"))
OUT = ROOT / "load" / "out"
SEEDS = 4


def main() -> int:
    OUT.mkdir(exist_ok=True)
    failed: list[str] = []
    with Stack() as stack:
        stack.start_redis()
        api = stack.start_api(workers=WORKERS)
        seeds = [stack.demo(api.url) for _ in range(SEEDS)]
        holders = [seed["holder"] for seed in seeds]
        scanners = [seed["scanner"] for seed in seeds]
        assert all(isinstance(item, dict) for item in holders + scanners)
        write_lines(
            stack.root / "scanners.txt",
            [scanner["access_token"] for scanner in scanners],  # type: ignore[index]
        )
        write_lines(
            stack.root / "holders.jsonl",
            [
                json.dumps({"access_token": h["access_token"], "pin": h["pin"]})  # type: ignore[index]
                for h in holders
            ],
        )
        card_number = holders[0]["card_number"]  # type: ignore[index]
        runs = [
            ("gate_storm", "GateStorm", USERS, DURATION, 3000),
            ("phones", "PhoneRefresh", 10 * USERS, max(DURATION, 35), 0),
            ("mixed", "Mixed", USERS, DURATION, 3000),
            ("replay", "ReplayAttack", USERS, DURATION, 600),
        ]
        for name, user_class, users, seconds, tokens_per_second in runs:
            tokens = stack.issue_tokens(card_number, tokens_per_second * seconds)
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "LOAD_TOKENS_FILE": str(write_lines(stack.root / f"{name}.txt", tokens)),
                "LOAD_SCANNERS_FILE": str(stack.root / "scanners.txt"),
                "LOAD_HOLDERS_FILE": str(stack.root / "holders.jsonl"),
            }
            command = [
                str(BIN / "locust"),
                "-f",
                str(ROOT / "load" / "locustfile.py"),
                user_class,
                "--headless",
                "--host",
                api.url,
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{seconds}s",
                "--csv",
                str(OUT / name),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ]
            print(f"--- scenario {name}: {users} users, {seconds} s", flush=True)
            code = subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
            if code != 0:
                failed.append(f"{name} (exit {code})")
    print("FAILED: " + ", ".join(failed) if failed else "all scenarios passed their checks")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
