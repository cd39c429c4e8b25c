"""(d) Replay attack: each token presented by LOAD_REPLAY_COPIES scanners; exactly one `valid`."""

from __future__ import annotations

from collections import Counter

from locust import FastHttpUser, events, task
from locust.env import Environment

from load.scenarios.common import REPLAY_COPIES, bearer, next_token, scanners, violations

_presentations: list[str] = []
_valid: Counter[str] = Counter()
_answered: Counter[str] = Counter()


def _next_presentation() -> str | None:
    if not _presentations:
        token = next_token()
        if token is None:
            return None
        _presentations.extend([token] * REPLAY_COPIES)
    return _presentations.pop()


class ReplayAttack(FastHttpUser):
    def on_start(self) -> None:
        self.headers = bearer(next(scanners))

    @task
    def present(self) -> None:
        token = _next_presentation()
        if token is None:
            self.environment.runner.quit()
            return
        with self.client.post(
            "/v1/verify", json={"token": token}, headers=self.headers, catch_response=True
        ) as response:
            verdict = response.json().get("verdict") if response.status_code == 200 else None
            if verdict not in ("valid", "replayed"):
                response.failure(f"{response.status_code} {response.text[:80]}")
                return
            _answered[token] += 1
            _valid[token] += verdict == "valid"


def _exactly_one_valid(environment: Environment, **_: object) -> None:
    for token, answers in _answered.items():
        if answers == REPLAY_COPIES and _valid[token] != 1:
            violations["replayed token not valid exactly once"] += 1
    print(f"replay: {len(_answered)} tokens, {sum(_valid.values())} valid answers")


events.test_stop.add_listener(_exactly_one_valid)  # type: ignore[no-untyped-call]
