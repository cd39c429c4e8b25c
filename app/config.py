"""One settings object, read from `SSC_*` environment variables (and `.env`), validated at start.

Secrets have no defaults outside development: a production start without them fails with a
message naming the missing variable. In development the first start generates them into
`<var_dir>/dev-secrets.json` so `make run` needs no set-up.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_NAMES = ("key_encryption_key", "data_key", "token_secret")
# A rate limit setting: "COUNT/SECONDS", e.g. "10/60" (10 requests a minute).
RATE_LIMIT_PATTERN = r"^[1-9][0-9]{0,6}/[1-9][0-9]{0,5}$"
MAX_RATE_LIMIT_WINDOW = 24 * 3600


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class SettingsError(Exception):
    """Settings are missing or invalid; the message says which and how to fix it."""


def decode_secret(value: str, name: str) -> bytes:
    """Secrets are 32 random bytes, base64url (padding optional)."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{name} must be base64url") from error
    if len(raw) != 32:
        raise ValueError(f"{name} must decode to 32 bytes, got {len(raw)}")
    return raw


def derived_public_url(host: str, port: int) -> str:
    """The base URL of a service bound to `host:port`, as seen from this machine: a wildcard
    address (0.0.0.0, ::) is reached as 127.0.0.1."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a bind address read, not bound)
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def parse_master_keys(value: str) -> dict[str, bytes]:
    """`ID:KEY,ID:KEY` -> {id: key}, in the order given (the first is the active one)."""
    keys: dict[str, bytes] = {}
    for entry in value.split(","):
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key_id):
            raise ValueError("each entry is ID:KEY, ID of 1-32 letters, digits, - or _")
        if key_id in keys:
            raise ValueError(f"master key id {key_id!r} is given twice")
        keys[key_id] = decode_secret(encoded, f"master key {key_id!r}")
    return keys


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SSC_", env_file=".env", extra="ignore")

    environment: Environment = Environment.development
    database_url: str = "sqlite+aiosqlite:///./var/ssc.db"
    redis_url: str | None = Field(default=None, description="None: in-process memory store")
    redis_namespace: str = Field(default="ssc", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    redis_claim_channel: bool = Field(
        default=True,
        description="Claims travel on a ClaimChannel (plain TCP Redis); false: through redis-py",
    )
    var_dir: Path = Path("var")
    key_dir: Path = Path("var/keys")
    key_encryption_key: SecretStr | None = None
    data_key: SecretStr | None = None
    token_secret: SecretStr | None = None
    issuer: str = "360000"
    token_lifetime: int = Field(default=60, ge=10, le=600)
    qr_refresh_after: int = Field(default=30, ge=5, le=600)
    clock_skew: float = Field(default=5.0, ge=0, le=120)
    offline_window: int = Field(default=72 * 3600, ge=0, le=30 * 24 * 3600)
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    licence_bulk_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """The body limit of `POST /v1/licences/bulk` (JSON Lines, thousands of licences)."""
    licence_bulk_max_lines: int = Field(default=5000, ge=1, le=100_000)
    presentation_lifetime: int = Field(default=120, ge=10, le=600)
    """Seconds a licence presentation QR stays valid (single use)."""
    consent_request_ttl: int = Field(default=7 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    """Seconds a pending consent request waits for the holder before it expires."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    auto_approve_applications: bool = False
    access_token_ttl: int = Field(default=600, ge=60, le=3600)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=3600)
    scanner_token_ttl: int = Field(default=3600, ge=60, le=24 * 3600)
    pin_max_failures: int = Field(default=5, ge=1, le=20)
    pin_max_failures_unbound: int = Field(default=5, ge=1, le=20)
    pin_lockout_seconds: int = Field(default=15 * 60, ge=1)
    misuse_max_speed_kmh: float = Field(default=300.0, gt=0, le=2000)
    misuse_max_scans_per_minute: int = Field(default=10, ge=1, le=10_000)
    public_url: str = Field(
        default="",
        pattern=r"^(https?://[^\s/]+[^\s]*)?$",
        description="empty: http://SSC_HOST:SSC_PORT (a wildcard host as 127.0.0.1)",
    )
    status_list_ttl: int = Field(default=300, ge=10, le=24 * 3600)
    status_list_size: int = Field(default=1 << 24, ge=1024, le=1 << 28)
    status_index_pool: int = Field(default=16, ge=1, le=64)
    status_list_fetch_timeout: float = Field(default=10.0, gt=0, le=120)
    status_list_fetch_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=32 * 1024 * 1024)
    bundle_max_age: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    key_rotation_days: float = Field(default=90, ge=0, le=3650)
    key_publish_ahead: int = Field(default=24 * 3600, ge=0, le=30 * 24 * 3600)
    key_sync_interval: int = Field(default=60, ge=1, le=3600)
    oidc_code_ttl: int = Field(default=60, ge=10, le=600)
    oidc_access_token_ttl: int = Field(default=600, ge=60, le=3600)
    oidc_refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=3600)
    oidc_id_token_ttl: int = Field(default=600, ge=60, le=3600)
    oidc_login_ttl: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    oidc_device_code_ttl: int = Field(default=600, ge=60, le=3600)
    oidc_device_interval: int = Field(default=5, ge=1, le=60)

    h5_idle_timeout: int = Field(default=600, ge=60, le=24 * 3600)
    h5_care_idle_timeout: int = Field(default=1800, ge=60, le=24 * 3600)
    h5_launch_ticket_ttl: int = Field(default=60, ge=10, le=600)

    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed; empty: none",
    )
    metrics_token: SecretStr | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    expose_docs: bool | None = Field(
        default=None, description="None: on in development and test, off in production"
    )
    rate_limit_login_per_address: str = Field(default="100/60", pattern=RATE_LIMIT_PATTERN)
    rate_limit_login_per_card: str = Field(default="10/60", pattern=RATE_LIMIT_PATTERN)
    rate_limit_token_per_address: str = Field(default="30/60", pattern=RATE_LIMIT_PATTERN)
    rate_limit_qr_per_holder: str = Field(default="60/60", pattern=RATE_LIMIT_PATTERN)
    rate_limit_applications_per_address: str = Field(default="60/3600", pattern=RATE_LIMIT_PATTERN)
    rate_limit_complaints_per_address: str = Field(default="20/3600", pattern=RATE_LIMIT_PATTERN)
    rate_limit_complaint_lookups_per_address: str = Field(
        default="60/60", pattern=RATE_LIMIT_PATTERN
    )
    require_persistent_store: bool = Field(
        default=False,
        description="true: refuse to start unless Redis is known to persist (AOF, noeviction)",
    )

    audit_consumer_in_api: bool = Field(
        default=True,
        description="false: run `ssc audit consume` instead (needs Redis: a shared stream)",
    )
    audit_checkpoint_interval: int = Field(
        default=300,
        ge=0,
        le=24 * 3600,
        description="seconds between signed checkpoints of the audit chain's head; 0: none",
    )
    notification_delivery_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="attempts per (notification, sender) besides the inbox before giving up",
    )
    notification_retry_initial: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds before the second attempt of a failed delivery; doubled each time",
    )
    notification_retry_max: float = Field(
        default=3600.0,
        gt=0,
        le=24 * 3600,
        description="the longest pause between two attempts of one delivery",
    )
    notification_sweep_interval: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="seconds between two sweeps for deliveries due (retries, and notifications "
        "stored with the business change)",
    )

    vault_dir: Path | None = Field(
        default=None, description="the local blob store of the document vault; None: VAR_DIR/vault"
    )
    vault_s3_url: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\?.*)?$",
        description="s3://bucket?endpoint=URL&region=R&prefix=P: an S3-compatible store "
        "instead of SSC_VAULT_DIR",
    )
    vault_s3_access_key: SecretStr | None = None
    vault_s3_secret_key: SecretStr | None = None
    vault_master_keys: SecretStr | None = Field(
        default=None,
        description="ID:KEY,ID:KEY (KEY 32 bytes base64url) wrapping the vault's data keys; "
        "the first wraps new ones. None: one key 'k0' derived from SSC_DATA_KEY",
    )
    vault_max_document_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=1 << 30)
    vault_max_bulk_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1 << 30)
    vault_orphan_grace: int = Field(default=3600, ge=0, le=7 * 24 * 3600)
    vault_share_max_ttl: int = Field(default=30 * 24 * 3600, ge=60, le=365 * 24 * 3600)

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (async drivers)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if not value.startswith(schemes):
            raise ValueError(f"must start with one of {', '.join(schemes)}")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_code(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9A-Z]{2,12}", value):
            raise ValueError("must be 2-12 characters of 0-9 and A-Z (a region code, e.g. 360000)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return ",".join(entries)

    @field_validator(
        "rate_limit_login_per_address",
        "rate_limit_login_per_card",
        "rate_limit_token_per_address",
        "rate_limit_qr_per_holder",
        "rate_limit_applications_per_address",
        "rate_limit_complaints_per_address",
        "rate_limit_complaint_lookups_per_address",
    )
    @classmethod
    def _rate_limit_window(cls, value: str) -> str:
        if int(value.partition("/")[2]) > MAX_RATE_LIMIT_WINDOW:
            raise ValueError(f"the window is at most {MAX_RATE_LIMIT_WINDOW} seconds")
        return value

    @model_validator(mode="after")
    def _metrics_port_apart(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("SSC_METRICS_PORT must differ from SSC_PORT (a listener of its own)")
        return self

    @model_validator(mode="after")
    def _derive_public_url(self) -> Settings:
        if not self.public_url:
            self.public_url = derived_public_url(self.host, self.port)
        return self

    @property
    def public_url_is_loopback(self) -> bool:
        """Whether SSC_PUBLIC_URL names this machine only (no verifier elsewhere reaches it)."""
        host = urlsplit(self.public_url).hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def vault_directory(self) -> Path:
        return self.vault_dir if self.vault_dir is not None else self.var_dir / "vault"

    @property
    def docs_exposed(self) -> bool:
        """`/docs` and `/openapi.json`: SSC_EXPOSE_DOCS, else off in production."""
        if self.expose_docs is not None:
            return self.expose_docs
        return self.environment is not Environment.production

    @field_validator("vault_master_keys")
    @classmethod
    def _vault_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_master_keys(value.get_secret_value())
        return value

    @field_validator("key_encryption_key", "data_key", "token_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None, info: Any) -> SecretStr | None:
        if value is not None:
            decode_secret(value.get_secret_value(), f"SSC_{info.field_name.upper()}")
        return value

    @model_validator(mode="after")
    def _external_consumer_needs_redis(self) -> Settings:
        if not self.audit_consumer_in_api and not self.redis_url:
            raise ValueError(
                "SSC_AUDIT_CONSUMER_IN_API=false needs SSC_REDIS_URL: the memory store's audit"
                " stream lives inside the API process"
            )
        return self

    @model_validator(mode="after")
    def _secrets_present(self) -> Settings:
        if self.environment is Environment.production:
            missing = [f"SSC_{n.upper()}" for n in SECRET_NAMES if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    f"production needs {', '.join(missing)} (32 random bytes, base64url each)"
                )
        return self

    def secret(self, name: str) -> bytes:
        value = getattr(self, name)
        if value is None:
            raise SettingsError(f"SSC_{name.upper()} is not set")
        return decode_secret(value.get_secret_value(), f"SSC_{name.upper()}")

    def with_dev_secrets(self) -> Settings:
        """Fills missing secrets from `<var_dir>/dev-secrets.json`, creating it once."""
        missing = [n for n in SECRET_NAMES if getattr(self, n) is None]
        if not missing or self.environment is Environment.production:
            return self
        path = self.var_dir / "dev-secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if any(n not in stored for n in missing):
            stored = {n: stored.get(n) or new_secret() for n in SECRET_NAMES}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(stored, indent=2))
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        return self.model_copy(update={n: SecretStr(stored[n]) for n in missing})


def load_settings(**overrides: Any) -> Settings:
    """Reads and validates settings; a bad value raises SettingsError naming the variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            variable = f"SSC_{where.upper()}" if problem["loc"] else where
            lines.append(f"{variable}: {problem['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
    return settings.with_dev_secrets()
