"""`ssc`: the operator's command line (serve, migrate, keys, audit, verify-offline)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import orjson
import typer
import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

import app.models  # noqa: F401 (every table, so foreign keys between domains resolve)
from app.audit.checkpoints import checkpoint_key
from app.audit.service import verify_stored_chain
from app.clients.service import IssuedClient, create_admin_client
from app.config import Settings, SettingsError, load_settings
from app.db import check_schema, create_database, is_missing_database_error
from app.db import migrate as apply_migrations
from app.demo import DemoSeed, demo_instructions, demo_json, seed_demo
from app.failures import CannotCreateDatabase, database_location, explain
from app.runtime import Runtime, build_store, open_keyring
from app.security.pii import PiiCipher
from app.security.roles import DEFAULT_ROLE, RoleError, checked_role
from app.store import StoreUnavailable
from app.trust.key_rotation import InvalidKeyId, KeyRevocation, parse_kid, revoke_key
from app.trust.offline import OfflineScan, scan_offline
from app.vault.service import rewrap_data_keys, sweep_orphans
from app.workers import run_audit_worker
from token_service import KeyRingError
from token_service.keys import RevocationReason, b64url

cli = typer.Typer(help="Electronic social security card backend.", no_args_is_help=True)
keys_cli = typer.Typer(help="Manage the token signing keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
audit_cli = typer.Typer(help="Check the audit log.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")
clients_cli = typer.Typer(help="Manage API clients.", no_args_is_help=True)
cli.add_typer(clients_cli, name="clients")
vault_cli = typer.Typer(help="Upkeep of the document vault.", no_args_is_help=True)
cli.add_typer(vault_cli, name="vault")


@dataclass
class _Invocation:
    """What `main` needs to know about the command it ran, to explain its failure."""

    debug: bool = False
    settings: Settings | None = None


_invocation = _Invocation()


@cli.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback when a command fails")
    ] = False,
) -> None:
    """Electronic social security card backend."""
    _invocation.debug = debug or os.environ.get("SSC_LOG_LEVEL", "").lower() == "debug"


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    _invocation.settings = settings
    return settings


async def check_dependencies(settings: Settings) -> None:
    """What `ssc serve` needs before it starts a worker: the database, migrated to head, and
    Redis when configured. Raises what `app.failures.explain` turns into one line."""
    await check_schema(settings.database_url)
    if settings.redis_url:
        store = build_store(settings)
        try:
            await store.ping()
        finally:
            await store.close()


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default SSC_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SSC_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    settings = settings_or_exit()
    if workers > 1 and not settings.redis_url:
        typer.secho(
            "several workers need a shared store: set SSC_REDIS_URL", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2)
    bind_port = port or settings.port
    if settings.metrics_port is not None and settings.metrics_port == bind_port:
        typer.secho(
            "SSC_METRICS_PORT must differ from the API's port", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2)
    # The workers read their settings from the environment: SSC_PUBLIC_URL, when unset, is
    # derived from the address they really serve.
    os.environ["SSC_HOST"] = host or settings.host
    os.environ["SSC_PORT"] = str(bind_port)
    settings = settings_or_exit()
    open_keyring(settings)
    asyncio.run(check_dependencies(settings))
    uvicorn_options: dict[str, Any] = {
        "factory": True,
        "http": "api.serving:CoalescingHttpToolsProtocol",
        "host": settings.host,
        "port": bind_port,
        "workers": workers,
        "log_level": settings.log_level,
        "access_log": False,
        # No `server: uvicorn`: what runs us is nobody's business.
        "server_header": False,
        # X-Forwarded-For / -Proto are believed from these peers only (the client address of
        # the rate limits, https for HSTS); with none, the TCP peer is the client.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or "",
    }
    if settings.metrics_port is None:
        uvicorn.run("api.app:serving_app", **uvicorn_options)
        return
    # A second listener for /metrics (see api.routes.health): every worker serves both.
    config = uvicorn.Config("api.app:serving_app", **uvicorn_options)
    metrics_listener = uvicorn.Config(
        "api.app:serving_app", host=settings.metrics_host, port=settings.metrics_port
    ).bind_socket()
    sockets = [config.bind_socket(), metrics_listener]
    if workers > 1:
        Multiprocess(config, sockets=sockets).run()
    else:
        uvicorn.Server(config).run(sockets=sockets)


@cli.command()
def migrate(
    revision: Annotated[
        str, typer.Argument(help="The revision to migrate to (default: the newest)")
    ] = "head",
) -> None:
    """Apply database migrations; create the PostgreSQL database first if it is missing."""
    settings = settings_or_exit()
    pii = PiiCipher.from_master_key(settings.secret("data_key"))
    where = database_location(settings.database_url)

    async def run() -> None:
        try:
            await apply_migrations(settings.database_url, revision, pii=pii)
            return
        except Exception as error:
            if not is_missing_database_error(error):
                raise
        try:
            await create_database(settings.database_url)
        except asyncpg.InsufficientPrivilegeError:
            raise CannotCreateDatabase(
                f"database {where} does not exist and its role may not create it: "
                "have an administrator create it (createdb), then run `ssc migrate` again"
            ) from None
        typer.echo(f"created database {where}")
        await apply_migrations(settings.database_url, revision, pii=pii)

    asyncio.run(run())
    typer.echo(f"database at {where} migrated to {revision}")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


@keys_cli.command("list")
def keys_list() -> None:
    """List published keys with their states, then revoked keys."""
    keyring = open_keyring(settings_or_exit())
    for key in keyring.published():
        kid = b64url(key.kid)
        typer.echo(
            f"{kid}  {key.state.value:8}  created {_when(key.created_at)}  "
            f"activated {_when(key.activated_at)}  retired {_when(key.retired_at)}"
        )
    for key in keyring.revoked():
        typer.echo(
            f"{b64url(key.kid)}  {key.state.value:8}  created {_when(key.created_at)}  "
            f"revoked {_when(key.revoked_at)}  reason {key.revocation_reason}"
        )


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Promote the next key to active, retire the active one, publish a new next key."""
    keyring = open_keyring(settings_or_exit())
    keyring.rotate()
    keyring.prune()
    kid = b64url(keyring.signing_key.kid)
    typer.echo(f"rotated; active key is now {kid}")


