"""Emergency key revocation through the service: verify, JWKS, signed lists, bundles, workers.

`revoke_key` (what `ssc keys revoke` runs) persists the revocation in the key ring and
announces it on the store; these tests hold the service to the effects an operator relies on.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from api.app import create_app
from app.cli import cli
from app.config import Settings
from app.runtime import Runtime
from app.trust.background import TrustSync
from app.trust.key_rotation import InvalidKeyId, parse_kid, revoke_key
from tests.app.trust.support import create_listed_card, listed_token
from tests.factories import ScannerCredentials, create_scanner, persisted_audit
from token_service import (
    KeyRingError,
    OfflineVerifier,
    PublicKeySet,
    Verdict,
    verify_status_list_cwt,
)
from token_service.keys import RevocationReason, b64url

COMPROMISED = RevocationReason.COMPROMISED


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


@pytest.fixture
async def scanner(client: httpx.AsyncClient, runtime: Runtime) -> ScannerCredentials:
    return await create_scanner(client, runtime, scenes=["museum"])


async def verdict(client: httpx.AsyncClient, scanner: ScannerCredentials, token: str) -> str:
    response = await client.post(
        "/v1/verify", json={"token": token, "scene": "museum"}, headers=scanner.headers
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["verdict"]
    return value


async def published_keys(client: httpx.AsyncClient) -> PublicKeySet:
    return PublicKeySet.from_jwks((await client.get("/.well-known/jwks.json")).json())


async def bundle(client: httpx.AsyncClient, scanner: ScannerCredentials) -> bytes:
    response = await client.get("/v1/scanner/bundle", headers=scanner.headers)
    assert response.status_code == 200, response.text
    return response.content


def cli_env(settings: Settings) -> dict[str, str | None]:
    def secret(name: str) -> str:
        value = getattr(settings, name)
        assert value is not None
        text: str = value.get_secret_value()
        return text

    return {
        "SSC_ENVIRONMENT": "test",
        "SSC_DATABASE_URL": settings.database_url,
        "SSC_REDIS_URL": settings.redis_url,
        "SSC_REDIS_NAMESPACE": settings.redis_namespace,
        "SSC_VAR_DIR": str(settings.var_dir),
        "SSC_KEY_DIR": str(settings.key_dir),
        "SSC_KEY_ENCRYPTION_KEY": secret("key_encryption_key"),
        "SSC_DATA_KEY": secret("data_key"),
        "SSC_TOKEN_SECRET": secret("token_secret"),
    }


class TestRevocationInTheService:
    async def test_tokens_of_the_revoked_key_answer_revoked_key_and_new_tokens_verify(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_listed_card(runtime)
        old = [listed_token(runtime, card) for _ in range(2)]
        assert await verdict(client, scanner, old[0]) == "valid"
        revoked = runtime.keyring.signing_key.kid

        revocation = await revoke_key(runtime.keyring, runtime.store, revoked, COMPROMISED, "t")

        assert revocation.replaced_active
        assert await verdict(client, scanner, old[1]) == Verdict.REVOKED_KEY
        fresh = listed_token(runtime, card)
        assert await verdict(client, scanner, fresh) == "valid"
        keys = await published_keys(client)
        assert revoked not in keys
        assert revocation.active in keys
        audited = await persisted_audit(runtime, "keys.revoked")
        assert audited == [{"reason": "compromised", "active": b64url(revocation.active)}]

    async def test_the_next_bundle_leaves_the_key_out_and_offline_verify_refuses_its_tokens(
        self, client: httpx.AsyncClient, runtime: Runtime, scanner: ScannerCredentials
    ) -> None:
        card = await create_listed_card(runtime)
        old = listed_token(runtime, card)
        # A bundle and status list signed before the revocation are cached now.
        before = await bundle(client, scanner)
        assert OfflineVerifier(before, await published_keys(client)).verify(old).accepted

        await revoke_key(
            runtime.keyring, runtime.store, runtime.keyring.signing_key.kid, COMPROMISED, "t"
        )

        anchor = await published_keys(client)  # the scanner re-fetches the JWKS
        offline = OfflineVerifier(await bundle(client, scanner), anchor)
        refused = offline.verify(old)
        assert (refused.verdict, refused.accepted) == (Verdict.UNKNOWN_KEY, False)
        assert offline.verify(listed_token(runtime, card)).accepted

    async def test_the_status_list_is_re_signed_by_the_fresh_key(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        issuer = runtime.settings.issuer
        path = f"/v1/status-lists/{issuer}"
        headers = {"Accept": "application/statuslist+cwt"}
        assert (await client.get(path, headers=headers)).status_code == 200  # cached
        await revoke_key(
            runtime.keyring, runtime.store, runtime.keyring.signing_key.kid, COMPROMISED, "t"
        )
        signed = await client.get(path, headers=headers)
        assert signed.status_code == 200, signed.text
        listed = verify_status_list_cwt(
            signed.content, await published_keys(client), now=time.time()
        )
        assert listed.issued_at <= time.time()

    async def test_an_unknown_kid_changes_nothing(self, runtime: Runtime) -> None:
        before = runtime.keyring.jwks()
        with pytest.raises(KeyRingError):
            await revoke_key(runtime.keyring, runtime.store, b"\x00" * 8, COMPROMISED, "t")
        assert runtime.keyring.jwks() == before

    async def test_the_api_schema_names_the_verdict(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        assert "revoked_key" in schema["components"]["schemas"]["Verdict"]["enum"]


class TestOtherWorkers:
    # Workers share the announcement through Redis; the memory store is one process.
    @pytest.mark.parametrize("settings", ["servers"], indirect=True)
    async def test_another_worker_refuses_the_key_once_announced(
        self, settings: Settings, runtime: Runtime
    ) -> None:
        other = create_app(settings)
        async with other.router.lifespan_context(other):
            worker: Runtime = other.state.runtime
            card = await create_listed_card(runtime)
            old = listed_token(worker, card)
            assert worker.token_verifier.verify(old).valid
            revoked = worker.keyring.signing_key.kid
            await revoke_key(runtime.keyring, runtime.store, revoked, COMPROMISED, "t")
            for _ in range(100):  # bounded wait for the message, not a speed assertion
                if worker.token_verifier.verify(old).verdict is Verdict.REVOKED_KEY:
                    break
                await asyncio.sleep(0.01)
            assert worker.token_verifier.verify(old).verdict is Verdict.REVOKED_KEY
            assert worker.keyring.signing_key.kid == runtime.keyring.signing_key.kid
            assert worker.token_verifier.verify(listed_token(worker, card)).valid

    async def test_a_worker_that_missed_the_message_catches_up_at_its_tick(
        self, app: FastAPI, settings: Settings
    ) -> None:
        runtime: Runtime = app.state.runtime
        worker = await Runtime.start(settings)  # another process: its own ring, no listener
        try:
            old = worker.token_issuer.issue(b"\x01" * 16).token
            revoked = runtime.keyring.signing_key.kid
            runtime.keyring.revoke(revoked, COMPROMISED)  # on disk, never announced
            assert worker.token_verifier.verify(old).valid
            await TrustSync(worker).tick()
            assert worker.token_verifier.verify(old).verdict is Verdict.REVOKED_KEY
        finally:
            await worker.close()


class TestCommand:
    async def test_ssc_keys_revoke_reaches_the_running_service(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        runtime: Runtime,
        scanner: ScannerCredentials,
    ) -> None:
        card = await create_listed_card(runtime)
        old = listed_token(runtime, card)
        kid = b64url(runtime.keyring.signing_key.kid)

        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["keys", "revoke", "--reason", "compromised", "--", kid],  # a kid may begin with "-"
            env=cli_env(settings),
        )

        assert result.exit_code == 0, result.output
        assert f"revoked {kid} (compromised)" in result.stdout
        if settings.redis_url is None:  # one process, no shared store: applied at the tick
            assert "SSC_KEY_SYNC_INTERVAL" in result.stdout
            await TrustSync(runtime).tick()
        for _ in range(100):  # bounded wait for the announcement
            if (seen := await verdict(client, scanner, old)) == Verdict.REVOKED_KEY:
                break
            await asyncio.sleep(0.01)
        assert seen == Verdict.REVOKED_KEY
        listed = await asyncio.to_thread(
            CliRunner().invoke, cli, ["keys", "list"], env=cli_env(settings)
        )
        assert f"{kid}  revoked" in listed.stdout
        assert "reason compromised" in listed.stdout

    @pytest.mark.parametrize("settings", ["embedded"], indirect=True)
    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (["not-a-kid!", "--reason", "compromised"], "is not a key id"),
            (["AAAAAAAAAAA", "--reason", "compromised"], "nothing revoked: no key"),
        ],
    )
    def test_a_kid_that_is_not_ours_exits_2_and_changes_nothing(
        self, settings: Settings, tmp_path: Path, arguments: list[str], message: str
    ) -> None:
        result = CliRunner().invoke(cli, ["keys", "revoke", *arguments], env=cli_env(settings))
        assert result.exit_code == 2
        assert message in result.stderr

    def test_the_reason_is_required(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(cli, ["keys", "revoke", "AAAAAAAAAAA"])
        assert result.exit_code == 2
        assert "--reason" in result.output


class TestKeyIds:
    def test_base64url_and_hex_name_the_same_key(self) -> None:
        kid = bytes.fromhex("981d69984228ff8f")
        assert parse_kid("mB1pmEIo_48") == parse_kid("981d69984228ff8f") == kid

    @pytest.mark.parametrize("text", ["", "mB1pmEIo_4", "mB1pmEIo_48=", "zz1d69984228ff8f", "!"])
    def test_anything_else_is_refused(self, text: str) -> None:
        with pytest.raises(InvalidKeyId):
            parse_kid(text)
