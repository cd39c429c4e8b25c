"""The process-wide pieces built once at start (never at import) and closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.catalog.scenes import CatalogSnapshot, default_snapshot
from app.config import Environment, Settings
from app.db import Database
from app.notifications.delivery import NotificationSenders, RetryPolicy
from app.security.pii import PiiCipher
from app.security.pins import PinHasher
from app.security.tokens import AccessTokenCodec
from app.store import Store
from app.store.memory import MemoryStore
from app.store.redis import RedisStore
from app.trust.verifier import build_token_verifier
from app.vault.vault import Vault, build_blob_store, build_master_keys
from app.verification.epoch import StoreEpochs
from app.verification.memo import VerifyMemo
from app.verification.scanners import ScannerTokenCache
from token_service import KeyDirectory, KeyRing, StatusListToken, TokenIssuer, TokenVerifier

logger = logging.getLogger("ssc.runtime")
CLOSE_STEP_SECONDS = 10.0


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """One secret per setting, one derived key per purpose, so no key serves two jobs."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
    return hkdf.derive(secret)


def build_store(settings: Settings) -> Store:
    if settings.redis_url:
        return RedisStore.from_url(
            settings.redis_url,
            namespace=settings.redis_namespace,
            claim_channel=settings.redis_claim_channel,
        )
    return MemoryStore()


def open_keyring(settings: Settings) -> KeyRing:
    return KeyRing.load_or_create(
        settings.key_dir,
        settings.secret("key_encryption_key"),
        retire_grace=settings.token_lifetime + settings.offline_window,
    )


OIDC_KEY_SUBDIRECTORY = "oidc"


def open_oidc_keyring(settings: Settings) -> KeyRing:
    """The OpenID Connect signing keys (ID tokens): a ring of their own in `<key_dir>/oidc`,
    never the QR token keys, rotated and published by the same machinery. A retired key keeps
    verifying for an ID token's lifetime plus a day (relying parties cache the JWKS)."""
    return KeyRing.load_or_create(
        settings.key_dir / OIDC_KEY_SUBDIRECTORY,
        derive_key(settings.secret("key_encryption_key"), "ssc/oidc-keys/v1"),
        retire_grace=settings.oidc_id_token_ttl + 86400,
    )


@dataclass
class Runtime:
    settings: Settings
    database: Database
    store: Store
    keyring: KeyRing
    oidc_keyring: KeyRing
    """ID token signing keys (`open_oidc_keyring`), apart from the QR token keys."""
    access_tokens: AccessTokenCodec
    pii: PiiCipher
    pins: PinHasher
    card_handle_key: bytes
    secret_hash_key: bytes
    pseudonym_key: bytes
    key_directory: KeyDirectory
    token_verifier: TokenVerifier
    """Replaced (never mutated) when the trust list changes: see `app.trust.verifier`."""
    token_issuer: TokenIssuer
    store_epochs: StoreEpochs
    """The store's data generation as this worker knows it (replay protection after a loss)."""
    catalog: CatalogSnapshot
    """The scene catalog in effect; replaced (never mutated) on change: `app.catalog`."""
    vault: Vault
    """The document vault's blob store and master keys (`app.vault`)."""
    foreign_status_lists: Mapping[str, StatusListToken] = field(default_factory=dict)
    """Other issuers' verified status lists by issuer code (refreshed with the verifier)."""
    verify_memo: VerifyMemo = field(default_factory=VerifyMemo)
    """What the verify path computes once per scanner, key or second (`app.verification.memo`)."""
    notification_senders: NotificationSenders = field(default_factory=NotificationSenders)
    """Delivery channels besides the inbox (SMS, push; none by default): register them at
    start (`app.notifications.delivery`)."""
    scanner_tokens: ScannerTokenCache = field(init=False)
    """Scanner access tokens decoded once, not per scan (`app.verification.scanners`)."""

    def __post_init__(self) -> None:
        self.scanner_tokens = ScannerTokenCache(self.access_tokens)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        token_secret = settings.secret("token_secret")
        keyring = open_keyring(settings)
        card_handle_key = derive_key(
            settings.secret("key_encryption_key"), "ssc/card-handle/v1", 16
        )
        own_keys = KeyDirectory({settings.issuer: keyring})
        database = Database(settings.database_url)
        store = build_store(settings)
        return cls(
            settings=settings,
            database=database,
            store=store,
            keyring=keyring,
            oidc_keyring=open_oidc_keyring(settings),
            access_tokens=AccessTokenCodec(token_secret, f"ssc:{settings.issuer}"),
            pii=PiiCipher.from_master_key(settings.secret("data_key")),
            pins=PinHasher(pepper=derive_key(token_secret, "ssc/pin-pepper/v1")),
            card_handle_key=card_handle_key,
            secret_hash_key=derive_key(token_secret, "ssc/opaque-secrets/v1"),
            pseudonym_key=derive_key(settings.secret("data_key"), "ssc/pairwise-pseudonym/v1"),
            key_directory=own_keys,
            token_verifier=build_token_verifier(
                issuer=settings.issuer,
                own_keys=own_keys,
                card_handle_key=card_handle_key,
                clock_skew=settings.clock_skew,
            ),
            token_issuer=TokenIssuer(
                keyring, settings.issuer, card_handle_key, lifetime=settings.token_lifetime
            ),
            store_epochs=StoreEpochs(store, database, clock_skew=settings.clock_skew),
            catalog=default_snapshot(settings.issuer),
            notification_senders=NotificationSenders(
                policy=RetryPolicy(
                    attempts=settings.notification_delivery_attempts,
                    initial=settings.notification_retry_initial,
                    longest=settings.notification_retry_max,
                )
            ),
            vault=Vault(
                build_blob_store(settings),
                build_master_keys(
                    settings, derive_key(settings.secret("data_key"), "ssc/vault/master/v1")
                ),
            ),
        )

    @property
    def is_test(self) -> bool:
        return self.settings.environment is Environment.test

    async def close(self) -> None:
        """Closes the vault, the store and the database; a step still waiting after
        `CLOSE_STEP_SECONDS` is logged and abandoned, so that a stop always ends."""
        for name, close in (
            ("vault", self.vault.close),
            ("store", self.store.close),
            ("database", self.database.dispose),
        ):
            try:
                async with asyncio.timeout(CLOSE_STEP_SECONDS):
                    await close()
            except TimeoutError:
                logger.error("closing the %s took over %.0f s; abandoned", name, CLOSE_STEP_SECONDS)
