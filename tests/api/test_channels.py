"""Channel apps: registered by administrators, linked by holders with the PIN, listed with
last use, unlinked at once (on every worker), pairwise identifiers, suspension."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from app.runtime import Runtime
from tests.api.test_instant_effect import (  # the two-server fixtures
    Cluster,
    cluster,  # noqa: F401
    holder_on,
    servers_settings,  # noqa: F401
)
from tests.factories import (
    OTHER_PIN,
    ActiveHolder,
    admin_headers,
    bearer,
    create_active_holder,
)


@dataclass(frozen=True)
class Channel:
    client_id: str
    headers: dict[str, str]


async def register_channel(
    client: httpx.AsyncClient, runtime: Runtime, name: str = "工商银行 app"
) -> Channel:
    created = await client.post(
        "/v1/admin/channels",
        json={"name": name, "channel_type": "bank"},
        headers=admin_headers(runtime),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token = await client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["client_id"], body["client_secret"]),
    )
    assert token.status_code == 200, token.text
    return Channel(body["client_id"], bearer(token.json()["access_token"]))


async def link(client: httpx.AsyncClient, channel: Channel, holder: ActiveHolder) -> dict[str, str]:
    """The whole flow; returns the channel's session for the holder."""
    asked = await client.post("/v1/channel/link-requests", headers=channel.headers)
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request_id"]
    too_early = await client.post(
        f"/v1/channel/link-requests/{request_id}/session", headers=channel.headers
    )
    assert too_early.status_code == 409
    shown = await client.get(f"/v1/me/channel-link-requests/{request_id}", headers=holder.headers)
    assert shown.json()["channel_id"] == channel.client_id
    approved = await client.post(
        f"/v1/me/channel-link-requests/{request_id}/approve",
        json={"pin": holder.pin},
        headers=holder.headers,
    )
    assert approved.status_code == 204, approved.text
    redeemed = await client.post(
        f"/v1/channel/link-requests/{request_id}/session", headers=channel.headers
    )
    assert redeemed.status_code == 200, redeemed.text
    again = await client.post(
        f"/v1/channel/link-requests/{request_id}/session", headers=channel.headers
    )
    assert again.status_code == 404  # once
    session: dict[str, str] = redeemed.json()
    return session


