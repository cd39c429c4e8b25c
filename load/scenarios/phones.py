"""(b) Phones refreshing their QR code every LOAD_QR_INTERVAL seconds (30 by default)."""

from __future__ import annotations

import itertools

from locust import FastHttpUser, constant, task

from load.scenarios.common import QR_INTERVAL, bearer, holders

_phones = itertools.cycle(holders or [{"access_token": "missing-holder-token"}])


class PhoneRefresh(FastHttpUser):
    wait_time = constant(QR_INTERVAL)

    def on_start(self) -> None:
        self.headers = bearer(next(_phones)["access_token"])

    @task
    def refresh(self) -> None:
        with self.client.get("/v1/me/qr", headers=self.headers, catch_response=True) as response:
            if response.status_code != 200 or not response.json().get("token"):
                response.failure(f"{response.status_code} {response.text[:80]}")
