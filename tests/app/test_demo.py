"""`ssc demo`: the seeded data carries the README's journey end to end."""

import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from app.cli import cli
from app.config import new_secret
from app.demo import demo_json, seed_demo


class TestDemoJourney:
    async def test_login_qr_verify_then_replayed(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        seed = await seed_demo(app.state.runtime)
        login = await client.post(
            "/v1/auth/login",
            json={"card_number": seed.card_number, "pin": seed.pin, "device_id": seed.device_id},
        )
        assert login.status_code == 200, login.text
        holder = {"Authorization": f"Bearer {login.json()['access_token']}"}
        qr = await client.get("/v1/me/qr", headers=holder)
        assert qr.status_code == 200, qr.text
        png = await client.get("/v1/me/qr.png", headers=holder)
        assert png.content.startswith(b"\x89PNG")
        scanner = {"Authorization": f"Bearer {seed.scanner_access_token}"}
        first = await client.post("/v1/verify", json={"token": qr.json()["token"]}, headers=scanner)
        again = await client.post("/v1/verify", json={"token": qr.json()["token"]}, headers=scanner)
        assert first.json()["verdict"] == "valid"
        assert first.json()["holder"]["masked_name"] == "张*三"
        assert again.json()["verdict"] == "replayed"

    async def test_json_has_the_documented_shape(self, app: FastAPI) -> None:
        seed = await seed_demo(app.state.runtime)
        document = demo_json(seed, "http://127.0.0.1:8000")
        assert set(document) == {"base_url", "holder", "scanner", "relying_party"}
        assert set(document["relying_party"]) == {"client_id", "client_secret", "redirect_uri"}  # type: ignore[arg-type]
        assert {"card_number", "pin", "access_token"} <= set(document["holder"])  # type: ignore[arg-type]
        assert {"client_id", "client_secret", "access_token"} <= set(document["scanner"])  # type: ignore[arg-type]


def demo_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SSC_ENVIRONMENT": "test",
        "SSC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ssc.db",
        "SSC_VAR_DIR": str(tmp_path),
        "SSC_KEY_DIR": str(tmp_path / "keys"),
        "SSC_KEY_ENCRYPTION_KEY": new_secret(),
        "SSC_DATA_KEY": new_secret(),
        "SSC_TOKEN_SECRET": new_secret(),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SSC_REDIS_URL", raising=False)
    monkeypatch.delenv("SSC_PUBLIC_URL", raising=False)


def test_cli_prints_json_for_scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo_environment(tmp_path, monkeypatch)
    result = CliRunner().invoke(cli, ["demo", "--json", "--base-url", "http://127.0.0.1:9"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["base_url"] == "http://127.0.0.1:9"
    assert document["holder"]["pin"] == "284617"
    assert document["scanner"]["client_id"].startswith("scn_")


def test_the_journey_uses_the_public_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo_environment(tmp_path, monkeypatch)
    monkeypatch.setenv("SSC_PUBLIC_URL", "https://ecard.example.cn")
    result = CliRunner().invoke(cli, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["base_url"] == "https://ecard.example.cn"