class TestLinkListUnlink:
    async def test_link_list_with_last_use_and_unlink_at_once(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        channel = await register_channel(client, runtime)
        holder = await create_active_holder(client, app)
        session = await link(client, channel, holder)
        used = await client.get("/v1/channel/holder", headers=bearer(session["access_token"]))
        assert used.status_code == 200, used.text
        assert used.json()["subject"] == session["subject"]
        assert used.json()["status"] == "active"
        qr = await client.get("/v1/channel/holder/qr", headers=bearer(session["access_token"]))
        assert qr.status_code == 200 and qr.json()["token"].startswith("SSC1:")

        listed = (await client.get("/v1/me/channels", headers=holder.headers)).json()
        assert [row["channel_id"] for row in listed] == [channel.client_id]
        assert listed[0]["last_used_at"] is not None

        unlinked = await client.delete(
            f"/v1/me/channels/{channel.client_id}", headers=holder.headers
        )
        assert unlinked.status_code == 204
        refused = await client.get("/v1/channel/holder", headers=bearer(session["access_token"]))
        assert refused.status_code == 401
        refreshed = await client.post(
            "/v1/channel/sessions/refresh",
            json={"refresh_token": session["refresh_token"]},
            headers=channel.headers,
        )
        assert refreshed.status_code == 401
        assert (await client.get("/v1/me/channels", headers=holder.headers)).json() == []
        gone = await client.delete(f"/v1/me/channels/{channel.client_id}", headers=holder.headers)
        assert gone.status_code == 404

    async def test_a_wrong_pin_links_nothing_and_a_holder_token_is_no_channel_token(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        channel = await register_channel(client, app.state.runtime)
        holder = await create_active_holder(client, app)
        request_id = (
            await client.post("/v1/channel/link-requests", headers=channel.headers)
        ).json()["request_id"]
        wrong = await client.post(
            f"/v1/me/channel-link-requests/{request_id}/approve",
            json={"pin": OTHER_PIN},
            headers=holder.headers,
        )
        assert wrong.status_code == 401
        assert (await client.get("/v1/me/channels", headers=holder.headers)).json() == []
        session = await link(client, channel, holder)
        own_route = await client.get("/v1/me/card", headers=bearer(session["access_token"]))
        assert own_route.status_code == 401  # a channel session never acts as the holder

    async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        channel = await register_channel(client, app.state.runtime)
        holder = await create_active_holder(client, app)
        session = await link(client, channel, holder)
        body = {"refresh_token": session["refresh_token"]}
        first = await client.post(
            "/v1/channel/sessions/refresh", json=body, headers=channel.headers
        )
        assert first.status_code == 200, first.text
        assert first.json()["subject"] == session["subject"]
        reused = await client.post(
            "/v1/channel/sessions/refresh", json=body, headers=channel.headers
        )
        assert reused.status_code == 401
        revoked = await client.get(
            "/v1/channel/holder", headers=bearer(first.json()["access_token"])
        )
        assert revoked.status_code == 401


class TestPairwiseAndSuspension:
    async def test_identifiers_differ_across_channels_and_are_stable_in_one(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        bank = await register_channel(client, runtime, "bank app")
        city = await register_channel(client, runtime, "city app")
        holder = await create_active_holder(client, app)
        at_bank = await link(client, bank, holder)
        at_city = await link(client, city, holder)
        assert at_bank["subject"] != at_city["subject"]
        relinked = await link(client, bank, holder)
        assert relinked["subject"] == at_bank["subject"]
        # the relink replaced the earlier link: its session died
        old = await client.get("/v1/channel/holder", headers=bearer(at_bank["access_token"]))
        assert old.status_code == 401

    async def test_a_suspended_channel_is_refused_everywhere(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        runtime = app.state.runtime
        channel = await register_channel(client, runtime)
        holder = await create_active_holder(client, app)
        session = await link(client, channel, holder)
        suspended = await client.post(
            f"/v1/admin/channels/{channel.client_id}/suspend", headers=admin_headers(runtime)
        )
        assert suspended.status_code == 200 and suspended.json()["status"] == "disabled"
        refused = await client.get("/v1/channel/holder", headers=bearer(session["access_token"]))
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/channel-suspended"
        asked = await client.post("/v1/channel/link-requests", headers=channel.headers)
        assert asked.status_code == 403
        reinstated = await client.post(
            f"/v1/admin/channels/{channel.client_id}/reinstate", headers=admin_headers(runtime)
        )
        assert reinstated.status_code == 200
        back = await client.get("/v1/channel/holder", headers=bearer(session["access_token"]))
        assert back.status_code == 200

    async def test_channel_linked_reaches_the_inbox(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        channel = await register_channel(client, app.state.runtime)
        holder = await create_active_holder(client, app)
        await link(client, channel, holder)
        deadline = time.monotonic() + 5
        kinds: list[str] = []
        while time.monotonic() < deadline and "channel_linked" not in kinds:
            rows = (await client.get("/v1/me/notifications", headers=holder.headers)).json()
            kinds = [row["kind"] for row in rows]
            await asyncio.sleep(0.05)
        assert kinds == ["channel_linked"]


UNLINK_BOUND_SECONDS = 1.0


class TestUnlinkAcrossProcesses:
    async def test_the_unlinked_channels_token_is_401_on_another_worker_within_a_second(
        self,
        cluster: Cluster,  # noqa: F811
    ) -> None:
        holder = await holder_on(cluster)
        channel = await register_channel(cluster.a, cluster.runtime)
        active = ActiveHolder(
            card=None,  # type: ignore[arg-type]
            pin="284617",
            device_id=holder.device_id,
            access_token=holder.headers["Authorization"].removeprefix("Bearer "),
            refresh_token="",
        )
        session = await link(cluster.a, channel, active)
        token = bearer(session["access_token"])
        assert (await cluster.b.get("/v1/channel/holder", headers=token)).status_code == 200
        unlinked = await cluster.a.delete(
            f"/v1/me/channels/{channel.client_id}", headers=holder.headers
        )
        assert unlinked.status_code == 204
        changed_at = time.monotonic()
        seen = 200
        while time.monotonic() - changed_at <= UNLINK_BOUND_SECONDS and seen != 401:
            seen = (await cluster.b.get("/v1/channel/holder", headers=token)).status_code
            if seen != 401:
                await asyncio.sleep(0.05)
        assert seen == 401
        assert time.monotonic() - changed_at <= UNLINK_BOUND_SECONDS
