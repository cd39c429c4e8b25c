"""(c) Mixed: 90 % verify, 8 % QR refresh, 2 % lifecycle (report loss, scan, cancel loss).

The lifecycle task checks the contract end to end: a token fetched before the loss report
must verify as `card_lost` after it, and the card must verify `valid` again after the loss is
cancelled. Each lifecycle holder is used by one task at a time (the first line of
LOAD_HOLDERS_FILE is the phones' holder; the others are lifecycle holders).
"""

from __future__ import annotations

import json
import urllib.request

from locust import FastHttpUser, events, task
from locust.env import Environment

from load.scenarios.common import bearer, holders, next_token, scanners, violations

_free_lifecycle = list(holders[1:])
_lifecycle_routes = {"/v1/me/card/report-loss", "/v1/me/card/cancel-loss"}
_state = {"lifecycle": False}


def _detect_lifecycle_routes(environment: Environment, **_: object) -> None:
    with urllib.request.urlopen(f"{environment.host}/openapi.json", timeout=5) as answer:
        paths = set(json.load(answer)["paths"])
    _state["lifecycle"] = _lifecycle_routes <= paths
    if not _state["lifecycle"]:
        print("mixed: lifecycle routes absent, the 2 % lifecycle share is skipped")


events.test_start.add_listener(_detect_lifecycle_routes)  # type: ignore[no-untyped-call]


class Mixed(FastHttpUser):
    def on_start(self) -> None:
        self.scanner = bearer(next(scanners))
        self.phone = bearer(holders[0]["access_token"]) if holders else {}

    def _verdict(self, token: str, name: str = "/v1/verify") -> str | None:
        with self.client.post(
            "/v1/verify",
            json={"token": token},
            headers=self.scanner,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.text[:80]}")
                return None
            verdict: str = response.json()["verdict"]
            return verdict

    @task(90)
    def verify(self) -> None:
        token = next_token()
        if token is None:
            self.environment.runner.quit()
            return
        if self._verdict(token) != "valid":
            violations["fresh token of an active card not valid"] += 1

    @task(8)
    def refresh_qr(self) -> None:
        self.client.get("/v1/me/qr", headers=self.phone)

    @task(2)
    def lifecycle(self) -> None:
        if not _state["lifecycle"] or not _free_lifecycle:
            return
        holder = _free_lifecycle.pop()
        try:
            self._loss_and_recovery(holder)
        finally:
            _free_lifecycle.append(holder)

    def _loss_and_recovery(self, holder: dict[str, str]) -> None:
        headers = bearer(holder["access_token"])
        before = self.client.get("/v1/me/qr", headers=headers, name="lifecycle: qr")
        if before.status_code != 200:
            return
        lost = self.client.post("/v1/me/card/report-loss", headers=headers, json={})
        if lost.status_code >= 300:
            return
        verdict = self._verdict(before.json()["token"], name="lifecycle: scan while lost")
        if verdict != "card_lost":
            violations["scan after loss not card_lost"] += 1
        recovered = self.client.post(
            "/v1/me/card/cancel-loss", headers=headers, json={"pin": holder["pin"]}
        )
        if recovered.status_code >= 300:
            violations["cancel-loss refused"] += 1
            return
        after = self.client.get("/v1/me/qr", headers=headers, name="lifecycle: qr")
        if after.status_code == 200:
            again = self._verdict(after.json()["token"], name="lifecycle: scan after recovery")
            if again != "valid":
                violations["scan after cancel-loss not valid"] += 1
