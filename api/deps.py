"""Dependencies as `Annotated` aliases, so routes read as their signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.runtime import Runtime
from app.store import Store


async def get_runtime(request: Request) -> Runtime:
    """`async` although it awaits nothing: FastAPI runs a plain `def` dependency in a worker
    thread, a thread hop per request that cost the QR route more CPU than its signature."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_store(runtime: RuntimeDep) -> Store:
    return runtime.store


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.database.session() as session:
        yield session


StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""The route's transaction. Scope "function": it commits when the route function returns,
before the response is sent, so no answer acknowledges a write that is not yet stored (with
the default scope FastAPI commits after sending, and a commit that then fails is a lost
write behind a 2xx). A failed commit answers 503 (`app.db.DatabaseUnavailable`)."""
