"""`ssc verify-offline`: a QR image decoded by a real decoder, checked against a bundle."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from app.cards.models import CardStatus
from app.cli import cli
from app.runtime import Runtime
from app.trust.issuers import own_issuer
from app.trust.status_lists import published_status_list
from qr import render
from tests.app.trust.support import create_listed_card, listed_token, set_card_status
from tests.factories import ScannerCredentials, create_scanner
from token_service import build_bundle

runner = CliRunner()


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    return app.state.runtime  # type: ignore[no-any-return]


@pytest.fixture
async def scanner(client: httpx.AsyncClient, runtime: Runtime) -> ScannerCredentials:
    return await create_scanner(client, runtime, scenes=["museum"])


@pytest.fixture
async def anchor(client: httpx.AsyncClient, tmp_path: Path) -> Path:
    """The JWK set a scanner vendor installs: our published keys."""
    path = tmp_path / "anchor.json"
    path.write_bytes((await client.get("/.well-known/jwks.json")).content)
    return path


async def download(client: httpx.AsyncClient, scanner: ScannerCredentials, path: Path) -> Path:
    response = await client.get("/v1/scanner/bundle", headers=scanner.headers)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def qr_png(token: str, path: Path) -> Path:
    path.write_bytes(render(token, "png"))
    return path


def verify(bundle: Path, anchor: Path, *args: str) -> tuple[int, dict[str, str]]:
    result = runner.invoke(
        cli, ["verify-offline", "--bundle", str(bundle), "--anchor", str(anchor), *args]
    )
    lines = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    return result.exit_code, lines


class TestVerifyOffline:
    async def test_a_scanned_png_is_valid_then_replayed(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        scanner: ScannerCredentials,
        anchor: Path,
        tmp_path: Path,
    ) -> None:
        card = await create_listed_card(runtime)
        image = qr_png(listed_token(runtime, card), tmp_path / "qr.png")
        bundle = await download(client, scanner, tmp_path / "bundle.cwt")

        code, first = verify(bundle, anchor, "--image", str(image), "--scene", "museum")
        assert (code, first["verdict"], first["accepted"], first["stale"]) == (
            0,
            "valid",
            "yes",
            "no",
        )
        assert first["bundle age"].endswith(f"(max {runtime.settings.bundle_max_age} s)")
        # The replay cache lives in a file next to the bundle: a new process still knows.
        code, second = verify(bundle, anchor, "--image", str(image))
        assert (code, second["verdict"]) == (1, "replayed")

    async def test_a_card_reported_lost_fails_once_the_bundle_is_refreshed(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        scanner: ScannerCredentials,
        anchor: Path,
        tmp_path: Path,
    ) -> None:
        card = await create_listed_card(runtime)
        token = listed_token(runtime, card)
        bundle = await download(client, scanner, tmp_path / "bundle.cwt")
        await set_card_status(runtime, card, CardStatus.lost)
        await download(client, scanner, bundle)
        code, lines = verify(bundle, anchor, token)
        assert (code, lines["verdict"], lines["accepted"]) == (1, "card_lost", "no")

    async def test_a_stale_bundle_admits_no_one(
        self, runtime: Runtime, scanner: ScannerCredentials, anchor: Path, tmp_path: Path
    ) -> None:
        card = await create_listed_card(runtime)
        issued_at = int(time.time()) - 120
        status_list = await published_status_list(runtime, runtime.settings.issuer, now=issued_at)
        old = build_bundle(
            keyring=runtime.keyring,
            client_id=scanner.client_id,
            scenes={"museum"},
            issuers=[own_issuer(runtime)],
            status_lists={runtime.settings.issuer: status_list.cwt},
            issued_at=issued_at,
            max_age=60,
        )
        bundle = tmp_path / "old.cwt"
        bundle.write_bytes(old.data)
        code, lines = verify(bundle, anchor, listed_token(runtime, card))
        assert (code, lines["verdict"], lines["accepted"], lines["stale"]) == (
            1,
            "valid",
            "no",
            "yes",
        )

    async def test_unusable_inputs_exit_2_with_a_message(
        self,
        client: httpx.AsyncClient,
        scanner: ScannerCredentials,
        anchor: Path,
        tmp_path: Path,
    ) -> None:
        bundle = await download(client, scanner, tmp_path / "bundle.cwt")
        junk = tmp_path / "junk.png"
        junk.write_bytes(b"not an image")
        stranger = tmp_path / "stranger.json"
        stranger.write_text(json.dumps({"keys": []}))
        cases = {
            "no image": verify(bundle, anchor, "--image", str(junk)),
            "wrong anchor": verify(bundle, stranger, "SSC1:ABC"),
            "both": verify(bundle, anchor, "SSC1:ABC", "--image", str(junk)),
        }
        assert {name: code for name, (code, _) in cases.items()} == dict.fromkeys(cases, 2)

    async def test_garbage_token_is_malformed_not_a_crash(
        self, client: httpx.AsyncClient, scanner: ScannerCredentials, anchor: Path, tmp_path: Path
    ) -> None:
        bundle = await download(client, scanner, tmp_path / "bundle.cwt")
        code, lines = verify(bundle, anchor, "SSC1:%%%")
        assert (code, lines["verdict"]) == (1, "malformed")


class TestVerifyOfflineInputs:
    """What the operator is told when the command line itself is short of something."""

    def test_without_a_token_or_image_it_asks_for_one(self, tmp_path: Path) -> None:
        bundle = tmp_path / "bundle.cwt"
        bundle.write_bytes(b"whatever")
        result = runner.invoke(cli, ["verify-offline", "--bundle", str(bundle)])
        assert result.exit_code == 2
        assert "nothing to verify: give the scanned TOKEN or --image" in result.output
        assert "not both" not in result.output

    def test_a_missing_bundle_file_is_called_missing(self, tmp_path: Path) -> None:
        anchor = tmp_path / "anchor.json"
        anchor.write_text(json.dumps({"keys": []}))
        missing = tmp_path / "no-such-bundle.cwt"
        result = runner.invoke(
            cli, ["verify-offline", "--bundle", str(missing), "--anchor", str(anchor), "SSC1:ABC"]
        )
        assert result.exit_code == 2
        assert f"{missing}: no such bundle file" in result.output
        assert "malformed" not in result.output
