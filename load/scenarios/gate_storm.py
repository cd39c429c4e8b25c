"""(a) Gate storm: many scanners verifying distinct fresh tokens as fast as they can."""

from __future__ import annotations

from locust import FastHttpUser, task

from load.scenarios.common import bearer, next_token, scanners


class GateStorm(FastHttpUser):
    """Every scan a new token, so every answer must be `valid`."""

    def on_start(self) -> None:
        self.headers = bearer(next(scanners))

    @task
    def scan(self) -> None:
        token = next_token()
        if token is None:
            self.environment.runner.quit()
            return
        with self.client.post(
            "/v1/verify", json={"token": token}, headers=self.headers, catch_response=True
        ) as response:
            if response.status_code != 200 or response.json().get("verdict") != "valid":
                response.failure(f"{response.status_code} {response.text[:80]}")
