"""Settings (LOAD_* environment variables) and what the scenarios of one Locust run share.

LOAD_TOKENS_FILE     fresh QR tokens, one per line (pre-generated: Locust is not the bottleneck)
LOAD_SCANNERS_FILE   scanner access tokens, one per line ("many scanners")
LOAD_HOLDERS_FILE    JSON lines {"access_token", "pin"}: phones and lifecycle holders
LOAD_RATE            requests per second per user for paced users (default 10)
LOAD_REPLAY_COPIES   how many scanners present each replayed token (default 5)
LOAD_QR_INTERVAL     seconds between a phone's QR refreshes (default 30)
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from locust import events
from locust.env import Environment


def _lines(variable: str) -> list[str]:
    name = os.environ.get(variable)
    if not name:
        return []
    return [line for line in Path(name).read_text().splitlines() if line]


RATE = float(os.environ.get("LOAD_RATE", "10"))
REPLAY_COPIES = int(os.environ.get("LOAD_REPLAY_COPIES", "5"))
QR_INTERVAL = float(os.environ.get("LOAD_QR_INTERVAL", "30"))

tokens: Iterator[str] = iter(_lines("LOAD_TOKENS_FILE"))
scanners = itertools.cycle(_lines("LOAD_SCANNERS_FILE") or ["missing-scanner-token"])
holders: list[dict[str, str]] = [json.loads(line) for line in _lines("LOAD_HOLDERS_FILE")]

violations: Counter[str] = Counter()
"""Correctness violations by kind; any makes the run exit non-zero."""


def next_token() -> str | None:
    return next(tokens, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _fail_on_violations(environment: Environment, **_: object) -> None:
    if violations:
        print(f"CORRECTNESS VIOLATIONS: {dict(violations)}")
        environment.process_exit_code = 3
    else:
        print("correctness checks: no violations")


events.quitting.add_listener(_fail_on_violations)  # type: ignore[no-untyped-call]
