import json
from pathlib import Path

import pytest

from app.config import Environment, SettingsError, load_settings, new_secret


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
