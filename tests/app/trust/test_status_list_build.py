"""Our status list is built off the event loop, once per change however many ask for it."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from pytest import MonkeyPatch

from app.cards.snapshot import CARDS_VERSION
from app.runtime import Runtime
from app.trust import status_lists
from token_service import Status, StatusList


async def test_concurrent_requests_after_a_change_build_and_sign_the_list_once(
    app: FastAPI, monkeypatch: MonkeyPatch
) -> None:
    runtime: Runtime = app.state.runtime
    builds: list[int] = []
    build = status_lists.build_status_list

    def counted(entries: list[tuple[int, Status]], size: int) -> StatusList:
        builds.append(size)
        return build(entries, size)

    monkeypatch.setattr(status_lists, "build_status_list", counted)
    issuer = runtime.settings.issuer
    await status_lists.published_status_list(runtime, issuer)
    await runtime.store.incr(CARDS_VERSION)  # a card changed
    documents = await asyncio.gather(
        *(status_lists.published_status_list(runtime, issuer) for _ in range(6))
    )
    assert len(builds) == 2
    assert len({document.cwt for document in documents}) == 1