@keys_cli.command("revoke")
def keys_revoke(
    kid: Annotated[str, typer.Argument(help="The key id, as `ssc keys list` shows it")],
    reason: Annotated[
        RevocationReason,
        typer.Option(help="compromised (the private key leaked) or superseded"),
    ],
) -> None:
    """Emergency: withdraw a key now. It leaves the JWKS, the COSE key set and the next
    verifier bundles, every worker answers its tokens `revoked_key` within a second, and if
    it was the active key a fresh key signs at once (no publish-ahead wait)."""
    settings = settings_or_exit()
    try:
        key_id = parse_kid(kid)
    except InvalidKeyId as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    keyring = open_keyring(settings)

    async def revoke() -> KeyRevocation:
        store = build_store(settings)
        try:
            return await revoke_key(keyring, store, key_id, reason, actor="operator:cli")
        finally:
            await store.close()

    try:
        revocation = asyncio.run(revoke())
    except KeyRingError as error:
        typer.secho(f"nothing revoked: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except StoreUnavailable as error:
        typer.secho(
            f"{kid} is revoked in the key ring, but the running workers could not be told "
            f"(SSC_REDIS_URL: {error}); each applies it at its next key sync "
            f"(SSC_KEY_SYNC_INTERVAL, {settings.key_sync_interval:g} s): restart them to "
            "apply it now",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"revoked {b64url(revocation.kid)} ({reason}): no longer published or accepted")
    fresh = " (new, signing now)" if revocation.replaced_active else ""
    typer.echo(f"active key: {b64url(revocation.active)}{fresh}")
    if not settings.redis_url:
        typer.echo(
            "no SSC_REDIS_URL: a running `ssc serve` applies this at its next key sync "
            f"(SSC_KEY_SYNC_INTERVAL, {settings.key_sync_interval:g} s); restart it to apply "
            "it now"
        )


@clients_cli.command("create-admin")
def clients_create_admin(
    name: Annotated[str, typer.Option(help="Who or what the admin client is for")],
    role: Annotated[
        str,
        typer.Option(
            help="provincial_admin (everything), city_admin (its city: --region), auditor "
            "(read-only), operator (service-hall counter: card lifecycle, applications)"
        ),
    ] = DEFAULT_ROLE.value,
    region: Annotated[
        str | None, typer.Option(help="A city_admin's six-digit city region code, e.g. 360100")
    ] = None,
) -> None:
    """Create an admin client; its secret is printed once and cannot be shown again."""
    try:
        checked_role(role, region)
    except RoleError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None

    async def create() -> IssuedClient:
        runtime = await Runtime.start(settings_or_exit())
        try:
            async with runtime.database.session() as session:
                return await create_admin_client(
                    session, runtime.secret_hash_key, name, role=role, region=region
                )
        finally:
            await runtime.close()

    issued = asyncio.run(create())
    typer.echo(f"role:          {issued.client.role}" + (f" ({region})" if region else ""))
    typer.echo(f"client_id:     {issued.client.client_id}")
    typer.echo(f"client_secret: {issued.client_secret}")
    typer.echo("store the secret now: only its hash is kept")


@vault_cli.command("sweep")
def vault_sweep(
    grace: Annotated[
        int | None,
        typer.Option(help="Seconds a blob must be old (default SSC_VAULT_ORPHAN_GRACE)"),
    ] = None,
) -> None:
    """Deletes stored files no document names (a push that died between storing its file and
    committing its row) and the pieces of interrupted uploads; run it from cron."""

    async def sweep() -> int:
        runtime = await Runtime.start(settings_or_exit())
        try:
            return await sweep_orphans(runtime, grace=grace)
        finally:
            await runtime.close()

    typer.echo(f"deleted {asyncio.run(sweep())} orphaned blobs")


@vault_cli.command("rewrap")
def vault_rewrap() -> None:
    """Rewraps every document's data key under the first key of SSC_VAULT_MASTER_KEYS (after
    putting a new key first); the files are not touched. Then the old key can be dropped."""

    async def rewrap() -> int:
        runtime = await Runtime.start(settings_or_exit())
        try:
            return await rewrap_data_keys(runtime)
        finally:
            await runtime.close()

    typer.echo(f"rewrapped {asyncio.run(rewrap())} data keys")


@audit_cli.command("verify-chain")
def audit_verify_chain() -> None:
    """Recompute the audit hash chain and check the latest signed checkpoint of its head; exit 1
    naming the first edited, deleted or moved row, or the checkpointed row the chain lost."""
    settings = settings_or_exit()
    report = asyncio.run(verify_stored_chain(settings.database_url, checkpoint_key(settings)))
    if not report.intact:
        typer.secho(
            f"audit chain broken at row {report.first_broken_id}: {report.reason}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {report.rows} rows; {report.checkpoint}")


@audit_cli.command("consume")
def audit_consume() -> None:
    """Persist the audit stream to SQL (and run the misuse watch) in this process, until
    SIGINT/SIGTERM; for deployments with SSC_AUDIT_CONSUMER_IN_API=false."""
    settings = settings_or_exit()
    if not settings.redis_url:
        typer.secho(
            "an audit consumer process needs SSC_REDIS_URL (a stream shared with the API)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)

    async def consume() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await run_audit_worker(settings, stop, freeze_after_start=True)

    asyncio.run(consume())


@cli.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
    base_url: Annotated[str | None, typer.Option(help="Where the API listens")] = None,
) -> None:
    """Seed a demo holder, venue and scanner and print how to try the QR journey."""
    settings = settings_or_exit()
    url = base_url or settings.public_url

    async def seed() -> DemoSeed:
        pii = PiiCipher.from_master_key(settings.secret("data_key"))
        await apply_migrations(settings.database_url, pii=pii)
        runtime = await Runtime.start(settings)
        try:
            return await seed_demo(runtime)
        finally:
            await runtime.close()

    seeded = asyncio.run(seed())
    if as_json:
        typer.echo(orjson.dumps(demo_json(seeded, url), option=orjson.OPT_INDENT_2).decode())
        return
    png = settings.var_dir.resolve() / "demo-qr.png"
    typer.echo(demo_instructions(seeded, url, str(png)))


@cli.command("verify-offline")
def verify_offline(
    *,
    bundle: Annotated[
        Path, typer.Option(help="The verifier bundle from GET /v1/scanner/bundle", dir_okay=False)
    ],
    token: Annotated[str | None, typer.Argument(help="The scanned SSC1 string")] = None,
    image: Annotated[
        Path | None, typer.Option(help="A photo or PNG of the QR code instead", dir_okay=False)
    ] = None,
    anchor: Annotated[
        Path | None,
        typer.Option(help="JWK set that signs bundles (default: this deployment's key ring)"),
    ] = None,
    scene: Annotated[str | None, typer.Option(help="The scene scanned for")] = None,
    replay_cache: Annotated[
        Path | None, typer.Option(help="Replay cache file (default: next to the bundle)")
    ] = None,
) -> None:
    """Verify a token without a network; exit 0 only when the holder is admitted."""
    if token is None and image is None:
        typer.secho(
            "nothing to verify: give the scanned TOKEN or --image QR.png",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    if token is not None and image is not None:
        typer.secho("give a TOKEN or --image, not both", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    outcome = scan_offline(
        OfflineScan(
            bundle=bundle,
            token=token,
            image=image,
            anchor=anchor,
            scene=scene,
            replay_cache=replay_cache,
        ),
        settings_or_exit() if anchor is None else None,
    )
    if outcome.error is not None:
        typer.secho(outcome.error, fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    for line in outcome.lines():
        typer.echo(line)
    if not outcome.accepted:
        raise typer.Exit(1)


def main() -> None:
    """`ssc`: a command that fails prints one line naming the setting and the cause and exits
    1; `--debug` (or SSC_LOG_LEVEL=debug) shows the traceback instead."""
    try:
        cli()
    except Exception as error:
        if _invocation.debug:
            raise
        try:
            message = explain(error, _invocation.settings)
        except Exception:  # the explanation must never be what fails
            message = f"unexpected error: {type(error).__name__}"
        typer.secho(f"ssc: {message}", fg=typer.colors.RED, err=True)
        typer.secho("(--debug shows the traceback)", err=True)
        sys.exit(1)
