"""`ssc keys revoke KID --reason compromised` against two running `ssc serve` processes.

The two servers share a throw-away PostgreSQL database, a Redis namespace and the key
directory, as two workers behind a load balancer do (see test_instant_effect.py). The 1 s
bound is the promise of an emergency revocation (every worker refuses the leaked key's tokens
within a second of the command returning), not a speed benchmark: the loop polls for at
most 1 s and records when both verdicts changed.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx

from tests.api.test_instant_effect import holder_on, verdict
from tests.conftest import Cluster
from tests.factories import create_scanner
from tests.servers import SSC, server_env
from token_service import OfflineVerifier, PublicKeySet, Verdict

EFFECT_BOUND_SECONDS = 1.0
POLL_SECONDS = 0.05
TOKENS = 50


async def jwks(http: httpx.AsyncClient) -> dict[str, list[dict[str, str]]]:
    response = await http.get("/.well-known/jwks.json", headers={"Cache-Control": "no-cache"})
    assert response.status_code == 200
    document: dict[str, list[dict[str, str]]] = response.json()
    return document


class TestEmergencyRevocationAcrossProcesses:
    async def test_both_workers_refuse_the_revoked_key_within_1_s_and_sign_with_a_fresh_one(
        self, cluster: Cluster
    ) -> None:
        holder = await holder_on(cluster)
        scanner = await create_scanner(cluster.b, cluster.runtime, scenes=["museum"])
        tokens = []
        for _ in range(TOKENS):
            issued = await cluster.a.get("/v1/me/qr", headers=holder.headers)
            assert issued.status_code == 200, issued.text
            tokens.append(issued.json()["token"])
        assert await verdict(cluster.b, scanner, tokens.pop()) == "valid"
        (active,) = [
            key["kid"] for key in (await jwks(cluster.a))["keys"] if key["status"] == "active"
        ]

        revoked = await asyncio.to_thread(
            subprocess.run,
            [SSC, "keys", "revoke", "--reason", "compromised", "--", active],  # kid may start "-"
            env=server_env(cluster.settings),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert revoked.returncode == 0, revoked.stderr
        changed_at = time.monotonic()
        seen = {"a": "valid", "b": "valid"}
        while time.monotonic() - changed_at <= EFFECT_BOUND_SECONDS and set(seen.values()) != {
            Verdict.REVOKED_KEY.value
        }:
            seen = {
                "a": await verdict(cluster.a, scanner, tokens.pop()),
                "b": await verdict(cluster.b, scanner, tokens.pop()),
            }
            await asyncio.sleep(POLL_SECONDS)
        elapsed = time.monotonic() - changed_at

        assert seen == {"a": "revoked_key", "b": "revoked_key"}
        assert elapsed <= EFFECT_BOUND_SECONDS
        for http in (cluster.a, cluster.b):
            published = {key["kid"] for key in (await jwks(http))["keys"]}
            assert active not in published
        fresh = {}
        for name, http in (("a", cluster.a), ("b", cluster.b)):
            issued = await http.get("/v1/me/qr", headers=holder.headers)
            assert issued.status_code == 200, issued.text
            fresh[name] = issued.json()["token"]
        assert await verdict(cluster.b, scanner, fresh["a"]) == "valid"
        assert await verdict(cluster.a, scanner, fresh["b"]) == "valid"

        # Offline: the next bundle (with the JWKS the scanner fetches as its anchor) refuses it.
        bundle = await cluster.b.get("/v1/scanner/bundle", headers=scanner.headers)
        assert bundle.status_code == 200, bundle.text
        anchor = PublicKeySet.from_jwks(await jwks(cluster.a))
        offline = OfflineVerifier(bundle.content, anchor)
        refused = offline.verify(tokens.pop(), scene="museum")
        assert (refused.verdict, refused.accepted) == (Verdict.UNKNOWN_KEY, False)
        issued = await cluster.a.get("/v1/me/qr", headers=holder.headers)
        assert offline.verify(issued.json()["token"], scene="museum").accepted
