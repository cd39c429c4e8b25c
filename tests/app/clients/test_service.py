"""Rules of organisations, scanner clients and the client-credentials grant."""

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from app.catalog.scenes import SCENES, Attribute, Entitlement, UnknownSceneError, require_scenes
from app.clients import service
from app.clients.errors import InvalidClient, InvalidScope, SceneNotOffered, UnknownScene
from app.clients.models import ApiClient
from app.db import Database
from app.security.opaque import hash_opaque_secret
from app.security.tokens import AccessTokenCodec, PrincipalKind
from app.store import Store

HASH_KEY = b"k" * 32
CODEC = AccessTokenCodec(b"s" * 32, "ssc:test")
ADMIN = "adm_test"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def new_scanner(database: Database, store: Store, scenes: list[str]) -> service.IssuedClient:
    async with database.session() as session:
        organisation = await service.create_organisation(
            session,
            store,
            ADMIN,
            name="Venue",
            venue_type="museum",
            region_code="360100",
            scenes=["museum", "hotel"],
        )
        return await service.create_scanner(
            session, store, HASH_KEY, ADMIN, organisation.id, name="Gate", scenes=scenes
        )


def grant_request(issued: service.IssuedClient, **changes: str) -> service.ClientCredentialsRequest:
    fields = {
        "grant_type": "client_credentials",
        "client_id": issued.client.client_id,
        "client_secret": issued.client_secret,
        **changes,
    }
    return service.ClientCredentialsRequest(**fields)


async def grant(
    database: Database, request: service.ClientCredentialsRequest
) -> service.TokenGrant:
    async with database.session() as session:
        return await service.grant_client_credentials(
            session, CODEC, HASH_KEY, request, scanner_ttl=3600, admin_ttl=600
        )


class TestCatalog:
    def test_each_default_scene_has_its_own_allow_list(self) -> None:
        assert all(Attribute.pseudonym in scene.attributes for scene in SCENES.values())
        assert SCENES["hotel"].attributes == {
            Attribute.full_name,
            Attribute.document_type,
            Attribute.document_number,
            Attribute.pseudonym,
        }
        assert Attribute.document_type not in SCENES["metro"].attributes
        assert Entitlement.elderly_preferential in SCENES["bus"].entitlements
        assert not SCENES["library"].entitlements

    def test_require_scenes_names_every_unknown_code(self) -> None:
        with pytest.raises(UnknownSceneError) as raised:
            require_scenes(["metro", "casino", "bar"])
        assert raised.value.codes == ["bar", "casino"]
        assert require_scenes(["rail", "bus", "rail"]) == ["bus", "rail"]


class TestScannerCreation:
    async def test_only_an_hmac_of_the_secret_is_stored(
        self, database: Database, store: Store
    ) -> None:
        issued = await new_scanner(database, store, ["museum"])
        async with database.session() as session:
            row = (
                await session.exec(
                    select(ApiClient).where(ApiClient.client_id == issued.client.client_id)
                )
            ).one()
        assert row.secret_hash == hash_opaque_secret(issued.client_secret, HASH_KEY)
        assert issued.client_secret not in row.model_dump_json()
        assert await store.get(service.principal_key(row.client_id)) == service.PRINCIPAL_ACTIVE

    async def test_scenes_must_be_known_and_offered(self, database: Database, store: Store) -> None:
        with pytest.raises(SceneNotOffered):
            await new_scanner(database, store, ["metro"])
        with pytest.raises(UnknownScene):
            await new_scanner(database, store, ["casino"])


class TestPrincipalMirror:
    async def test_refill_never_overwrites_a_disabled_marker(
        self, database: Database, store: Store
    ) -> None:
        issued = await new_scanner(database, store, ["museum"])
        key = service.principal_key(issued.client.client_id)
        await store.set(key, service.PRINCIPAL_DISABLED)
        async with database.session() as session:
            await service.refill_scanner_principal(session, store, issued.client.client_id)
        assert await store.get(key) == service.PRINCIPAL_DISABLED

    async def test_refill_mirrors_the_database_and_unknown_clients_as_disabled(
        self, database: Database, store: Store
    ) -> None:
        issued = await new_scanner(database, store, ["museum"])
        async with database.session() as session:
            await service.set_scanner_enabled(
                session, store, ADMIN, issued.client.client_id, enabled=False
            )
        await store.delete(service.principal_key(issued.client.client_id))
        async with database.session() as session:
            await service.refill_scanner_principal(session, store, issued.client.client_id)
            await service.refill_scanner_principal(session, store, "scn_unknown")
        assert await store.get(service.principal_key(issued.client.client_id)) == b"0"
        assert await store.get(service.principal_key("scn_unknown")) == b"0"

    async def test_warm_up_mirrors_active_scanners_only(
        self, database: Database, store: Store
    ) -> None:
        active = await new_scanner(database, store, ["museum"])
        disabled = await new_scanner(database, store, ["museum"])
        async with database.session() as session:
            await service.set_scanner_enabled(
                session, store, ADMIN, disabled.client.client_id, enabled=False
            )
        for issued in (active, disabled):
            await store.delete(service.principal_key(issued.client.client_id))
        async with database.session() as session:
            assert await service.warm_scanner_principals(session, store) == 1
        assert await store.get(service.principal_key(active.client.client_id)) == b"1"
        assert await store.get(service.principal_key(disabled.client.client_id)) is None


class TestClientCredentialsGrant:
    async def test_scanner_token_carries_organisation_and_scenes(
        self, database: Database, store: Store
    ) -> None:
        issued = await new_scanner(database, store, ["hotel", "museum"])
        granted = await grant(database, grant_request(issued))
        claims = CODEC.decode(granted.access_token, PrincipalKind.scanner)
        assert granted.scopes == ("verify",)
        assert granted.expires_in == 3600
        assert claims.extra["org"] == str(issued.client.organisation_id)
        assert claims.extra["scenes"] == "museum,hotel"

    async def test_a_scope_beyond_the_client_is_refused(
        self, database: Database, store: Store
    ) -> None:
        issued = await new_scanner(database, store, ["museum"])
        with pytest.raises(InvalidScope):
            await grant(database, grant_request(issued, scope="verify admin"))

    async def test_admin_clients_get_admin_tokens(self, database: Database) -> None:
        async with database.session() as session:
            issued = await service.create_admin_client(session, HASH_KEY, "operator")
        granted = await grant(database, grant_request(issued))
        assert CODEC.decode(granted.access_token, PrincipalKind.admin).scopes == {"admin"}

    async def test_an_absurd_client_id_is_just_an_invalid_client(self, database: Database) -> None:
        request = service.ClientCredentialsRequest("client_credentials", "x" * 10_000, "secret")
        with pytest.raises(InvalidClient):
            await grant(database, request)
