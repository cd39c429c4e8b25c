import json
import logging
from pathlib import Path

import pytest

from api.app import create_app
from app.config import SECRET_NAMES, Environment, SettingsError, load_settings, new_secret


class TestSettingsValidation:
    def test_rejects_a_synchronous_database_driver_naming_the_variable(self) -> None:
        with pytest.raises(SettingsError, match="SSC_DATABASE_URL"):
            load_settings(database_url="postgresql://localhost/x", environment="test")

    def test_rejects_an_issuer_code_outside_the_alphabet(self) -> None:
        with pytest.raises(SettingsError, match="SSC_ISSUER"):
            load_settings(issuer="bad issuer", environment="test")

    def test_rejects_a_secret_of_the_wrong_length(self) -> None:
        with pytest.raises(SettingsError, match="32 bytes"):
            load_settings(data_key="c2hvcnQ", environment="test")

    def test_rejects_token_lifetime_out_of_range(self) -> None:
        with pytest.raises(SettingsError, match="SSC_TOKEN_LIFETIME"):
            load_settings(token_lifetime=5, environment="test")

    def test_production_refuses_to_start_without_secrets(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match="SSC_KEY_ENCRYPTION_KEY"):
            load_settings(environment="production", var_dir=tmp_path)
        assert not (tmp_path / "dev-secrets.json").exists()

    def test_empty_redis_url_means_memory_store(self, tmp_path: Path) -> None:
        settings = load_settings(redis_url="", environment="test", var_dir=tmp_path)
        assert settings.redis_url is None


class TestDevelopmentSecrets:
    def test_are_generated_once_and_reused(self, tmp_path: Path) -> None:
        first = load_settings(environment="development", var_dir=tmp_path)
        second = load_settings(environment="development", var_dir=tmp_path)
        assert first.secret("data_key") == second.secret("data_key")
        assert len(first.secret("key_encryption_key")) == 32
        stored = json.loads((tmp_path / "dev-secrets.json").read_text())
        assert set(stored) == {"key_encryption_key", "data_key", "token_secret"}
        assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0

    def test_explicit_secrets_win(self, tmp_path: Path) -> None:
        secret = new_secret()
        settings = load_settings(
            environment=Environment.development, var_dir=tmp_path, data_key=secret
        )
        assert settings.data_key is not None
        assert settings.data_key.get_secret_value() == secret


class TestPublicUrl:
    def test_unset_it_is_where_the_service_listens(self, tmp_path: Path) -> None:
        settings = load_settings(environment="test", var_dir=tmp_path, port=8123)
        assert settings.public_url == "http://127.0.0.1:8123"

    @pytest.mark.parametrize(
        ("host", "url"),
        [
            ("0.0.0.0", "http://127.0.0.1:9000"),
            ("::", "http://127.0.0.1:9000"),
            ("::1", "http://[::1]:9000"),
            ("10.1.2.3", "http://10.1.2.3:9000"),
        ],
    )
    def test_a_wildcard_host_is_reached_on_loopback(
        self, tmp_path: Path, host: str, url: str
    ) -> None:
        settings = load_settings(environment="test", var_dir=tmp_path, host=host, port=9000)
        assert settings.public_url == url

    def test_a_set_url_is_kept(self, tmp_path: Path) -> None:
        settings = load_settings(
            environment="test", var_dir=tmp_path, port=9000, public_url="https://ecard.example.cn"
        )
        assert settings.public_url == "https://ecard.example.cn"
        assert not settings.public_url_is_loopback

    @pytest.mark.parametrize(
        "url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"]
    )
    def test_loopback_urls_are_recognised(self, tmp_path: Path, url: str) -> None:
        settings = load_settings(environment="test", var_dir=tmp_path, public_url=url)
        assert settings.public_url_is_loopback

    def test_production_warns_at_start_about_a_loopback_url(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        secrets = {name: new_secret() for name in SECRET_NAMES}
        production = {"environment": "production", "var_dir": tmp_path, **secrets}
        with caplog.at_level(logging.WARNING, logger="ssc.api"):
            create_app(load_settings(**production))
        assert "SSC_PUBLIC_URL is http://127.0.0.1:8000, a loopback address" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ssc.api"):
            create_app(load_settings(**production, public_url="https://ecard.example.cn"))
        assert "SSC_PUBLIC_URL" not in caplog.text
