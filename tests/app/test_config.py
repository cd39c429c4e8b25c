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

    @pytest.mark.parametrize("value", ["10", "0/60", "10/0", "ten/60", "10/86401", "10 / 60"])
    def test_rejects_a_rate_limit_not_of_the_form_count_slash_seconds(self, value: str) -> None:
        with pytest.raises(SettingsError, match="SSC_RATE_LIMIT_LOGIN_PER_CARD"):
            load_settings(rate_limit_login_per_card=value, environment="test")

    def test_rejects_a_trusted_proxy_that_is_not_an_address(self) -> None:
        with pytest.raises(SettingsError, match="SSC_TRUSTED_PROXIES"):
            load_settings(trusted_proxies="10.0.0.1,proxy.example", environment="test")

    def test_trusted_proxies_are_addresses_or_networks(self, tmp_path: Path) -> None:
        settings = load_settings(
            trusted_proxies=" 10.0.0.1, 10.1.0.0/16 ,::1", environment="test", var_dir=tmp_path
        )
        assert settings.trusted_proxies == "10.0.0.1,10.1.0.0/16,::1"

    def test_the_metrics_listener_is_not_the_api_port(self) -> None:
        with pytest.raises(SettingsError, match="SSC_METRICS_PORT"):
            load_settings(port=8000, metrics_port=8000, environment="test")

    def test_docs_are_exposed_outside_production_unless_said_otherwise(
        self, tmp_path: Path
    ) -> None:
        assert load_settings(environment="test", var_dir=tmp_path).docs_exposed
        assert not load_settings(
            environment="test", expose_docs=False, var_dir=tmp_path
        ).docs_exposed


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
