"""Locust entry point: `locust -f load/locustfile.py <UserClass> --headless ...`.

Scenarios live in load/scenarios/ (settings in LOAD_* variables, see load/scenarios/common.py);
`load/run_scenarios.py` starts the servers, seeds them and runs every scenario headless.
`VerifyAtRate` is the paced single-scan user of load/run_benchmarks.py's latency run.
"""

from __future__ import annotations

from locust import FastHttpUser, constant_throughput, task

from load.scenarios.common import RATE, bearer, next_token, scanners
from load.scenarios.gate_storm import GateStorm
from load.scenarios.mixed import Mixed
from load.scenarios.phones import PhoneRefresh
from load.scenarios.replay import ReplayAttack

__all__ = ["GateStorm", "Mixed", "PhoneRefresh", "ReplayAttack", "VerifyAtRate"]


class VerifyAtRate(FastHttpUser):
    """Distinct fresh tokens at LOAD_RATE requests per second per user (open-ish loop)."""

    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        self.headers = bearer(next(scanners))

    @task
    def scan(self) -> None:
        token = next_token()
        if token is None:
            self.environment.runner.quit()
            return
        self.client.post("/v1/verify", json={"token": token}, headers=self.headers)
